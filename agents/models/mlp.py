"""Emo's landmark inverse model: three fully connected layers, ReLU and batch norm after
the first two, a sigmoid out (emo-coexpression, Methods, Fig. 7A), on the normalised
landmark displacements from the face's own neutral."""

from __future__ import annotations

import torch
from torch import nn

from facetwin.agents.models.common import Standardize


class LandmarkMLP(nn.Module):
    def __init__(self, n_inputs: int, n_controls: int, hidden: tuple[int, int] = (512, 256)):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "n_controls": n_controls, "hidden": list(hidden)}
        self.standardize = Standardize(n_inputs)
        a, b = hidden
        self.net = nn.Sequential(
            nn.Linear(n_inputs, a), nn.ReLU(), nn.BatchNorm1d(a),
            nn.Linear(a, b), nn.ReLU(), nn.BatchNorm1d(b),
            nn.Linear(b, n_controls), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardize(x))
