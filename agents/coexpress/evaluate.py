"""Emo's evaluation of a predictive model, on a split of an onset dataset.

Each labelled sequence is predicted at its peak activation, as Emo's evaluation does
(live, :mod:`.live` decides when the face has clearly left rest, which the closed-loop
benchmark measures). Figures: the landmark MAE of the predicted target (pixels, the
person's head motion aligned away), against Emo's baselines, **mimicry** (the last
frame observed, the peak activation's, is the prediction) and **random** (a random
training sequence's target, on this person's rest), and constant-velocity extrapolation
(the last frames' velocity carried on for the training's median time to the target);
the lead time (how long before the person's peak the prediction is issued); the error
of the predicted time to the peak; and, with a robot's inverse model, Emo's
activation confusion matrix: each of the robot's commands for the predicted face and for
the true target is active when it is more than 0.25 (of 0-1) from its command for the
calm face, and a prediction is right where the two agree (Emo's Table 1: 72.2 %).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.agents.coexpress.onsets import OnsetDataError, load_sequences
from facetwin.agents.coexpress.predictor import averaged, load_predictor
from facetwin.agents.coexpress.train import prepare
from facetwin.threads import torch_single_threaded

ACTIVE = 0.25  # Emo: a command this far (0-1) from the calm face's is active
METHODS = ("predictor", "mimicry", "constant velocity", "random")


@torch_single_threaded()
def evaluate_predictor(predictor_dir: Path, data: Path, split: str = "test",
                       robot: tuple[str, Path] | None = None, seed: int = 0) -> dict:
    """The figures above; ``robot`` is (profile, inverse model folder) for the
    confusion matrix."""
    module, _ = load_predictor(predictor_dir)
    test = prepare(load_sequences(data, split))
    train = prepare(load_sequences(data, "train"))
    if not test or not train:
        raise OnsetDataError(f"{data}: no labelled sequences in the {split} or train split")
    rng = np.random.default_rng(seed)
    d, after = zip(*(averaged(module, s.before(s.activation), s.fps) for s in test))
    horizon = np.median([s.target - s.activation for s in train])
    guesses = {"predictor": np.array(d)}
    guesses["mimicry"] = np.array([s.frames_at(s.activation) for s in test])
    velocity = np.array([(s.frames_at(s.activation) - s.frames_at(s.activation - 2)) / 2
                         for s in test])
    guesses["constant velocity"] = guesses["mimicry"] + velocity * horizon
    guesses["random"] = np.array([train[k].displacements[train[k].target]
                                  for k in rng.integers(len(train), size=len(test))])
    truth = np.array([s.displacements[s.target] for s in test])
    sizes = np.array([s.face.size for s in test])[:, None, None]
    mae = {m: (np.abs(g - truth) * sizes).mean(axis=(1, 2)) for m, g in guesses.items()}
    lead = np.array([s.time_to_target(s.activation) for s in test])
    when = lead
    emotions = ["false start" if s.false_start else s.emotion for s in test]
    rows = []
    for name in sorted(set(emotions)) + ["all"]:
        keep = np.array([e == name or name == "all" for e in emotions])
        rows.append({"emotion": name, "n": int(keep.sum()),
                     **{m: float(mae[m][keep].mean()) for m in METHODS},
                     "lead_ms": float(np.median(lead[keep]) * 1e3)})
    result = {"split": split, "sequences": len(test),
              "rows": rows, "mae_px": {m: float(mae[m].mean()) for m in METHODS},
              "lead_ms": {"median": float(np.median(lead) * 1e3),
                          "p10": float(np.percentile(lead, 10) * 1e3)},
              "time_to_peak_error_ms": float(np.median(np.abs(np.array(after) - when)) * 1e3)}
    if robot is not None:
        result["activation"] = _confusion(robot, test, guesses, truth)
    return result


def _confusion(robot: tuple[str, Path], test, guesses: dict, truth: np.ndarray) -> dict:
    from facetwin.agents.mimic.pipeline import Mimic

    mapper = Mimic(profiles.load(robot[0]), Path(robot[1]))
    try:
        def commands(displacement, s):
            return mapper.units_of(mapper.features_of(s.face.landmarks(displacement),
                                                      s.face.rest))

        calm = [commands(np.zeros_like(truth[0]), s) for s in test]
        actual = np.array([np.abs(commands(t, s) - c) > ACTIVE
                           for t, s, c in zip(truth, test, calm)])
        out = {}
        for m, g in guesses.items():
            said = np.array([np.abs(commands(x, s) - c) > ACTIVE
                             for x, s, c in zip(g, test, calm)])
            tp = int((said & actual).sum())
            tn = int((~said & ~actual).sum())
            fp = int((said & ~actual).sum())
            fn = int((~said & actual).sum())
            out[m] = {"accuracy": (tp + tn) / actual.size, "tp": tp, "tn": tn, "fp": fp,
                      "fn": fn, "ppv": tp / (tp + fp) if tp + fp else None,
                      "sensitivity": tp / (tp + fn) if tp + fn else None,
                      "fpr": fp / (fp + tn) if fp + tn else None}
        return out
    finally:
        mapper.close()


def table(result: dict) -> str:
    """The evaluation as a Markdown table, then its one-line figures."""
    lines = ["| emotion | n | " + " | ".join(f"{m} MAE px" for m in METHODS)
             + " | lead ms (median) |", "|---" * (len(METHODS) + 3) + "|"]
    for r in result["rows"]:
        lines.append(f"| {r['emotion']} | {r['n']} | "
                     + " | ".join(f"{r[m]:.3f}" for m in METHODS) + f" | {r['lead_ms']:.0f} |")
    mae = result["mae_px"]
    lines.append(f"\npredictor MAE {1 - mae['predictor'] / mae['mimicry']:.0%} below mimicry, "
                 f"{1 - mae['predictor'] / mae['random']:.0%} below random; prediction issued "
                 f"a median {result['lead_ms']['median']:.0f} ms before the peak; time to the "
                 f"peak predicted within a median {result['time_to_peak_error_ms']:.0f} ms")
    for m, c in result.get("activation", {}).items():
        lines.append(f"activation ({m}): accuracy {c['accuracy']:.1%} (tp {c['tp']}, "
                     f"tn {c['tn']}, fp {c['fp']}, fn {c['fn']})")
    return "\n".join(lines)
