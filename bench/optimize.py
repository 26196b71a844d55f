"""Benchmark of the optimisers: evaluations and wall time to come within ε of hidden targets.

    pip install -e .[bench]      # Optuna, for its samplers
    python bench/optimize.py [--profiles emo11 x2c30] [--targets 3] [--seeds 2]
                             [--budget 100] [--methods bo random cmaes optuna-gp optuna-tpe]
                             [--busy-methods bo optuna-gp] [--busy-seeds 1]

For each profile, ``--targets`` control vectors are drawn uniformly from the profile's
ranges (the agent sees only the env's reward and landmarks). ε is 10% of the target's
mean landmark displacement from neutral at 256x256; a run has reached the target when
its expression distance (landmarks plus head term) is at most ε, and stops there.
Every method gets the same budget, seeds, start point (neutral) and evaluation function
(the env at ``step_mode="settle"``); FaceTwin's methods ask batches of ``--batch``,
Optuna's samplers one trial at a time (their natural mode, and the one that needs the
fewest evaluations).

Wall time is the run's own, from its log: evaluations and the search's own time
together. The runs are made twice: on a quiet machine, and (``--busy-methods``, on
``--busy-seeds`` seeds) with every core kept busy by another process, as on a shared
machine or a CI runner.

Prints the per-target table (evaluations to ε per seed) and, per profile, method and
load, the median evaluations to ε and the median wall time to ε (runs that never
reach it count as more than the budget, and as more than their whole wall time), and
the median wall time per evaluation. Run logs go to ``--out``: a killed benchmark
resumes where it stopped, and a finished one prints its figures again from the logs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def hidden_targets(profile, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(2026)
    return [rng.uniform(profile.low, profile.high) for _ in range(n)]


def reached(records: list[dict], eps: float) -> tuple[int | None, float]:
    """Evaluations to ε (None if never) and the wall time spent until then (or in all)."""
    wall = 0.0
    for r in records:
        wall += r["wall_s"]
        if r["distance_mm"] <= eps:
            return r["index"] + 1, wall
    return None, wall


def median_censored(values: list[float | None], censor: list[float], fmt: str) -> str:
    """Median where None means 'more than' that run's censor value."""
    ranked = sorted((c, True) if v is None else (v, False) for v, c in zip(values, censor))
    middle = ranked[(len(ranked) - 1) // 2:len(ranked) // 2 + 1]
    if any(over for _, over in middle):
        return ">" + fmt.format(max(v for v, _ in middle))
    return fmt.format(float(np.mean([v for v, _ in middle])))


def make_method(method: str, p, seed: int, batch: int):
    if method.startswith("optuna-"):
        from optuna_search import OptunaSearch

        return OptunaSearch(p.low, p.high, p.neutral, seed, method.split("-", 1)[1])
    from facetwin.agents.optimize.methods import make_search

    return make_search(method, p.low, p.high, p.neutral, seed, batch, p.strain_ceiling)


def _burn(stop) -> None:
    a = np.random.default_rng(0).random((200, 200))
    while not stop.is_set():
        a = np.tanh(a @ a.T / 200)


@contextmanager
def busy_cores(busy: bool):
    """Every core kept busy by another process (numpy with one thread each) meanwhile."""
    if not busy:
        yield
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    burners = [ctx.Process(target=_burn, args=(stop,), daemon=True)
               for _ in range(os.cpu_count() or 1)]
    for b in burners:
        b.start()
    try:
        yield
    finally:
        stop.set()
        for b in burners:
            b.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", default=["emo11", "x2c30"])
    ap.add_argument("--targets", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--batch", type=int, default=2, help="q of FaceTwin's methods")
    ap.add_argument("--methods", nargs="+",
                    default=["bo", "random", "cmaes", "optuna-gp", "optuna-tpe"])
    ap.add_argument("--busy-methods", nargs="*", default=["bo", "optuna-gp"])
    ap.add_argument("--busy-seeds", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/out/optimize"))
    args = ap.parse_args()

    from facetwin.agents.optimize.harness import run_search, target_id
    from facetwin.envs.expression import unpack
    from facetwin.envs.face_env import FaceTwinEnv

    plans = [("quiet", args.methods, args.seeds)]
    if args.busy_methods:
        plans.append(("busy", args.busy_methods, args.busy_seeds))
    results = {}  # (profile, load, method) -> list of (target, seed, evals, wall, n, wall all)
    epsilons = {}
    for load, methods, seeds in plans:
        with busy_cores(load == "busy"):
            for name in args.profiles:
                env = FaceTwinEnv(name, image_size=256)
                p = env.profile
                for ti, target in enumerate(hidden_targets(p, args.targets)):
                    obs, _ = env.reset(options={"target": target})
                    shown = unpack(obs["desired_goal"])[0]
                    eps = 0.1 * float(np.linalg.norm(shown, axis=1).mean())
                    epsilons[name, ti] = eps
                    for method in methods:
                        for seed in range(seeds):
                            batch = 1 if method.startswith("optuna-") else args.batch
                            search = make_method(method, p, seed, batch)
                            run = run_search(
                                env, {"target": target}, search, args.budget, batch,
                                args.out / load / name / f"target{ti}" / f"{method}-s{seed}.jsonl",
                                {"profile": p.name, "profile_sha256": p.sha256,
                                 "target": target_id(target)},
                                progress=False,
                                stop=lambda recs: any(r["distance_mm"] <= eps for r in recs))
                            n, wall = reached(run.records, eps)
                            total = sum(r["wall_s"] for r in run.records)
                            results.setdefault((name, load, method), []).append(
                                (ti, seed, n, wall, len(run.records), total))
                            print(f"{load} {name} target {ti} (eps {eps:.3f} mm) {method:10s} "
                                  f"seed {seed}: {n if n else '>' + str(args.budget)} evals, "
                                  f"{wall:.1f} s", flush=True)
                env.close()
    report(results, epsilons, args)


def report(results: dict, epsilons: dict, args) -> None:
    methods = args.methods
    print(f"\nevaluations to within 10% of hidden targets, per seed (quiet machine, budget "
          f"{args.budget}; FaceTwin's methods q={args.batch}, Optuna's one at a time)\n")
    print("| profile | target | ε | " + " | ".join(methods) + " |")
    print("|---|---|---|" + "---|" * len(methods))
    for (name, ti), eps in epsilons.items():
        cells = []
        for m in methods:
            runs = [r for r in results.get((name, "quiet", m), []) if r[0] == ti]
            cells.append(", ".join(str(r[2]) if r[2] else f">{args.budget}" for r in runs))
        print(f"| {name} | {ti} | {eps:.2f} mm | " + " | ".join(cells) + " |")

    print("\n| profile | load | method | median evals to ε | reached | median wall to ε "
          "| median s/eval |")
    print("|---|---|---|---|---|---|---|")
    for (name, load, m), runs in results.items():
        evals = median_censored([r[2] for r in runs], [args.budget] * len(runs), "{:g}")
        wall = median_censored([r[3] if r[2] else None for r in runs],
                               [r[5] for r in runs], "{:.1f} s")
        per_eval = np.median([r[5] / r[4] for r in runs])
        hit = sum(r[2] is not None for r in runs)
        print(f"| {name} | {load} | {m} | {evals} | {hit}/{len(runs)} | {wall} "
              f"| {per_eval:.2f} |")


if __name__ == "__main__":
    main()
