"""The twin's settle, per shipped profile: median simulated settle time of random in-range
commands from rest (through the safety ramp, as FaceTwin-v0 steps) and of its servo
ramps alone (the profiles' speeds set those), settled evaluations
and physics steps per second of the same run, and how far the library expressions'
settled shapes are from the stored ones (tests/data/settled_shapes.npz).

    python bench/settle.py [--commands 30] [--vertex-mass KG] [--timestep S]

``--vertex-mass`` (the stiffest free skin vertex's mass) and ``--timestep`` try the
twin's skin and step as they are not shipped, to show what a lighter skin would buy:
steps per evaluation is the machine-independent cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from settled_shapes import library_shapes, settle_from_rest, stored  # noqa: E402

from facetwin import profile as profiles  # noqa: E402
from facetwin.sim.mjcf import SkinParams  # noqa: E402
from facetwin.sim.twin import Twin  # noqa: E402


class RampTimedTwin(Twin):
    """A twin that notes when its servo ramps last arrived since the reset (simulated s;
    a reset starts the clock at zero). A settled step's ramp arrives at every control
    period's command on its way; the last arrival is the goal's."""

    def reset(self, *args, **kwargs) -> None:
        self.ramp_s = None
        super().reset(*args, **kwargs)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            super().step()
            if not self.arrived():
                self.ramp_s = None
            elif self.ramp_s is None:
                self.ramp_s = self.time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=30)
    parser.add_argument("--vertex-mass", type=float, default=SkinParams.vertex_mass_kg)
    parser.add_argument("--timestep", type=float, help="seconds (default: the twin's)")
    args = parser.parse_args()
    print("| profile | median settle (sim ms) | p90 | ramps alone, median "
          "| settled evals/s, no render "
          "| steps/s while settling | steps per evaluation "
          "| library shapes moved, mean (mm) | any landmark (mm) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in profiles.available():
        p = profiles.load(name)
        twin = RampTimedTwin(p, SkinParams(vertex_mass_kg=args.vertex_mass))
        if args.timestep:
            twin.model.opt.timestep = args.timestep
        rng = np.random.default_rng(1)
        began = time.perf_counter()
        settle_s, ramp_s = [], []
        for _ in range(args.commands):
            settle_s.append(settle_from_rest(twin, rng.uniform(p.low, p.high)))
            ramp_s.append(twin.ramp_s)
        wall = time.perf_counter() - began
        steps = sum(settle_s) / twin.model.opt.timestep
        reference = stored(name)
        moved = [1e3 * np.linalg.norm(shape - reference[e], axis=1)
                 for e, shape in library_shapes(twin).items()]
        print(f"| {name} | {1e3 * np.median(settle_s):.0f} | "
              f"{1e3 * np.percentile(settle_s, 90):.0f} | {1e3 * np.median(ramp_s):.0f} | "
              f"{args.commands / wall:.1f} | "
              f"{steps / wall:,.0f} | {steps / args.commands:.0f} | "
              f"{max(m.mean() for m in moved):.3f} | "
              f"{max(m.max() for m in moved):.3f} |")


if __name__ == "__main__":
    main()
