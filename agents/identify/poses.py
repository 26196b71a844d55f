"""The poses an identification session shows the camera.

Each control alone tells its servo's zero and travel apart from every other's; random
combinations, each made safe by the safety filter's target (couplings, forbidden
combinations, the strain envelope), show how the skin answers to several pulls at once.
A share of the combinations is held out of the fit, to stop it where it starts to fit
the camera's noise.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from facetwin.envs.safety import SafetyFilter
from facetwin.profile import Profile

MAX_POSES = 120
ALONE_REACH = 0.75  # how far toward each end a control alone goes
COMBINED_REACH = 0.6  # random combinations: each control within this share of its way
HELD_OUT = 20


@dataclass(frozen=True)
class Plan:
    """The poses of one session, in the order they are shown; ``held_out[i]`` says
    whether pose ``i`` is kept out of the fit."""

    profile: str
    poses: np.ndarray  # (N, controls), control units, as the safety filter makes them
    held_out: np.ndarray  # (N,) bool
    kinds: tuple[str, ...]  # "neutral", "alone:CONTROL", "combined"

    @property
    def sha256(self) -> str:
        """A fingerprint of the poses: a session resumes only onto the same plan."""
        return hashlib.sha256(json.dumps(np.round(self.poses, 6).tolist()).encode()).hexdigest()


def design(profile: Profile, n_poses: int = MAX_POSES, held_out: int | None = None,
           seed: int = 0) -> Plan:
    """Neutral, then each control alone toward each end it has room to go to (twice on
    a one-sided control), then seeded random combinations up to ``n_poses``, of which
    ``held_out`` (by default a quarter, at most :data:`HELD_OUT`), spread among them,
    are held out."""
    p = profile
    safety = SafetyFilter(p)
    neutral = p.neutral.astype(float)
    poses, kinds = [neutral], ["neutral"]
    for i, c in enumerate(p.controls):
        ends = [e for e in (p.low[i], p.high[i]) if e != neutral[i]]
        reaches = [ALONE_REACH] if len(ends) == 2 else [0.5 * ALONE_REACH, ALONE_REACH]
        for end in ends:
            for reach in reaches:
                x = neutral.copy()
                x[i] += reach * (end - neutral[i])
                poses.append(safety.target(x)[0])
                kinds.append(f"alone:{c.name}")
    n_combined = n_poses - len(poses)
    if held_out is None:
        held_out = max(5, min(HELD_OUT, n_combined // 4))
    if n_combined < held_out + 10:
        raise ValueError(f"{n_poses} poses leave {max(n_combined, 0)} random combinations "
                         f"after the {len(poses)} single-control ones; the fit and the "
                         f"{held_out} held out need at least {held_out + 10}")
    rng = np.random.default_rng(seed)
    for _ in range(n_combined):
        x = neutral + COMBINED_REACH * (rng.uniform(p.low, p.high) - neutral)
        poses.append(safety.target(x)[0])
        kinds.append("combined")
    out = np.zeros(len(poses), dtype=bool)
    first = len(poses) - n_combined
    step = n_combined / held_out
    out[first + (np.arange(held_out) * step + step / 2).astype(int)] = True
    return Plan(p.name, np.array(poses), out, tuple(kinds))
