"""Coexpression, measured: Emo's predictive model against its baselines on held-out
synthetic people, and mimicry against coexpression in closed loop on the twin.

    python bench/coexpress.py [--people 88] [--out bench/out/coexpress] [--parts ...]

The people are synthetic (twin faces of x2c30 with identities of their own and Emo's
onset timing; :mod:`facetwin.agents.coexpress.people`); the robot is emo11, its inverse
model a landmark MLP on MediaPipe features. Each part reuses what an earlier run left in
--out (the dataset resumes). Prints the figures; writes them to --out/results.json.

- predict: landmark MAE of the predicted target (predictor, mimicry, constant velocity,
  random), Emo's activation confusion matrix, the lead time.
- loop: every held-out expression played to the robot twin frame by frame, through
  mimicry and through coexpression: when the robot is 80 % of its way against when the
  person peaks (and against when the person is 80 % of theirs), and the robot's face
  against the person's target at their peak; as the twin is, and with the robot seeing
  each frame 300 ms late, as a physical robot's camera, processing and servos make it
  (coexpression told so).
- speed: the predictor's inferences/s at batch 1 on one core, and the whole coexpression
  loop's frames/s on a rendered clip (camera to command to video), against mimicry's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from facetwin import profile as profiles
from facetwin.agents.coexpress.evaluate import evaluate_predictor, table
from facetwin.agents.coexpress.onsets import load_sequences
from facetwin.agents.coexpress.predictor import load_predictor
from facetwin.agents.coexpress.record import record_synthetic
from facetwin.agents.coexpress.timing import expression_timing
from facetwin.agents.coexpress.train import train_predictor
from facetwin.files import atomic_write

ROBOT, PEOPLE_FACE = "emo11", "x2c30"
# The twin's own camera-to-motion lag is a frame or two; a physical robot's camera,
# landmark extraction and servos add up to a few hundred milliseconds.
LATENCIES_S = (0.0, 0.3)


def robot_model(out: Path) -> Path:
    from facetwin.agents.inverse.collect import collect
    from facetwin.agents.inverse.train import train

    for candidate in (Path("bench/out/inverse") / ROBOT / "mlp-mediapipe", out / "robot"):
        if (candidate / "model.json").exists():
            return candidate
    data = out / "robot-data"
    collect(ROBOT, "babble", 4096, data, workers=2, images=False)
    train("mlp", data, out / "robot", features="mediapipe")
    return out / "robot"


def closed_loop(method: str, data: str, inverse: str, predictor: str,
                latency_s: float) -> list[dict]:
    """Every test expression through ``method`` on the robot twin (in a process of its
    own), the robot ``latency_s`` behind the person."""
    from facetwin.agents.coexpress.live import Coexpress
    from facetwin.agents.mimic.pipeline import Mimic
    from facetwin.envs.expression import unpack
    from facetwin.envs.face_env import FaceTwinEnv
    from facetwin.envs.perception import perceived_features
    from facetwin.lifeline import die_with_parent
    from facetwin.threads import single_threaded

    die_with_parent()
    p = profiles.load(ROBOT)
    seqs = load_sequences(Path(data), "test")
    pipe = Mimic(p, Path(inverse), neutral_frames=5) if method == "mimicry" else \
        Coexpress(p, Path(inverse), Path(predictor), neutral_frames=5, fps=float(seqs.fps[0]),
                  latency_s=latency_s)
    env = FaceTwinEnv(p, step_mode="period", image_size=256)
    robot_neutral = env.neutral_face()["landmarks"]
    rows = []
    with single_threaded():
        for i in range(len(seqs)):
            fps, frames = float(seqs.fps[i]), seqs.landmarks[i]
            times, people, units, faces = play(pipe, env, p, frames, fps, latency_s)
            timing = expression_timing(times, people, pipe.person_neutral, units)
            main = max(timing, key=lambda e: e["peak_s"] - e["onset_s"], default=None)
            row = {"sequence": int(seqs.sequence[i]), "person": int(seqs.person[i]),
                   "emotion": "false start" if seqs.false_start[i] else seqs.emotion[i],
                   "label_target_s": float(seqs.target[i] / fps), "timing": main}
            if main is not None:
                k = int(round(main["peak_s"] * fps))
                wanted = unpack(pipe.features_of(frames[k].astype(float)))[0][:, :2]
                made = unpack(perceived_features(faces[k], robot_neutral,
                                                 pipe.robot.camera))[0][:, :2]
                row["distance_at_peak_mm"] = float(np.linalg.norm(made - wanted, axis=1).mean())
            if method == "coexpression":
                row["onsets"] = pipe.onsets
                if pipe.onsets and main is not None:  # the live lead: decision to the peak
                    row["lead_s"] = main["peak_s"] - pipe.onsets[0]["time"]
            rows.append(row)
    pipe.close()
    env.close()
    return rows


def play(pipe, env, p, frames: np.ndarray, fps: float, latency_s: float = 0.0):
    """One person's frames through ``pipe`` to the robot twin of ``env``, each frame's
    control periods acted in time, the pipeline seeing each frame ``latency_s`` after it
    was captured (a slower robot's camera, processing and servos): per frame its time,
    the person's landmarks, the robot's present controls (0-1) and its ground-truth
    landmarks."""
    period = 1.0 / p.control_rate_hz
    pipe.restart()
    env.reset(seed=0, options={"target": "neutral"})
    times, people, units, faces, periods = [], [], [], [], 0
    behind = int(round(latency_s * fps))
    controls = p.neutral
    for f, lm in enumerate(frames):
        t = f / fps
        person = None if np.isnan(lm).any() else lm.astype(float)
        if f >= behind:  # the frame captured ``behind`` frames ago reaches the pipeline
            late = frames[f - behind]
            controls = pipe.see(None if np.isnan(late).any() else late.astype(float),
                                (f - behind) / fps, {}).controls
        due = int(t / period + 1e-9) + 1 - periods
        for _ in range(due):
            env.act(controls, "period")
        periods += max(due, 0)
        obs = env.observe()
        times.append(t)
        people.append(person)
        units.append(p.to_box(obs["controls"]))
        faces.append(obs["landmarks"])
    return times, people, units, faces


def example(data: Path, inverse: Path, predictor: Path, path: Path) -> Path:
    """A figure of one held-out happy face: how far along its way the person is, and the
    robot under mimicry and under coexpression, against time."""
    from facetwin.agents.coexpress.live import Coexpress
    from facetwin.agents.coexpress.predictor import Face
    from facetwin.agents.mimic.pipeline import Mimic
    from facetwin.envs.face_env import FaceTwinEnv
    from facetwin.figures import timeline

    p = profiles.load(ROBOT)
    seqs = load_sequences(data, "test")
    i = next(k for k in range(len(seqs)) if seqs.emotion[k] == "happiness"
             and not seqs.false_start[k] and seqs.target[k] > 30)
    fps, frames = float(seqs.fps[i]), seqs.landmarks[i]
    env = FaceTwinEnv(p, step_mode="period", image_size=256)
    curves, marks = [], []
    for name, pipe in (("mimicry", Mimic(p, inverse, neutral_frames=5)),
                       ("coexpression", Coexpress(p, inverse, predictor, neutral_frames=5,
                                                  fps=fps))):
        times, people, units, _ = play(pipe, env, p, frames, fps)
        timing = expression_timing(times, people, pipe.person_neutral, units)[0]
        onset = int(round(timing["onset_s"] * fps))
        way = units[-1] - units[onset]
        curves.append((np.array([(u - units[onset]) @ way / (way @ way) for u in units]),
                       f"robot, {name}"))
        if name == "coexpression" and pipe.onsets:
            marks.append((pipe.onsets[0]["time"], "prediction issued"))
        pipe.close()
    env.close()
    face = Face(frames[:5].mean(axis=0))
    d = np.array([np.sqrt((face.displacement(f) ** 2).sum(1).mean()) for f in frames])
    curves.insert(0, ((d - d[:5].mean()) / (d.max() - d[:5].mean()), "person"))
    marks.append((timing["peak_s"], "person's peak"))
    return timeline(path, np.array(times), curves, marks,
                    f"a held-out person's {seqs.emotion[i]} and the {ROBOT} twin",
                    "fraction of the way to the final face")


def loop_table(results: dict[str, list[dict]]) -> tuple[str, dict]:
    """Per emotion and method: the robot's 80 % time minus the person's peak and minus the
    person's own 80 % (medians, ms), and the face's distance to the target at the peak."""
    def measures(row):
        t = row["timing"]
        if not t or t["late_s"] is None:
            return None
        return (t["late_s"] * 1e3, (t["robot_80_s"] - t["person_80_s"]) * 1e3,
                row.get("distance_at_peak_mm", np.nan))

    emotions = sorted({r["emotion"] for r in results["mimicry"]})
    lines = ["| emotion | n | robot 80 % - person's peak (ms): mimicry | coexpression | "
             "robot 80 % - person's 80 % (ms): mimicry | coexpression | face to target at "
             "the peak (mm): mimicry | coexpression |", "|---" * 8 + "|"]
    summary = {}
    for name in emotions + ["all"]:
        cells, per = [], {}
        for method in ("mimicry", "coexpression"):
            got = [m for r in results[method] if name in ("all", r["emotion"])
                   if (m := measures(r)) is not None]
            per[method] = np.array(got).reshape(-1, 3)
        n = min(len(v) for v in per.values())
        for k, form in ((0, "{:+.0f}"), (1, "{:+.0f}"), (2, "{:.2f}")):
            for method in ("mimicry", "coexpression"):
                v = per[method][:, k]
                cells.append(form.format(np.nanmedian(v)) if len(v) else "-")
        summary[name] = {f"{m}_{key}": float(np.nanmedian(per[m][:, k])) if len(per[m])
                         else None for m in per for k, key in
                         enumerate(("late_ms", "after_person_80_ms", "distance_mm"))}
        for m in per:
            summary[name][f"{m}_within_100ms"] = float(np.mean(np.abs(per[m][:, 0]) <= 100)) \
                if len(per[m]) else None
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines), summary


def speed(predictor: Path, inverse: Path, out: Path) -> dict:
    from facetwin.agents.coexpress.loop import coexpress
    from facetwin.agents.demo import run_demo
    from facetwin.agents.mimic.loop import mimic

    module, _ = load_predictor(predictor)
    x = torch.zeros(1, module.layers[0].in_features)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for _ in range(50):
                module(x)
            n, began = 0, time.perf_counter()
            while time.perf_counter() - began < 2.0:
                module(x)
                n += 1
        rate = n / (time.perf_counter() - began)
    finally:
        torch.set_num_threads(threads)
    clip = run_demo(PEOPLE_FACE, out / "clip", size=256, fps=30, transition_s=0.6,
                    hold_s=0.5).video
    co = coexpress(ROBOT, inverse, predictor, clip, out / "live", progress=False)
    mi = mimic(ROBOT, inverse, clip, out / "live-mimic", progress=False)
    return {"predictor_per_s": rate, "loop_fps": co["frames_per_s"],
            "mimic_fps": mi["frames_per_s"], "onsets": len(co["onsets"]),
            "camera_to_command_ms": co["camera_to_command_ms"],
            "clip_expressions": co["expressions"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=88)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--out", type=Path, default=Path("bench/out/coexpress"))
    ap.add_argument("--parts", nargs="+", default=["predict", "loop", "speed"],
                    choices=["predict", "loop", "speed"])
    ap.add_argument("--retrain", action="store_true", help="train the predictor again")
    args = ap.parse_args()
    out = args.out
    data = out / "onsets"
    record_synthetic(PEOPLE_FACE, args.people, data, per_person=12, workers=2)
    inverse = robot_model(out)
    predictor = out / "predictor"
    if args.retrain or not (predictor / "predictor.json").exists():
        train_predictor(data, predictor, steps=args.steps)
    results = {}
    if "predict" in args.parts:
        results["predict"] = evaluate_predictor(predictor, data, robot=(ROBOT, inverse))
        print(table(results["predict"]))
    if "loop" in args.parts:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            jobs = {(m, lat): pool.submit(closed_loop, m, str(data), str(inverse),
                                          str(predictor), lat)
                    for lat in LATENCIES_S for m in ("mimicry", "coexpression")}
        results["loop"] = {}
        for lat in LATENCIES_S:
            loops = {m: jobs[m, lat].result() for m in ("mimicry", "coexpression")}
            text, summary = loop_table(loops)
            results["loop"][f"{lat:g} s"] = {"summary": summary, "rows": loops}
            print(f"\nclosed loop on the {ROBOT} twin, {len(loops['mimicry'])} held-out "
                  f"expressions, the robot {lat * 1e3:.0f} ms behind the camera (medians; "
                  "+ is late):")
            print(text)
            a = summary["all"]
            leads = [r["lead_s"] for r in loops["coexpression"] if "lead_s" in r]
            acted = sum(bool(r["onsets"]) for r in loops["coexpression"])
            print(f"within +-100 ms of the peak: mimicry {a['mimicry_within_100ms']:.0%}, "
                  f"coexpression {a['coexpression_within_100ms']:.0%}; coexpression acted "
                  f"on {acted} of {len(loops['coexpression'])} expressions, deciding a "
                  f"median {np.median(leads) * 1e3:.0f} ms before the person's peak")
    if "loop" in args.parts:
        figure = example(data, inverse, predictor, Path("docs/coexpression_timing.png"))
        print(f"wrote {figure}")
    if "speed" in args.parts:
        results["speed"] = s = speed(predictor, inverse, out)
        print(f"\npredictor {s['predictor_per_s']:.0f} inferences/s at batch 1 on one core; "
              f"coexpression loop {s['loop_fps']:.1f} frames/s (mimicry {s['mimic_fps']:.1f}) "
              f"on {PEOPLE_FACE}'s library clip, {s['onsets']} onsets acted on")
    atomic_write(out / "results.json", json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
