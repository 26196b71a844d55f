"""The contract between the env and what it drives: the twin, or a face on a servo bus.

A backend owns the one stateful safety filter and everything about time: it filters
each action, moves the face, lets time pass (one control period, or until the face is
still) and says what it applied, why, how long the face took and whether it is at rest.
Observing returns one record of the face as it is after the last step: a camera image
captured after that step finished, the present controls, the camera it was seen
through, and, where the backend has them (the twin), the ground truth: landmarks,
expression features, head pose, skin strain and simulated time.

    stepped = backend.step(action, "settle")   # filter -> face -> wait
    seen = backend.observe()                    # seen.image, seen.controls, ...

The env and every agent go through this contract (or the env's API over it), never
through a backend's parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facetwin.envs.safety import SafetyFilter, SafetyReport
from facetwin.profile import MAX_SETTLE_S
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.randomization import Randomization

# "settle": the face at rest at the filtered command (on the twin by the quickest way,
# its transient skipped); "ramp": the same, the twin simulating the transient the robot
# goes through; "period": one control period of it. A robot goes through its transient
# whatever the mode.
STEP_MODES = ("settle", "ramp", "period")


@dataclass(frozen=True)
class Stepped:
    """What one step did."""

    applied: np.ndarray  # the last command that reached the face
    report: SafetyReport  # what the filter changed in it, and why
    settle_s: float  # seconds the face took: simulated on the twin, wall-clock on the robot
    still: bool  # the face is at rest at the command (always so after a settled step;
    # after one period only where the backend can tell without waiting: the twin)


@dataclass(frozen=True)
class Seen:
    """The face as a backend sees it after its last step."""

    image: np.ndarray  # RGB, captured after the last step finished
    controls: np.ndarray  # present positions, control units
    camera: PinholeCamera  # the camera the image was taken through
    # The ground truth, where the backend has it (the twin; None on a robot):
    landmarks: np.ndarray | None = None  # (N_LANDMARKS, 2) pixels
    features: np.ndarray | None = None  # expression features against the face's own neutral
    head_pose: np.ndarray | None = None  # rotation vector (deg) and position (mm), world frame
    strain_max: float | None = None  # the most strained skin triangle's strain
    sim_time: float | None = None  # simulated seconds since reset


def settle_periods(safety: SafetyFilter, period_s: float) -> int:
    """The most control periods a settled step can take, on any backend: the filter's
    longest ramp, then the longest a face may take to come to rest."""
    return safety.ramp_periods(period_s) + int(MAX_SETTLE_S / period_s)


class Backend(Protocol):
    safety: SafetyFilter

    def reset(self, start: np.ndarray | None, rng: np.random.Generator,
              randomization: Randomization) -> None:
        """Bring the face to ``start`` (neutral when None), still."""

    def step(self, action, mode: str) -> Stepped:
        """Filter ``action`` and apply it for one control period (``"period"``), or until
        it is reached and the face is still (``"settle"``, ``"ramp"``)."""

    def observe(self) -> Seen:
        """The face after the last step (see :class:`Seen`)."""

    def settle_periods(self) -> int:
        """The most control periods a settled step can take: the safety filter's longest
        ramp, then the longest the face may take to come to rest."""

    def close(self) -> None: ...
