"""The contract between the env and what it drives: the twin, or a face on a servo bus.

A backend owns the one stateful safety filter. The env hands it actions; it filters each
one, moves the face, lets time pass (one control period, or until the face is still) and
says what it applied, why, and how long the face took. Observing returns a camera image
captured after the last step finished, with the present control positions.

    stepped = backend.step(action, "settle")   # filter -> face -> wait
    image, controls = backend.observe()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facetwin.envs.safety import SafetyFilter, SafetyReport
from facetwin.sim.randomization import Randomization

STEP_MODES = ("settle", "period")


@dataclass(frozen=True)
class Stepped:
    applied: np.ndarray  # the last command that reached the face
    report: SafetyReport  # what the filter changed in it, and why
    settle_s: float  # seconds the face took: simulated on the twin, wall-clock on the robot


class Backend(Protocol):
    safety: SafetyFilter

    def reset(self, start: np.ndarray | None, rng: np.random.Generator,
              randomization: Randomization) -> None:
        """Bring the face to ``start`` (neutral when None), still."""

    def step(self, action, mode: str) -> Stepped:
        """Filter ``action`` and apply it for one control period (``"period"``), or until
        it is reached and the face is still (``"settle"``)."""

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """An RGB image captured after the last step finished, and the present controls."""

    def close(self) -> None: ...
