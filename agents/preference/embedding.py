"""A pool's faces in a few numbers: the principal components of their expression
features, each scaled to unit spread. Preference models and the active pairing strategy
learn on these rather than on thousands of landmark coordinates: a hundred faces and a
few hundred comparisons cannot pin down more."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPONENTS = 8


@dataclass
class Embedding:
    mean: np.ndarray  # (n_features,)
    components: np.ndarray  # (k, n_features), rows scaled so each output has unit spread

    @classmethod
    def fit(cls, features: np.ndarray, k: int = COMPONENTS) -> Embedding:
        x = np.asarray(features, float)
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        k = min(k, len(s))
        spread = np.maximum(s[:k] / np.sqrt(max(len(x) - 1, 1)), 1e-9)
        return cls(mean, vt[:k] / spread[:, None])

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, float) - self.mean) @ self.components.T

    @property
    def k(self) -> int:
        return len(self.components)
