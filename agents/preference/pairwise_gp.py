"""BoTorch's ``PairwiseGP`` (Chu & Ghahramani's preference GP, Laplace approximation),
fitted one way for every use: a preference model on a pool's embedding, and preferential
BO on the controls."""

from __future__ import annotations

import numpy as np
import torch


def fit_pairwise_gp(points: np.ndarray, won: np.ndarray):
    """A ``PairwiseGP`` over ``points`` (n, d) from comparisons ``won`` (m, 2): each row
    the index of the preferred point, then of the other; in evaluation mode."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models.pairwise_gp import PairwiseGP, PairwiseLaplaceMarginalLogLikelihood

    gp = PairwiseGP(torch.as_tensor(np.asarray(points), dtype=torch.float64),
                    torch.as_tensor(np.asarray(won), dtype=torch.long))
    fit_gpytorch_mll(PairwiseLaplaceMarginalLogLikelihood(gp.likelihood, gp))
    return gp.eval()


def load_pairwise_gp(points: torch.Tensor, won: torch.Tensor, state: dict):
    """A saved ``PairwiseGP``: its data and hyperparameters (the rest it recomputes)."""
    from botorch.models.pairwise_gp import PairwiseGP

    gp = PairwiseGP(points, won)
    gp.load_state_dict(state, strict=False)
    return gp.eval()
