"""The One-Euro filter (Casiez, Roussel & Vogel, CHI 2012), one per vector component.

A first-order low-pass filter whose cutoff rises with the signal's speed: a held pose is
smoothed hard (cutoff ``min_cutoff``), a fast move passes with little lag (the cutoff
grows by ``beta`` per unit of speed). Speed is itself low-passed at ``d_cutoff``.

    smooth = OneEuroFilter(min_cutoff=1.0, beta=5.0)
    y = smooth(x, t)      # x: a vector, t: seconds (any clock that only moves forward)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class OneEuroFilter:
    min_cutoff: float = 1.0  # Hz, the cutoff on a held pose: lower smooths more
    beta: float = 5.0  # cutoff gained per unit/s of speed: higher lags less on moves
    d_cutoff: float = 1.0  # Hz, the cutoff of the speed estimate

    def __post_init__(self):
        for name in ("min_cutoff", "beta", "d_cutoff"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"One-Euro {name} must be a finite number >= 0, got {value!r}")
        if self.min_cutoff <= 0 or self.d_cutoff <= 0:
            raise ValueError("One-Euro min_cutoff and d_cutoff must be above 0 Hz")
        self.reset()

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        if dt <= 0:  # the same instant again (or a clock that went back): nothing new
            return self._x.copy()
        self._t = t
        self._dx = _blend(self._dx, (x - self._x) / dt, _alpha(self.d_cutoff, dt))
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = _blend(self._x, x, _alpha(cutoff, dt))
        return self._x.copy()


def _alpha(cutoff, dt: float):
    """The smoothing factor of a first-order low-pass at ``cutoff`` Hz, sampled every
    ``dt`` seconds."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


def _blend(previous, new, alpha):
    return previous + alpha * (new - previous)
