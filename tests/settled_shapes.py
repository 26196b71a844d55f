"""Stored settled shapes of the library expressions, the guard on the twin's physics.

Each profile's library expressions are commanded from rest through the safety filter's
ramp, as FaceTwin-v0 steps, and the landmarks are read once the face settles. Changes
to how the twin moves (masses, gains, the settle rule) must leave these shapes where
they were; only a change meant to alter what agents see regenerates them:

    python tests/settled_shapes.py     # rewrites tests/data/settled_shapes.npz
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.envs.safety import SafetyFilter
from facetwin.envs.settled import ramp_and_settle, rest_at, settle_model
from facetwin.sim.twin import Twin

PATH = Path(__file__).parent / "data" / "settled_shapes.npz"


def settle_from_rest(twin: Twin, controls: np.ndarray, quick: bool = False) -> float:
    """Command ``controls`` from rest through the safety ramp, one control period at a
    time as the env does, and settle (``quick``: as a settled env step does, the face
    brought to rest without its transient); returns the simulated seconds it took."""
    p = twin.profile
    safety = SafetyFilter(p)
    twin.reset()
    safety.reset(p.neutral)
    began = twin.time
    if quick:
        rest_at(twin, safety, settle_model(p, twin.face), controls, 1.0 / p.control_rate_hz)
    else:
        ramp_and_settle(twin, safety, controls, 1.0 / p.control_rate_hz)
    return twin.time - began


def library_shapes(twin: Twin, quick: bool = False) -> dict[str, np.ndarray]:
    """Settled landmarks (metres, world frame) of each library expression."""
    shapes = {}
    for name, controls in twin.profile.expressions.items():
        settle_from_rest(twin, controls, quick)
        shapes[name] = twin.landmarks_3d()
    return shapes


def stored(profile: str) -> dict[str, np.ndarray]:
    with np.load(PATH, allow_pickle=False) as data:
        prefix = f"{profile}/"
        return {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}


if __name__ == "__main__":
    arrays = {}
    for name in profiles.available():
        for expression, shape in library_shapes(Twin(profiles.load(name))).items():
            arrays[f"{name}/{expression}"] = shape
    PATH.parent.mkdir(exist_ok=True)
    np.savez_compressed(PATH, **arrays)
    print(f"wrote {len(arrays)} shapes to {PATH}")
