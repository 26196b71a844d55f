"""Rena's network: attention over facial regions, then a Kolmogorov-Arnold network
(rena-kan-attention, Sec. IV-C).

Each facial region (brows, eyes, irises, lips, nose, face oval, four skin quadrants, the
head's rotation) becomes a token: its landmarks' displacements embedded in ``dim``
numbers, plus a sinusoidal positional encoding (their Eq. 2-3). Self-attention lets
every region weigh the others (Eq. 4); the tokens then go through a 3-layer KAN whose
edges are ``w_b silu(x) + w_s spline(x)`` with cubic B-splines (Eq. 6-7). Rena reads
MediaPipe's 52 blendshape coefficients, which need a model file that cannot be
downloaded here; the regions of the landmarks stand in for them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facetwin.agents.inverse.models.common import Standardize


class KANLayer(nn.Module):
    """``n_in`` -> ``n_out`` through a learnable function on every edge:
    ``w_b * silu(x) + sum_i c_i B_i(x)``, with B-splines of ``order`` on a uniform grid
    of ``grid`` intervals over [-1, 1] (inputs are squashed into it with tanh)."""

    def __init__(self, n_in: int, n_out: int, grid: int = 5, order: int = 3):
        super().__init__()
        h = 2.0 / grid
        self.register_buffer("knots", torch.arange(-order, grid + order + 1) * h - 1.0)
        self.order = order
        self.base = nn.Linear(n_in, n_out)
        self.coef = nn.Parameter(torch.randn(n_out, n_in, grid + order) / math.sqrt(n_in) * 0.1)

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """B-spline basis values (..., n_in, grid + order) by the Cox-de Boor recursion."""
        t = self.knots
        x = x.unsqueeze(-1)
        b = ((x >= t[:-1]) & (x < t[1:])).to(x.dtype)
        for p in range(1, self.order + 1):
            b = ((x - t[:-(p + 1)]) / (t[p:-1] - t[:-(p + 1)]) * b[..., :-1]
                 + (t[p + 1:] - x) / (t[p + 1:] - t[1:-p]) * b[..., 1:])
        return b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(x)
        return self.base(F.silu(x)) + torch.einsum("bik,oik->bo", self.basis(x), self.coef)


def positional_encoding(tokens: int, dim: int) -> torch.Tensor:
    """Sinusoidal encoding of token positions (Rena's Eq. 2-3, as in Vaswani et al.)."""
    pos = torch.arange(tokens, dtype=torch.float32)[:, None]
    rate = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    pe = torch.zeros(tokens, dim)
    pe[:, 0::2] = torch.sin(pos * rate)
    pe[:, 1::2] = torch.cos(pos * rate)
    return pe


class RegionAttentionKAN(nn.Module):
    def __init__(self, n_inputs: int, n_controls: int, regions: list[np.ndarray],
                 dim: int = 16, heads: int = 4, hidden: int = 64, grid: int = 5):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "n_controls": n_controls, "dim": dim,
                       "heads": heads, "hidden": hidden, "grid": grid,
                       "regions": [np.asarray(r).tolist() for r in regions]}
        self.standardize = Standardize(n_inputs)
        for k, cols in enumerate(regions):
            self.register_buffer(f"region_{k}", torch.as_tensor(cols, dtype=torch.long))
        self.embed = nn.ModuleList(nn.Linear(len(cols), dim) for cols in regions)
        self.register_buffer("position", positional_encoding(len(regions), dim))
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.kan = nn.Sequential(KANLayer(len(regions) * dim, hidden, grid),
                                 KANLayer(hidden, hidden, grid),
                                 KANLayer(hidden, n_controls, grid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.standardize(x)
        tokens = torch.stack([embed(x[:, getattr(self, f"region_{k}")])
                              for k, embed in enumerate(self.embed)], dim=1) + self.position
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        tokens = self.norm(tokens + attended)
        return torch.sigmoid(self.kan(tokens.flatten(1)))
