"""Emo's landmark inverse model: three fully connected layers, ReLU and batch norm after
the first two, a sigmoid out (emo-coexpression, Methods, Fig. 7A), on the normalised
landmark displacements from the face's own neutral.

In evaluation mode the input standardisation and both batch norms are folded into the
linear layers (the same function, three matrix products): at batch 1 the network is
bound by reading its weights, and the folded one is about 3.5x faster on one core.
"""

from __future__ import annotations

import torch
from torch import nn

from facetwin.agents.inverse.models.common import Standardize


class LandmarkMLP(nn.Module):
    def __init__(self, n_inputs: int, n_controls: int, hidden: tuple[int, int] = (256, 128)):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "n_controls": n_controls, "hidden": list(hidden)}
        self.standardize = Standardize(n_inputs)
        a, b = hidden
        self.net = nn.Sequential(
            nn.Linear(n_inputs, a), nn.ReLU(), nn.BatchNorm1d(a),
            nn.Linear(a, b), nn.ReLU(), nn.BatchNorm1d(b),
            nn.Linear(b, n_controls), nn.Sigmoid())
        self._folded: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def train(self, mode: bool = True) -> LandmarkMLP:
        super().train(mode)
        self._folded = None if mode else self._fold()
        return self

    def load_state_dict(self, *args, **kwargs):
        result = super().load_state_dict(*args, **kwargs)
        self._folded = None if self.training else self._fold()
        return result

    @torch.no_grad()
    def _fold(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(bias, weight transposed) of each layer with the normalisations folded in."""
        lin1, _, bn1, lin2, _, bn2, lin3, _ = self.net
        w1 = lin1.weight / self.standardize.std
        layers = [(lin1.bias - w1 @ self.standardize.mean, w1)]
        for bn, lin in ((bn1, lin2), (bn2, lin3)):
            # Batch norm after a ReLU: scale and shift, absorbed by the next layer.
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias - bn.running_mean * scale
            layers.append((lin.bias + lin.weight @ shift, lin.weight * scale))
        return [(bias.clone(), weight.T.contiguous()) for bias, weight in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._folded is None:
            return self.net(self.standardize(x))
        (b1, w1), (b2, w2), (b3, w3) = self._folded
        h = torch.relu(torch.addmm(b1, x, w1))
        h = torch.relu(torch.addmm(b2, h, w2))
        return torch.sigmoid(torch.addmm(b3, h, w3))
