"""``facetwin optimize``: one expression tuned on the twin (BO and its baselines, an
emotion recogniser's score, a learned preference, or people comparing faces live)."""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin import profile as profiles
from facetwin.cli.arguments import (
    ENGINE, PORT, PROFILE, SEEDED, UsageError, WORKERS, count, engine, read_rgb,
)


def register(sub) -> None:
    opt = sub.add_parser("optimize", parents=[PROFILE, SEEDED],
                         help="tune one expression on the twin; write a library file, a "
                              "convergence plot and before/after renders")
    opt.add_argument("--target", help="an expression of the profile's library")
    opt.add_argument("--target-image", type=Path, help="a picture of a person to mimic")
    opt.add_argument("--target-neutral", type=Path,
                     help="the same person at rest (default: the robot's neutral stands in)")
    opt.add_argument("--name", help="library entry name (default: target or picture name)")
    opt.add_argument("--method", choices=["bo", "random", "cmaes", "all"], default="bo")
    opt.add_argument("--budget", type=count(1, 100_000), default=100, help="evaluations per method")
    opt.add_argument("--batch", type=count(1, 64), default=2,
                     help="controls proposed at a time (q)")
    opt.add_argument("--workers", type=WORKERS, default=2, help="twins evaluating in parallel")
    opt.add_argument("--init-model", type=Path,
                     help="an inverse model's folder: start from its proposal and refine it")
    opt.add_argument("--preference", type=Path,
                     help="a preference model's folder (fit-preference): maximise its score")
    opt.add_argument("--objective", metavar="emotion:NAME",
                     help="maximise how sure an emotion recogniser is that the face shows "
                          "NAME (angry, disgust, fear, happy, sad, surprise, neutral or the "
                          "library's names); starts from the profile's own expression")
    opt.add_argument("--preferential", action="store_true",
                     help="preferential BO: people compare the proposed faces on the "
                          "annotation page as it runs (--budget counts comparisons)")
    opt.add_argument("--host", default="127.0.0.1", help="--preferential: page address")
    opt.add_argument("--port", type=PORT, default=8000, help="--preferential: page port")
    opt.add_argument("--robot", type=Path,
                     help="a robot file (facetwin identify): tune on that robot's twin")
    opt.add_argument("--out", type=Path, required=True, help="output folder (runs resume)")
    opt.set_defaults(func=_optimize)

    sw = sub.add_parser("sweep", parents=[PROFILE, ENGINE],
                        help="tune a whole expression library in parallel (targets x seeds) "
                             "and keep the best of each in one library file; resumable")
    sw.add_argument("--targets", type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
                    help="comma-separated expressions and emotion:NAME objectives (default: "
                         "every expression of the profile but neutral)")
    sw.add_argument("--seeds", type=count(1, 1000), default=2, help="seeds per target")
    sw.add_argument("--method", choices=["bo", "random", "cmaes"], default="bo")
    sw.add_argument("--budget", type=count(1, 100_000), default=60, help="evaluations per run")
    sw.add_argument("--batch", type=count(1, 64), default=2, help="controls proposed at a time")
    sw.add_argument("--out", type=Path, required=True, help="output folder (sweeps resume)")
    sw.set_defaults(func=_sweep)


def _optimize(args: argparse.Namespace) -> int:
    from facetwin.agents.optimize.tune import tune

    if args.preferential:
        from facetwin.cli.preference import optimize_preferential

        if args.target is None or args.preference or args.init_model or args.target_image:
            raise UsageError("--preferential takes --target NAME (the expression people "
                             "judge) and none of --preference, --init-model, --target-image")
        return optimize_preferential(args)
    if args.objective is not None:
        return _optimize_emotion(args)
    if (args.target is None) == (args.target_image is None):
        raise UsageError("give one of --target NAME and --target-image PATH")
    target, neutral = args.target, None
    if args.target_image is not None:
        target = read_rgb(args.target_image)
        neutral = read_rgb(args.target_neutral) if args.target_neutral else None
    elif args.target_neutral:
        raise UsageError("--target-neutral goes with --target-image")
    if args.target is not None and args.target not in profiles.load(args.profile).expressions:
        raise UsageError(f"profile {args.profile!r} has no expression {args.target!r}; "
                         f"library: {', '.join(sorted(profiles.load(args.profile).expressions))}")
    methods = ["bo", "random", "cmaes"] if args.method == "all" else [args.method]
    name = args.name or (args.target or args.target_image.stem)
    tuned = tune(args.profile, target, args.out, name=name, methods=methods,
                 budget=args.budget, seed=args.seed, batch=args.batch, workers=args.workers,
                 target_neutral=neutral, init_model=args.init_model,
                 preference=args.preference, robot=args.robot)
    if tuned.model is not None:
        first = tuned.runs[0].records[0]
        print(f"model's one-shot face: expression distance {-first['score']:.3f}")
    for run in tuned.runs:
        best = (f"learned preference score {run.best['score']:.3f}" if args.preference
                else f"expression distance {-run.best['score']:.3f}")
        print(f"{run.method:7s} best {best} after {len(run.records)} evaluations")
    for path in (tuned.library, tuned.convergence, tuned.before, tuned.after, tuned.target,
                 tuned.model):
        if path is not None:
            print(f"wrote {path}")
    return 0


def _optimize_emotion(args: argparse.Namespace) -> int:
    """``--objective emotion:NAME``: the face a recogniser finds most NAME."""
    from facetwin.agents.emotion_objective import EmotionObjective
    from facetwin.agents.optimize.tune import tune

    if args.target or args.target_image or args.init_model or args.preference:
        raise UsageError("--objective takes none of --target, --target-image, --init-model "
                         "and --preference")
    try:
        objective = EmotionObjective.parse(args.objective)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    methods = ["bo", "random", "cmaes"] if args.method == "all" else [args.method]
    tuned = tune(args.profile, None, args.out, name=args.name, methods=methods,
                 budget=args.budget, seed=args.seed, batch=args.batch, workers=args.workers,
                 objective=objective)
    for run in tuned.runs:
        first = next(i for i, r in enumerate(run.records) if r["score"] == run.best["score"])
        print(f"{run.method:7s} best: recognised {objective.emotion} "
              f"{run.best['probability']:.3f} at evaluation {first + 1} of "
              f"{len(run.records)} (started at {run.records[0]['probability']:.3f})")
    for path in (tuned.library, tuned.convergence, tuned.before, tuned.after):
        print(f"wrote {path}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from facetwin.agents.optimize.sweep import sweep

    run_on = engine(args)
    swept = sweep(args.profile, args.out, args.targets, seeds=args.seeds, method=args.method,
                  budget=args.budget, batch=args.batch, workers=run_on.workers,
                  address=run_on.address)
    for target, best in swept.best.items():
        got = (f"recognised {best['probability']:.3f}" if "probability" in best
               else f"expression distance {best['distance_mm']:.3f} mm")
        print(f"{target:18s} best {got} (seed {best['seed']})")
    print(f"wrote {swept.library}, {args.out / 'sweep.json'} and runs/ (logs, convergence)")
    if swept.failed:
        print(f"facetwin: {len(swept.failed)} run(s) failed twice: "
              + "; ".join(f"{k}: {v}" for k, v in swept.failed.items())
              + ". Run the same command again to retry them.")
        return 1
    return 0
