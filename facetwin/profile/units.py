"""Mappings between control units and the unit scales the rest of the project uses.

Two scales, each with one pair of functions:

- about neutral (:func:`from_unit` / :func:`to_unit`): -1 at a range's low end, 0 at
  neutral, +1 at its high end, linear on each side; the twin's joint targets and servo
  ticks are mapped this way;
- the control box (:func:`to_box` / :func:`from_box`): 0 at the low end, 1 at the high
  end, linear; searches and inverse models work in it.
"""

from __future__ import annotations

import numpy as np


def from_unit(u, neutral, low, high) -> np.ndarray:
    """Normalised units (0 at neutral, -1 at ``low``, +1 at ``high``) to values, linear on
    each side of neutral. Every mapping about a neutral uses it: controls, the twin's
    joint targets, servo ticks (where ``high`` may lie below ``low``: a reversed servo)."""
    u = np.asarray(u, dtype=float)
    return np.where(u >= 0, neutral + u * (high - neutral), neutral + u * (neutral - low))


def to_unit(x, neutral, low, high) -> np.ndarray:
    """The inverse of :func:`from_unit`, whichever way ``low`` and ``high`` run; 0 where an
    end coincides with neutral."""
    d = np.asarray(x, dtype=float) - neutral
    span = np.where(d * (high - neutral) > 0, high - neutral, neutral - low)
    return np.divide(d, span, out=np.zeros(np.broadcast(d, span).shape), where=span != 0)


def to_box(x, low, high) -> np.ndarray:
    """Values to the control box: 0 at ``low``, 1 at ``high``."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    return (np.asarray(x, dtype=float) - low) / (high - low)


def from_box(u, low, high) -> np.ndarray:
    """The inverse of :func:`to_box`, clipped to the box."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    return low + np.clip(np.asarray(u, dtype=float), 0.0, 1.0) * (high - low)
