"""``facetwin evaluate``: an inverse model against its baselines on a dataset's test split.

Rows: the model; the neutral face, random controls, nearest neighbour and ridge, fitted
to the same train split; and the applied controls themselves (the floor of the closed
loop). Columns:

- command L1: mean |predicted - applied| per control, in 0-1 units (low to high), over
  every control and per facial region (the profile's control groups);
- closed loop: the predicted controls through the safety filter, settled from rest on a
  nominal twin, against the sample's own face: median over samples of the expression
  distance the env rewards (mean landmark distance in the head's frame, mm, plus 0.1 mm
  per degree of head rotation), and of the mean landmark distance in pixels at the
  dataset's image size (which the head's motion moves too). The applied
  controls do not score zero: a sample's face was reached along its sequence, this one
  from rest;
- inference: predictions per second at batch 1 on one core, and in batches of 256.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facetwin.agents.inverse.dataset import DatasetError
from facetwin.agents.inverse.inputs import Split, load_split
from facetwin.agents.inverse.store import load_model
from facetwin.agents.inverse.models import BASELINES
from facetwin.agents.inverse.train import build, dataset_profile
from facetwin.envs.expression import distance
from facetwin.envs.safety import SafetyFilter
from facetwin.envs.targets import TargetModel
from facetwin.files import atomic_write


def evaluate(model_dir: Path, data: Path, closed_loop: int = 200, rate_s: float = 1.0,
             progress: bool = True) -> dict:
    """The table for the model in ``model_dir`` on ``data``'s test split (also written to
    ``model_dir/evaluation.json``); ``rate_s`` is how long each inference rate is timed."""
    p, meta = dataset_profile(data)
    module, config = load_model(model_dir, p)
    inputs = config["inputs"]
    image_size = config["architecture"].get("image_size", 64)
    test = load_split(data, "test", p, inputs, image_size)
    if len(test.y) == 0:
        raise DatasetError(f"{data} has no test samples (too few sequences to hold some "
                           "out): collect more")
    features = inputs if inputs != "image" else "ground_truth"
    baseline_test = test if inputs != "image" else load_split(data, "test", p, features)
    train_split = load_split(data, "train", p, features)
    val_split = load_split(data, "val", p, features)
    predictors = {f"{config['model']} ({inputs})": (module, test)}
    for name in BASELINES:
        baseline = build(name, p, features)
        baseline.fit(train_split.x, train_split.y, neutral=(p.neutral - p.low) / (p.high - p.low),
                     **({"val": (val_split.x, val_split.y)} if name == "ridge" else {}))
        predictors[name] = (baseline.eval(), baseline_test)
    picks = np.unique(np.linspace(0, len(test.y) - 1, min(closed_loop, len(test.y))).astype(int))
    loop = _ClosedLoop(p, meta["plan"]["image_size"], test, picks)
    rows = []
    bar = tqdm(predictors.items(), desc="evaluate", unit="model", disable=not progress)
    for name, (predictor, split) in bar:
        predicted = _predict(predictor, split.x)
        rows.append({"name": name, **_l1(predicted, split, p),
                     **loop.errors(predicted), **_rates(predictor, split.x, rate_s)})
    rows.append({"name": "applied controls (floor)", "l1": 0.0,
                 **loop.errors(test.y), "rate_batch1": None, "rate_batched": None})
    result = {"profile": p.name, "dataset": str(data), "test_samples": len(test.y),
              "closed_loop_samples": len(picks), "rows": rows}
    atomic_write(Path(model_dir) / "evaluation.json", json.dumps(result, indent=1) + "\n")
    return result


@torch.no_grad()
def _predict(module, x: np.ndarray, batch: int = 512) -> np.ndarray:
    x = torch.tensor(x)
    return torch.cat([module(x[k:k + batch]) for k in range(0, len(x), batch)]).numpy()


def _l1(predicted: np.ndarray, split: Split, p) -> dict:
    error = np.abs(predicted - split.y)
    groups = np.array([c.group for c in p.controls])
    return {"l1": float(error.mean()),
            "l1_by_region": {g: float(error[:, groups == g].mean()) for g in dict.fromkeys(groups)}}


class _ClosedLoop:
    """Predicted controls, executed on a nominal twin, against the samples' faces."""

    def __init__(self, p, image_size: int, test: Split, picks: np.ndarray):
        self.p, self.test, self.picks = p, test, picks
        self.targets = TargetModel(p, SafetyFilter(p), image_size, "ground_truth")

    def errors(self, predicted: np.ndarray) -> dict:
        if not len(self.picks):
            return {"closed_loop_mm": None, "closed_loop_px": None}
        mm, px = [], []
        for i in self.picks:
            achieved, seen = self.targets.face_of(self.p.from_box(predicted[i]))
            mm.append(float(distance(achieved, self.test.features[i])))
            px.append(float(np.linalg.norm(seen - self.test.landmarks[i], axis=1).mean()))
        return {"closed_loop_mm": float(np.median(mm)), "closed_loop_px": float(np.median(px))}


@torch.no_grad()
def _rates(module, x: np.ndarray, seconds: float = 1.0) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core
    try:
        one = torch.tensor(x[:1])
        batch = torch.tensor(np.resize(x, (256, *x.shape[1:])))
        return {"rate_batch1": _per_second(lambda: module(one), 1, seconds),
                "rate_batched": _per_second(lambda: module(batch), len(batch), seconds)}
    finally:
        torch.set_num_threads(threads)


def _per_second(call, per_call: int, seconds: float) -> float:
    for _ in range(5):
        call()  # warm up
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        n += 1
    return n * per_call / (time.perf_counter() - started)


def table(result: dict) -> str:
    """The evaluation as a Markdown table."""
    lines = [f"{result['profile']}: {result['test_samples']} test samples, closed loop on "
             f"{result['closed_loop_samples']}",
             "| model | command L1 | closed loop mm | closed loop px | batch 1 /s (1 core) "
             "| batched /s |", "|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        cells = [_cell(r[k], f) for k, f in (
            ("closed_loop_mm", ".3f"), ("closed_loop_px", ".2f"), ("rate_batch1", ",.0f"),
            ("rate_batched", ",.0f"))]
        lines.append(f"| {r['name']} | {r['l1']:.4f} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _cell(value, spec: str) -> str:
    return "" if value is None else format(value, spec)
