"""Inverse models at scale: collection rate, then every model and baseline on a large
babbling dataset of each profile. Prints the tables; resumable (datasets and models are
kept in --out and reused when there).

    python bench/inverse.py [--parts rate models] [--profiles emo11 x2c30] [--samples 20000]

1. Collection rate, W=1 against W=2 worker processes, in one run (a fresh dataset each,
   --rate-samples samples, so that starting the workers weighs little).
2. Per profile: a dataset of --samples settled samples (the babble strategy, W=2).
3. Per profile: mlp and kan on ground-truth features, mlp on MediaPipe features (what
   the robot's camera sees), cnn on the renders; each evaluated on the test split against
   neutral, random, nearest neighbour and ridge (closed loop on --closed-loop samples).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from facetwin.agents.inverse.collect import collect
from facetwin.agents.inverse.evaluate import evaluate, table
from facetwin.agents.inverse.train import train

MODELS = (("mlp", "ground_truth"), ("kan", "ground_truth"), ("mlp", "mediapipe"),
          ("cnn", "ground_truth"))


def collection_rate(profile: str, samples: int) -> dict:
    rates = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            meta = collect(profile, "babble", samples, Path(tmp) / "d", workers=workers,
                           shard_sequences=8, progress=False)
            rates[workers] = meta["rows"] / (time.perf_counter() - started)
    return {"w1_samples_per_s": rates[1], "w2_samples_per_s": rates[2],
            "speedup": rates[2] / rates[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["emo11", "x2c30"])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--rate-samples", type=int, default=2048)
    parser.add_argument("--closed-loop", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/out/inverse"))
    parser.add_argument("--parts", nargs="+", choices=["rate", "models"],
                        default=["rate", "models"],
                        help="the collection rate (on an otherwise idle machine), the models")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if "rate" in args.parts:
        results["collection"] = collection_rate(args.profiles[0], args.rate_samples)
        path.write_text(json.dumps(results, indent=1) + "\n")
        rate = results["collection"]
        print(f"collection ({args.profiles[0]}, babble, with renders and MediaPipe): W=1 "
              f"{rate['w1_samples_per_s']:.1f} samples/s, W=2 {rate['w2_samples_per_s']:.1f} "
              f"samples/s: {rate['speedup']:.2f}x", flush=True)
    if "models" not in args.parts:
        return
    for profile in args.profiles:
        data = args.out / profile / "data"
        started = time.perf_counter()
        meta = collect(profile, "babble", args.samples, data, workers=2)
        print(f"{profile}: {meta['rows']} samples ({time.perf_counter() - started:.0f} s, "
              "0 if already collected)", flush=True)
        results.setdefault(profile, {})
        for model, features in MODELS:
            name = f"{model}-{features}" if model != "cnn" else "cnn-image"
            folder = args.out / profile / name
            if not (folder / "model.json").exists():
                shutil.rmtree(folder, ignore_errors=True)
                info = train(model, data, folder, features=features)
                print(f"{profile} {name}: trained in {info['seconds']:.0f} s, validation L1 "
                      f"{info['val_l1']:.4f}", flush=True)
            if name not in results[profile]:
                results[profile][name] = evaluate(folder, data, closed_loop=args.closed_loop)
            print(table(results[profile][name]), flush=True)
            path.write_text(json.dumps(results, indent=1) + "\n")
    print(summary_table(results))
    print(f"wrote {path}")


def summary_table(results: dict) -> str:
    """Every model and baseline of every profile in one Markdown table; baselines once
    per kind of input they read."""
    lines = ["| profile | model (inputs) | command L1 | closed loop mm | closed loop px | "
             "batch 1 /s | batched /s |", "|---|---|---:|---:|---:|---:|---:|"]
    for profile, evaluations in results.items():
        if profile == "collection":
            continue
        seen = set()
        for name, result in evaluations.items():
            inputs = "mediapipe" if name.endswith("mediapipe") else "ground_truth"
            for i, r in enumerate(result["rows"]):
                reads = i and r["name"] not in ("neutral", "random")  # these read nothing
                label = f"{r['name']} ({inputs})" if reads else r["name"]
                if i and (label in seen or r["rate_batch1"] is None):
                    continue
                seen.add(label)
                rates = [f"{r[k]:,.0f}" for k in ("rate_batch1", "rate_batched")]
                lines.append(f"| {profile} | {label} | {r['l1']:.4f} | "
                             f"{r['closed_loop_mm']:.3f} | {r['closed_loop_px']:.2f} | "
                             f"{rates[0]} | {rates[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
