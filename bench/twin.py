"""Benchmark of the twin, for every shipped profile. Prints a table.

    python bench/twin.py [--evals 100] [--mediapipe-renders 200]

- physics steps/s: 1 kHz MuJoCo steps under random in-range commands at servo rate;
- settled evals/s: command, settle, render 256x256, ground-truth landmarks, two ways on
  the same random commands: ``step_mode="ramp"`` (the transient simulated, as every
  settled step was before the settle model) and ``"settle"`` (the face started where it
  comes to rest); and the CPU cores the env keeps busy meanwhile (CPU time over wall time);
- median settle: the simulated transient's time from command to a still face, and what
  a quick settled step reports for it;
- shape: the quick path's landmarks (head frame) against the transient's, mean and max
  distance over the commands, and the worst mean over the library (each from rest);
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
    from facetwin.envs.settled import settle_model
    from facetwin.sim.camera import PinholeCamera
    from facetwin.sim.render import FaceRenderer
    from facetwin.sim.twin import Twin

    env = FaceTwinEnv(profile, image_size=256)
    env.reset(seed=0)
    p = env.profile
    twin = Twin(p)  # the raw physics, as the env's backend drives it
    settle_model(p, twin.face)  # measured once and cached, if it is not: untimed
    rng = np.random.default_rng(0)

    period = round(1.0 / (p.control_rate_hz * twin.model.opt.timestep))
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < 3.0:
        twin.command(rng.uniform(p.low, p.high))
        twin.step(period)
        steps += period
    physics = steps / (time.perf_counter() - t0)

    draws = np.random.default_rng(1)  # the same commands whatever the physics loop drew
    commands = [draws.uniform(p.low, p.high) for _ in range(evals)]
    paths = {mode: settled_evals(FaceTwinEnv(profile, image_size=256, step_mode=mode),
                                 commands) for mode in ("ramp", "settle")}
    ramp, quick = paths["ramp"], paths["settle"]
    moved = np.linalg.norm(quick["shapes"] - ramp["shapes"], axis=2)  # mm per landmark
    library = library_difference(profile)

    renderer = FaceRenderer(twin, PinholeCamera.from_profile(p.camera, 256))
    t0 = time.perf_counter()
    for _ in range(100):
        renderer.render()
    render = 100 / (time.perf_counter() - t0)
    renderer.close()

    result = {"profile": profile, "physics_steps_per_s": physics,
              "ramp_evals_per_s": ramp["evals_per_s"], "settled_evals_per_s":
              quick["evals_per_s"], "speedup": quick["evals_per_s"] / ramp["evals_per_s"],
              "cpu_cores": quick["cores"], "median_settle_ms": ramp["median_settle_ms"],
              "reported_settle_ms": quick["median_settle_ms"],
              "shape_mean_mm": float(moved.mean()), "shape_max_mm": float(moved.max()),
              "library_worst_mean_mm": library, "render_fps": render,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if mp_renders:
        result.update(agreement(FaceMeshDetector(), env, n=mp_renders, seed=1))
    env.close()
    return result


def settled_evals(env, commands) -> dict:
    """Settled steps to ``commands`` in turn: their rate, the cores they kept busy,
    the median ``settle_s`` reported, and the shapes (landmarks in the head frame, mm
    from neutral: the expression features)."""
    env.reset(seed=0)
    settle_s, shapes = [], []
    t0, cpu0 = time.perf_counter(), _cpu_s()
    for c in commands:
        obs, _, _, _, info = env.step(c)
        settle_s.append(info["settle_s"])
        shapes.append(obs["achieved_goal"][:-3].reshape(-1, 3))
    wall = time.perf_counter() - t0
    env.close()
    return {"evals_per_s": len(commands) / wall, "cores": (_cpu_s() - cpu0) / wall,
            "median_settle_ms": 1e3 * float(np.median(settle_s)), "shapes": np.array(shapes)}


def library_difference(profile: str) -> float:
    """The worst mean landmark distance (mm) between the quick and the transient rest of
    a library expression, each from rest."""
    from facetwin.envs.face_env import FaceTwinEnv

    envs = {m: FaceTwinEnv(profile, image_size=64, step_mode=m) for m in ("ramp", "settle")}
    worst = 0.0
    for name, controls in envs["ramp"].profile.expressions.items():
        shapes = []
        for env in envs.values():
            env.reset(seed=0, options={"target": "neutral"})
            shapes.append(env.step(controls)[0]["achieved_goal"][:-3].reshape(-1, 3))
        worst = max(worst, float(np.linalg.norm(shapes[0] - shapes[1], axis=1).mean()))
    for env in envs.values():
        env.close()
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=200)
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
            ("ramp_evals_per_s", "{:.1f}"), ("settled_evals_per_s", "{:.1f}"),
            ("speedup", "{:.2f}"), ("cpu_cores", "{:.2f}"),
            ("median_settle_ms", "{:.0f}"), ("reported_settle_ms", "{:.0f}"),
            ("shape_mean_mm", "{:.3f}"), ("shape_max_mm", "{:.2f}"),
            ("library_worst_mean_mm", "{:.3f}"),
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
