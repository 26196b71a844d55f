"""Preference learning with the simulated annotator, on emo11's happiness.

    python bench/preference.py [--parts accuracy optimise preferential screenshot]

- accuracy: a 100-face pool, 5 folds over faces (HAPI: 80% of the faces to annotate,
  20% held out); on the 80, merge sort or the active strategy asks the simulated
  annotator; every 25 comparisons a RankNet is fitted to the answers so far and scored
  on every pair of held-out faces (the annotator's noiseless preference; pairs inside its
  can't-tell band left out). Prints the accuracy curves and the comparisons each
  strategy needs to reach the goal; plots docs/preference_accuracy.png.
- optimise: a RankNet from the first 300 merge-sort comparisons on the whole pool, then
  BO on its score (30 evaluations, 3 seeds); the simulated annotator (with its noise)
  compares each optimised face with the library's 100 times.
- preferential: preferential BO, 40 comparisons answered by the simulated annotator, the
  same 100 comparisons with the library's face.
- screenshot: the annotation page in headless Chromium, docs/annotator.png.

Annotator: noise 0.1 mm (Bradley-Terry scale on the expression distance), can't tell
within 0.02 mm; its hidden target is 0.3 of the library's way from neutral. Results are
kept in bench/out/preference/results.json; parts already there are not run again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.agents.preference.pairing import active_pair, sorting_state
from facetwin.agents.preference.pool import build_pool, load_pool
from facetwin.agents.preference.fit import fit_model, fit_preference
from facetwin.agents.preference.metrics import accuracy
from facetwin.agents.preference.pairs import Pairs
from facetwin.agents.preference.bo import face_of, preferential_bo
from facetwin.agents.preference.annotators import SimulatedAnnotator, hidden_target
from facetwin.agents.optimize.tune import tune
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.files import atomic_write

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "preference"
DOCS = ROOT.parent / "docs"
PROFILE, EXPRESSION = "emo11", "happiness"
NOISE_MM, TIE_MM = 0.1, 0.02
GOAL, MAX_COMPARISONS, STEP, FOLDS = 0.85, 300, 25, 5
LIBRARY_TRIALS = 100


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["accuracy", "optimise", "preferential",
                                                    "screenshot"])
    ap.add_argument("--again", action="store_true", help="run parts already in the results")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results_path = OUT / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    p = profiles.load(PROFILE)
    pool = _pool()
    env = FaceTwinEnv(p)
    person = SimulatedAnnotator(env.features_of(hidden_target(p, EXPRESSION)), NOISE_MM,
                                TIE_MM)
    for part in args.parts:
        if part in results and not args.again:
            continue
        results[part] = PARTS[part](p, pool, env, person)
        atomic_write(results_path, json.dumps(results, indent=1) + "\n")
    env.close()
    print(summary(results))
    return 0


def _pool():
    if (OUT / "pool" / "pool.json").exists():
        return load_pool(OUT / "pool")
    return build_pool(PROFILE, EXPRESSION, OUT / "pool", size=100)


def accuracy_part(p, pool, env, person) -> dict:
    order = np.random.default_rng(0).permutation(len(pool))
    curves = {"mergesort": [], "active": []}
    for fold, held in enumerate(np.array_split(order, FOLDS)):
        train = np.setdiff1d(order, held)
        truth = _truth(person, pool, held)
        for strategy in curves:
            answers = _ask(strategy, person, pool, train)
            curve = []
            for n in range(STEP, min(len(answers), MAX_COMPARISONS) + 1, STEP):
                model = fit_model("ranknet", pool, answers[:n], epochs=300, seed=fold)
                scores = model.score_features(pool.features)
                curve.append((n, accuracy(scores, truth)))
            curves[strategy].append(curve)
            print(f"fold {fold} {strategy}: " + " ".join(f"{n}:{a:.2f}" for n, a in curve),
                  flush=True)
    out = {}
    for strategy, folds in curves.items():
        n = min(len(c) for c in folds)
        mean = np.mean([[a for _, a in c[:n]] for c in folds], axis=0)
        xs = [x for x, _ in folds[0][:n]]
        reach = next((x for x, a in zip(xs, mean) if a >= GOAL), None)
        out[strategy] = {"comparisons": xs, "accuracy": np.round(mean, 4).tolist(),
                         "to_goal": reach}
    _plot(out)
    return out


def _ask(strategy: str, person, pool, items: np.ndarray) -> list[dict]:
    """The simulated annotator's answers on ``items`` in the strategy's order."""
    ids = [pool.ids[i] for i in items]
    answers: list[dict] = []
    while len(answers) < MAX_COMPARISONS:
        if strategy == "mergesort":
            pair, _ = sorting_state(ids, [], answers, "sim")
        else:
            pair = active_pair(ids, pool.features[items], answers, "sim")
        if pair is None:
            break
        a, b = (pool.features[pool.index(i)] for i in pair)
        answers.append({"annotator": "sim", "pair": list(pair),
                        "answer": person.answer(a, b)})
    return answers


def _truth(person, pool, items) -> Pairs:
    d = person.distance(pool.features)
    pairs = np.array([(i, j) for i, j in combinations(items, 2)
                      if abs(d[i] - d[j]) >= person.tie_mm])
    return Pairs(pairs[:, 0], pairs[:, 1], (d[pairs[:, 0]] < d[pairs[:, 1]]).astype(float))


def _plot(out: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for strategy, c in out.items():
        ax.plot(c["comparisons"], c["accuracy"], marker="o", label=strategy)
    ax.axhline(GOAL, color="grey", ls="--", lw=1, label=f"goal {GOAL:.0%}")
    ax.set_xlabel("comparisons answered")
    ax.set_ylabel("held-out pair accuracy")
    ax.set_title(f"RankNet on {PROFILE} {EXPRESSION}, simulated annotator "
                 f"(noise {NOISE_MM} mm)", fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    DOCS.mkdir(exist_ok=True)
    fig.savefig(DOCS / "preference_accuracy.png", dpi=120)
    plt.close(fig)


def _preferred_share(person, face, library) -> float:
    wins = sum(person.answer(face["features"], library["features"]) == "left"
               for _ in range(LIBRARY_TRIALS))
    return wins / LIBRARY_TRIALS


def optimise_part(p, pool, env, person) -> dict:
    answers = _ask("mergesort", person, pool, np.arange(len(pool)))[:MAX_COMPARISONS]
    log = OUT / "optimise" / "answers.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(json.dumps(a) + "\n" for a in answers))
    model_dir = OUT / "optimise" / "model"
    info = fit_preference(pool, answers, model_dir, folds=FOLDS)
    library = face_of(env, EXPRESSION, p.expressions[EXPRESSION])
    runs = []
    for seed in range(3):
        out = OUT / "optimise" / f"bo-s{seed}"
        shutil.rmtree(out, ignore_errors=True)
        tuned = tune(PROFILE, EXPRESSION, out, preference=model_dir, budget=30, seed=seed)
        face = face_of(env, EXPRESSION, tuned.best["applied"])
        runs.append({"seed": seed, "distance_mm": round(float(person.distance(
            face["features"])), 3), "preferred_over_library": _preferred_share(
            person, face, library)})
        print(f"optimise seed {seed}: {runs[-1]}", flush=True)
    return {"comparisons": len(answers), "cv_accuracy": info["cv_accuracy_mean"],
            "library_distance_mm": round(float(person.distance(library["features"])), 3),
            "runs": runs}


def preferential_part(p, pool, env, person) -> dict:
    library = face_of(env, EXPRESSION, p.expressions[EXPRESSION])
    runs = []
    for seed in range(3):
        best = preferential_bo(env, EXPRESSION, lambda a, b: person.answer(
            a["features"], b["features"]), budget=40, seed=seed)
        runs.append({"seed": seed, "distance_mm": round(float(person.distance(
            best["features"])), 3), "preferred_over_library": _preferred_share(
            person, best, library)})
        print(f"preferential seed {seed}: {runs[-1]}", flush=True)
    return {"comparisons": 40, "runs": runs}


def screenshot_part(p, pool, env, person) -> dict:
    sys.path.insert(0, str(ROOT.parent / "tests"))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from helpers import chromium

    from facetwin.agents.preference.server import AnnotationServer

    copy = load_pool(shutil.copytree(pool.path, OUT / "screenshot" / "happy",
                                     dirs_exist_ok=True))
    (copy.path / "answers.jsonl").unlink(missing_ok=True)
    with AnnotationServer([copy], port=0) as server, chromium() as browser:
        browser.get(f"{server.url}/pool/happy?annotator=ana")
        WebDriverWait(browser, 30).until(
            lambda b: b.find_element(By.ID, "progress").get_attribute("data-done") == "0")
        WebDriverWait(browser, 30).until(lambda b: b.execute_script(
            "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"))
        browser.save_screenshot(str(DOCS / "annotator.png"))
    return {"path": "docs/annotator.png"}


PARTS = {"accuracy": accuracy_part, "optimise": optimise_part,
         "preferential": preferential_part, "screenshot": screenshot_part}


def summary(results: dict) -> str:
    lines = [f"simulated annotator: noise {NOISE_MM} mm, can't tell within {TIE_MM} mm"]
    acc = results.get("accuracy")
    if acc:
        for strategy, c in acc.items():
            best = max(c["accuracy"])
            lines.append(f"{strategy:9s} held-out accuracy {best:.3f} at best; reaches "
                         f"{GOAL:.0%} after {c['to_goal']} comparisons; curve "
                         + " ".join(f"{n}:{a:.2f}" for n, a in zip(c["comparisons"],
                                                                  c["accuracy"])))
        m, a = acc["mergesort"]["to_goal"], acc["active"]["to_goal"]
        if m and a:
            lines.append(f"active needs {a / m:.2f}x the comparisons merge sort needs")
    for part in ("optimise", "preferential"):
        if part in results:
            r = results[part]
            shares = [run["preferred_over_library"] for run in r["runs"]]
            dist = [run["distance_mm"] for run in r["runs"]]
            lines.append(f"{part}: preferred over the library's face in "
                         f"{', '.join(f'{s:.0%}' for s in shares)} of {LIBRARY_TRIALS} "
                         f"comparisons (seeds 0-2); distance to the hidden target "
                         f"{', '.join(map(str, dist))} mm"
                         + (f" (library {r['library_distance_mm']} mm)"
                            if "library_distance_mm" in r else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
