"""Benchmark of the twin, for every shipped profile. Prints a table.

    python bench/twin.py [--evals 100] [--mediapipe-renders 200]

- physics steps/s: 1 kHz MuJoCo steps under random in-range commands at servo rate;
- settled evals/s: command, settle, render 256x256, ground-truth landmarks; and the CPU
  cores the env keeps busy meanwhile (CPU time over wall time);
- median settle: simulated time from command to a still face;
- render fps: 256x256 RGB frames;
- peak memory: maximum resident set of a fresh process holding one env;
- MediaPipe: detection rate and median landmark error against the twin's ground truth.
Each profile runs in its own process, so memory figures are per env.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(profile: str, evals: int, mp_renders: int) -> dict:
    from facetwin.envs.face_env import FaceTwinEnv
    from facetwin.envs.perception import FaceMeshDetector, agreement
    from facetwin.sim.camera import PinholeCamera
    from facetwin.sim.render import FaceRenderer
    from facetwin.sim.twin import Twin

    env = FaceTwinEnv(profile, image_size=256)
    env.reset(seed=0)
    p = env.profile
    twin = Twin(p)  # the raw physics, as the env's backend drives it
    rng = np.random.default_rng(0)

    period = round(1.0 / (p.control_rate_hz * twin.model.opt.timestep))
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < 3.0:
        twin.command(rng.uniform(p.low, p.high))
        twin.step(period)
        steps += period
    physics = steps / (time.perf_counter() - t0)

    env.reset(seed=0)
    settle_s = []
    t0, cpu0 = time.perf_counter(), _cpu_s()
    for _ in range(evals):
        _, _, _, _, info = env.step(rng.uniform(p.low, p.high))
        settle_s.append(info["settle_s"])
    wall = time.perf_counter() - t0
    settled, cores = evals / wall, (_cpu_s() - cpu0) / wall

    renderer = FaceRenderer(twin, PinholeCamera.from_profile(p.camera, 256))
    t0 = time.perf_counter()
    for _ in range(100):
        renderer.render()
    render = 100 / (time.perf_counter() - t0)
    renderer.close()

    result = {"profile": profile, "physics_steps_per_s": physics,
              "settled_evals_per_s": settled, "cpu_cores": cores,
              "median_settle_ms": 1e3 * float(np.median(settle_s)),
              "render_fps": render,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if mp_renders:
        result.update(agreement(FaceMeshDetector(), env, n=mp_renders, seed=1))
    env.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--mediapipe-renders", type=int, default=200)
    parser.add_argument("--profile", help="measure one profile in this process (internal)")
    args = parser.parse_args()
    if args.profile:
        print(json.dumps(measure(args.profile, args.evals, args.mediapipe_renders)))
        return

    from facetwin import profile as profiles

    rows = []
    for name in profiles.available():
        out = subprocess.run([sys.executable, __file__, "--profile", name, "--evals",
                              str(args.evals), "--mediapipe-renders",
                              str(args.mediapipe_renders)],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    cols = [("profile", "{}"), ("physics_steps_per_s", "{:.0f}"),
            ("settled_evals_per_s", "{:.1f}"), ("cpu_cores", "{:.2f}"),
            ("median_settle_ms", "{:.0f}"),
            ("render_fps", "{:.0f}"), ("peak_rss_mb", "{:.0f}")]
    if args.mediapipe_renders:
        cols += [("renders", "{}"), ("detection_rate", "{:.1%}"),
                 ("median_error_px", "{:.2f}"), ("p90_error_px", "{:.2f}")]
    print("| " + " | ".join(c for c, _ in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(fmt.format(r[c]) for c, fmt in cols) + " |")


if __name__ == "__main__":
    main()
