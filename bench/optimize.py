"""Benchmark of the optimisers: evaluations to come within ε of hidden targets.

    python bench/optimize.py [--profiles emo11 x2c30] [--targets 6] [--seeds 5]
                             [--budget 150] [--methods bo random cmaes]

For each profile, ``--targets`` control vectors are drawn uniformly from the profile's
ranges (the agent sees only the env's reward and landmarks). ε is 10% of the target's
mean landmark displacement from neutral at 256x256; a run has reached the target when
its expression distance (landmarks plus head term) is at most ε, and stops there.
Each method gets the same budget, seeds and evaluation function (the env at
``step_mode="settle"``). Prints, per profile and method, the median evaluations to ε
(runs that never reach it count as more than the budget) and the median wall time per
evaluation, the search's own time included. Run logs go to ``--out``, so a killed
benchmark resumes where it stopped.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def hidden_targets(profile, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(2026)
    return [rng.uniform(profile.low, profile.high) for _ in range(n)]


def evals_to(run, eps: float) -> int | None:
    hit = [r["index"] + 1 for r in run.records if r["distance_mm"] <= eps]
    return min(hit) if hit else None


def median_censored(values: list[int | None], budget: int) -> str:
    """Median where None means 'more than the budget'."""
    ranked = sorted(v if v is not None else budget + 1 for v in values)
    m = float(np.median(ranked))
    return f">{budget}" if m > budget else f"{m:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", default=["emo11", "x2c30"])
    ap.add_argument("--targets", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=150)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["bo", "random", "cmaes"])
    ap.add_argument("--out", type=Path, default=Path("bench/out/optimize"))
    args = ap.parse_args()

    from facetwin.agents.optimize import run_search, target_id
    from facetwin.agents.search import make_search
    from facetwin.envs.face_env import FaceTwinEnv

    rows = []
    for name in args.profiles:
        env = FaceTwinEnv(name, image_size=256)
        p = env.profile
        results = {m: [] for m in args.methods}
        walls = {m: [] for m in args.methods}
        for ti, target in enumerate(hidden_targets(p, args.targets)):
            obs, _ = env.reset(options={"target": target})
            shown = obs["desired_goal"][:-3].reshape(-1, 3)
            eps = 0.1 * float(np.linalg.norm(shown, axis=1).mean())
            for method in args.methods:
                for seed in range(args.seeds):
                    search = make_search(method, p.low, p.high, p.neutral, seed,
                                         args.batch, p.strain_ceiling)
                    t0 = time.perf_counter()
                    run = run_search(
                        env, {"target": target}, search, args.budget, args.batch,
                        args.out / name / f"target{ti}" / f"{method}-s{seed}.jsonl",
                        {"profile": p.name, "profile_sha256": p.sha256,
                         "target": target_id(target)},
                        progress=False,
                        stop=lambda recs: any(r["distance_mm"] <= eps for r in recs))
                    n = evals_to(run, eps)
                    results[method].append(n)
                    walls[method] += [r["wall_s"] for r in run.records]
                    print(f"{name} target {ti} (eps {eps:.3f} mm) {method:6s} seed {seed}: "
                          f"{n if n else '>' + str(args.budget)} evals "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for method in args.methods:
            reached = sum(v is not None for v in results[method])
            rows.append((name, method, median_censored(results[method], args.budget),
                         f"{reached}/{len(results[method])}",
                         f"{1e3 * np.median(walls[method]):.0f}"))
        env.close()

    print(f"\nevaluations to within 10% of hidden targets ({args.targets} targets x "
          f"{args.seeds} seeds, budget {args.budget}, batch {args.batch})")
    print(f"{'profile':8s} {'method':7s} {'median evals':>13s} {'reached':>8s} "
          f"{'ms/eval':>8s}")
    for row in rows:
        print(f"{row[0]:8s} {row[1]:7s} {row[2]:>13s} {row[3]:>8s} {row[4]:>8s}")


if __name__ == "__main__":
    main()
