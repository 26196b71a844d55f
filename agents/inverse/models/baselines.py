"""The baselines Emo and X2C compare against, as modules like the learned models (so they
are saved, loaded and evaluated the same way): the neutral face, random controls,
nearest neighbour in feature space (Emo's third baseline), and ridge regression."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from facetwin.agents.inverse.models.common import Standardize


class NeutralControls(nn.Module):
    def __init__(self, n_inputs: int, n_controls: int):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "n_controls": n_controls}
        self.register_buffer("neutral", torch.zeros(n_controls))

    def fit(self, x: np.ndarray, y: np.ndarray, neutral: np.ndarray) -> None:
        self.neutral.copy_(torch.as_tensor(neutral, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neutral.expand(len(x), -1)


class RandomControls(nn.Module):
    """Each control uniform over its range, independently (X2C's RC, Emo's first)."""

    def __init__(self, n_inputs: int, n_controls: int, seed: int = 0):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "n_controls": n_controls, "seed": seed}
        self.generator = torch.Generator().manual_seed(seed)

    def fit(self, x: np.ndarray, y: np.ndarray, neutral=None) -> None:
        """Nothing to learn: the ranges are the whole model."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rand(len(x), self.config["n_controls"], generator=self.generator)


class NearestNeighbour(nn.Module):
    """The controls of the training sample whose standardised features are closest."""

    def __init__(self, n_inputs: int, n_controls: int, n_train: int = 1):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "n_controls": n_controls, "n_train": n_train}
        self.standardize = Standardize(n_inputs)
        self.register_buffer("train_x", torch.zeros(n_train, n_inputs))
        self.register_buffer("train_y", torch.zeros(n_train, n_controls))
        self.register_buffer("train_sq", torch.zeros(n_train))  # |train_x|², kept: 10x faster

    def fit(self, x: np.ndarray, y: np.ndarray, neutral=None) -> None:
        self.standardize.fit(x)
        self.train_x = self.standardize(torch.as_tensor(x, dtype=torch.float32))
        self.train_y = torch.as_tensor(y, dtype=torch.float32)
        self.train_sq = (self.train_x ** 2).sum(dim=1)
        self.config["n_train"] = len(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # |x - t|² = |x|² - 2 x.t + |t|²; |x|² is the same for every t.
        nearest = (self.train_sq - 2 * self.standardize(x) @ self.train_x.T).argmin(dim=1)
        return self.train_y[nearest]


class Ridge(nn.Module):
    """Linear least squares on standardised features, the penalty picked on validation."""

    def __init__(self, n_inputs: int, n_controls: int, alpha: float = 1.0):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "n_controls": n_controls, "alpha": alpha}
        self.standardize = Standardize(n_inputs)
        self.linear = nn.Linear(n_inputs, n_controls)

    def fit(self, x: np.ndarray, y: np.ndarray, neutral=None, val=None) -> None:
        self.standardize.fit(x)
        z = self.standardize(torch.as_tensor(x)).double()
        target = torch.as_tensor(y).double()
        mean = target.mean(dim=0)
        gram, rhs = z.T @ z, z.T @ (target - mean)
        best = None
        for alpha in (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0):
            w = torch.linalg.solve(gram + alpha * len(z) * torch.eye(len(gram), dtype=z.dtype),
                                   rhs)
            self.linear.weight.data, self.linear.bias.data = w.T.float(), mean.float()
            error = self._error(val) if val is not None else 0.0
            if best is None or error < best[0]:
                best = (error, alpha, w)
        _, self.config["alpha"], w = best
        self.linear.weight.data, self.linear.bias.data = w.T.float(), mean.float()

    def _error(self, val) -> float:
        with torch.no_grad():
            return float((self(torch.as_tensor(val[0])) - torch.as_tensor(val[1])).abs().mean())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.standardize(x)).clamp(0.0, 1.0)
