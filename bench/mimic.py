"""Live mimicry, measured: the loop's frame rate and latency, what the temporal filter
does to jitter and lag, and an inverse model + Bayesian optimisation against cold
optimisation on picture targets. Prints the figures; writes them to --out/results.json.

    python bench/mimic.py [--parts loop jitter pictures] [--model DIR] [--out bench/out/mimic]

The robot is emo11, its model a landmark MLP on MediaPipe features (--model; by default
the one bench/inverse.py trains, else one trained here on a fresh 4,096-sample dataset).
The "person" is x2c30's twin face, rendered at 256 x 256: its library performance
(loop, lag), one expression held under camera noise (jitter), and single pictures
(with the astronaut) as optimisation targets.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from facetwin import profile as profiles
from facetwin.agents.inverse.collect import collect
from facetwin.agents.mimic.loop import mimic
from facetwin.agents.runlog import read_runlog
from facetwin.agents.mimic.smoothing import OneEuroFilter
from facetwin.agents.inverse.train import train
from facetwin.agents.optimize.tune import tune
from facetwin.agents.demo import run_demo
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.render import FaceRenderer
from facetwin.sim.twin import Twin

ROBOT, PERSON, SIZE = "emo11", "x2c30", 256
NOISE = 4.0  # grey levels, per pixel and frame: a webcam's sensor noise
PICTURES = ("astronaut", "surprise", "anger")


def robot_model(path: Path | None, out: Path) -> Path:
    default = Path("bench/out/inverse") / ROBOT / "mlp-mediapipe"
    for candidate in (path, default):
        if candidate is not None and (candidate / "model.json").exists():
            return candidate
    data, model = out / "data", out / "model"
    collect(ROBOT, "babble", 4096, data, workers=2, images=False)
    if not (model / "model.json").exists():
        train("mlp", data, model, features="mediapipe")
    return model


def loop(model: Path, out: Path) -> dict:
    clip = run_demo(PERSON, out / "clip", size=SIZE, fps=30, transition_s=0.5, hold_s=0.5).video
    summary = mimic(ROBOT, model, clip, out / "loop", progress=False)
    lag = filter_lag(out / "loop" / "frames.jsonl")
    print(f"loop ({PERSON}'s library clip -> {ROBOT}, {SIZE} px, twin): "
          f"{summary['frames_per_s']:.1f} frames/s; camera -> command p50 "
          f"{summary['camera_to_command_ms']['p50']} ms, p95 "
          f"{summary['camera_to_command_ms']['p95']} ms; per stage p50 "
          + ", ".join(f"{k} {v['p50']}" for k, v in summary["latency_ms"].items())
          + f"; filter lag {lag:.2f} frames", flush=True)
    return {"summary": summary, "filter_lag_frames": lag}


def filter_lag(frames_jsonl: Path) -> float:
    """Frames by which the filtered command trails the model's output, where the person
    moves: the shift of the raw series that best matches the filtered one."""
    p = profiles.load(ROBOT)
    rows = [json.loads(line) for line in frames_jsonl.read_text().splitlines()]
    rows = [r for r in rows if r["model"] is not None]
    raw = np.array([r["model"] for r in rows])
    smooth = p.to_box(np.array([r["controls"] for r in rows]))
    t = np.arange(len(raw), dtype=float)
    shifts = np.arange(0.0, 6.0, 0.05)
    misfit = [np.mean([np.abs(smooth[:, j] - np.interp(t - s, t, raw[:, j])).mean()
                       for j in range(raw.shape[1])]) for s in shifts]
    return float(shifts[int(np.argmin(misfit))])


def jitter(model: Path, out: Path, frames: int = 150) -> dict:
    """One expression held for five seconds under camera noise, mimicked with and without
    the filter (a cutoff so high that it passes everything)."""
    p = profiles.load(PERSON)
    twin = Twin(p)
    twin.reset(controls=p.expressions["happiness"])
    renderer = FaceRenderer(twin, PinholeCamera.from_profile(p.camera, SIZE))
    still = renderer.render().astype(float)
    renderer.close()
    folder = out / "held"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(frames):
        noisy = np.clip(still + NOISE * rng.standard_normal(still.shape), 0, 255)
        iio.imwrite(folder / f"{k:04d}.png", noisy.astype(np.uint8))
    result = {}
    for name, smoothing in (("unfiltered", OneEuroFilter(min_cutoff=1e6, beta=0.0)),
                            ("one-euro", OneEuroFilter())):
        s = mimic(ROBOT, model, folder, out / f"held-{name}", neutral_frames=0,
                  smoothing=smoothing, progress=False)
        result[name] = s["jitter"]["command"]
    result["ratio"] = result["unfiltered"] / result["one-euro"]
    print(f"jitter (held pose, noise {NOISE:g} grey levels): command change per frame "
          f"{result['unfiltered']:.4f} unfiltered, {result['one-euro']:.4f} One-Euro: "
          f"{result['ratio']:.1f}x less", flush=True)
    return result


def pictures(model: Path, out: Path, cold_budget: int = 60, warm_budget: int = 20) -> dict:
    """Cold BO against BO started from the model's proposal, per picture target."""
    from skimage.data import astronaut

    person = profiles.load(PERSON)
    twin = Twin(person)
    renderer = FaceRenderer(twin, PinholeCamera.from_profile(person.camera, SIZE))
    targets = {}
    for name in PICTURES:
        if name == "astronaut":
            targets[name] = astronaut()
        else:
            twin.reset(controls=person.expressions[name])
            targets[name] = renderer.render()
    renderer.close()
    result = {}
    for name, picture in targets.items():
        curves = {}
        for start, budget, init in (("cold", cold_budget, None), ("model", warm_budget, model)):
            began = time.perf_counter()
            tune(ROBOT, picture, out / "pictures" / f"{name}-{start}", name=name,
                 budget=budget, workers=2, progress=False, init_model=init)
            _, records = read_runlog(out / "pictures" / f"{name}-{start}" / "runs" /
                                     "bo-s0.jsonl")
            curves[start] = -np.maximum.accumulate([r["score"] for r in records])
            curves[f"{start}_s"] = time.perf_counter() - began
        goal = curves["cold"][cold_budget - 1]
        reached = np.flatnonzero(curves["model"] <= goal)
        result[name] = {"cold_60": float(goal), "neutral": float(curves["cold"][0]),
                        "model_one_shot": float(curves["model"][0]),
                        "model_10": float(curves["model"][min(9, warm_budget - 1)]),
                        "evaluations_to_cold_60": int(reached[0]) + 1 if reached.size else None,
                        "cold_s": curves["cold_s"], "model_s": curves["model_s"]}
        r = result[name]
        print(f"picture {name}: neutral face {r['neutral']:.3f} mm (cold BO's first "
              f"evaluation); cold BO {r['cold_60']:.3f} mm after {cold_budget}; model alone "
              f"{r['model_one_shot']:.3f}, model + BO {r['model_10']:.3f} after 10; the cold "
              f"60's distance reached in {r['evaluations_to_cold_60'] or f'>{warm_budget}'} "
              "evaluations", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["loop", "jitter", "pictures"],
                        choices=["loop", "jitter", "pictures"])
    parser.add_argument("--model", type=Path, help="emo11 model trained on MediaPipe features")
    parser.add_argument("--out", type=Path, default=Path("bench/out/mimic"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = robot_model(args.model, args.out)
    print(f"model: {model}", flush=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for part in args.parts:
        results[part] = {"loop": loop, "jitter": jitter, "pictures": pictures}[part](model,
                                                                                     args.out)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {results_path}")


if __name__ == "__main__":
    main()
