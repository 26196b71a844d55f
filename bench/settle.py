"""The twin's settle, per shipped profile: median simulated settle time of random in-range
commands from rest (through the safety ramp, as FaceTwin-v0 steps), settled evaluations
and physics steps per second of the same run, and how far the library expressions'
settled shapes are from the stored ones (tests/data/settled_shapes.npz).

    python bench/settle.py [--commands 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from settled_shapes import PROFILES, library_shapes, settle_from_rest, stored  # noqa: E402

from facetwin import profile as profiles  # noqa: E402
from facetwin.sim.twin import Twin  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=30)
    args = parser.parse_args()
    print("| profile | median settle (sim ms) | p90 | settled evals/s, no render "
          "| steps/s while settling | library shapes moved, mean (mm) | any landmark (mm) |")
    print("|---|---|---|---|---|---|---|")
    for name in PROFILES:
        p = profiles.load(name)
        twin = Twin(p)
        rng = np.random.default_rng(1)
        began = time.perf_counter()
        settle_s = [settle_from_rest(twin, rng.uniform(p.low, p.high))
                    for _ in range(args.commands)]
        wall = time.perf_counter() - began
        steps = sum(settle_s) / twin.model.opt.timestep
        reference = stored(name)
        moved = [1e3 * np.linalg.norm(shape - reference[e], axis=1)
                 for e, shape in library_shapes(twin).items()]
        print(f"| {name} | {1e3 * np.median(settle_s):.0f} | "
              f"{1e3 * np.percentile(settle_s, 90):.0f} | {args.commands / wall:.1f} | "
              f"{steps / wall:,.0f} | {max(m.mean() for m in moved):.3f} | "
              f"{max(m.max() for m in moved):.3f} |")


if __name__ == "__main__":
    main()
