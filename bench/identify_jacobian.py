"""The identification Jacobian by both ways to rest, side by side in one process.

    python bench/identify_jacobian.py [--profiles emo11] [--poses 120]

Per profile: the nominal twin's Jacobian (every block, one worker) with each pose's
differences settled from neutral (the way before 2026-12-07) and by the quick way to
rest (``TwinModel.settled(quick=True)``: a settled env step's), its seconds, and how far
apart the two Jacobians are (relative Frobenius norm of the difference).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from facetwin import profile as profiles
from facetwin.agents.identify.model import TwinModel
from facetwin.agents.identify.poses import design

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--profiles", nargs="+", default=["emo11"])
ap.add_argument("--poses", type=int, default=120)
args = ap.parse_args()


class FromNeutral(TwinModel):
    """Every settle from rest at neutral, the Jacobian's too."""

    def settled(self, theta, controls, quick=False):
        return super().settled(theta, controls, quick=False)


print("| profile | poses | from neutral (s) | quick (s) | speed-up | relative difference |")
print("|---|---|---|---|---|---|")
for name in args.profiles:
    p = profiles.load(name)
    plan = design(p, args.poses)
    poses = plan.poses[~plan.held_out]
    found, seconds = {}, {}
    for label, kind in (("neutral", FromNeutral), ("quick", TwinModel)):
        model = kind(p, 256)
        t = time.perf_counter()
        found[label] = model.jacobian(poses).astype(float)
        seconds[label] = time.perf_counter() - t
    diff = np.linalg.norm(found["quick"] - found["neutral"]) / np.linalg.norm(found["neutral"])
    print(f"| {name} | {len(poses)} | {seconds['neutral']:.0f} | {seconds['quick']:.0f} | "
          f"{seconds['neutral'] / seconds['quick']:.2f}x | {diff:.3f} |", flush=True)
