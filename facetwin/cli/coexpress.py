"""``facetwin onsets``, ``train-predictor`` and ``evaluate-predictor``: expression onsets
as data, Emo's predictive model fitted to them, and the model against its baselines.
(``facetwin coexpress`` itself runs with ``mimic``, in :mod:`facetwin.cli.mimic`.)"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facetwin.files import atomic_write
from facetwin.cli.arguments import (
    ENGINE, IMAGE_SIZE, PROFILE, SEEDED, UsageError, count, engine,
)


def register(sub) -> None:
    on = sub.add_parser("onsets", parents=[PROFILE, SEEDED, ENGINE],
                        help="a dataset of expression onsets, from synthetic people (twin "
                             "faces) or videos of people, labelled as Emo labels them; "
                             "resumable")
    source = on.add_mutually_exclusive_group(required=True)
    source.add_argument("--synthetic", action="store_true",
                        help="synthetic people: twin faces of --profile with identities of "
                             "their own and human timing")
    source.add_argument("--videos", type=Path,
                        help="a folder of videos, a subfolder per person (or a file each)")
    on.add_argument("--people", type=count(1, 100_000), default=72,
                    help="synthetic people (default 72)")
    on.add_argument("--per-person", type=count(1, 1000), default=12,
                    help="expressions each (default 12)")
    on.add_argument("--image-size", type=IMAGE_SIZE, default=256, help="render size in pixels")
    on.add_argument("--out", type=Path, required=True, help="dataset folder (runs resume)")
    on.set_defaults(func=_onsets)

    tr = sub.add_parser("train-predictor", parents=[SEEDED],
                        help="fit Emo's predictive model to an onset dataset")
    tr.add_argument("--data", type=Path, required=True, help="a folder made by onsets")
    tr.add_argument("--out", type=Path, required=True, help="predictor folder")
    tr.add_argument("--steps", type=count(1, 10_000_000), default=4000,
                    help="optimiser steps of 128 samples (default 4000)")
    tr.add_argument("--split-by", choices=["person", "sequence"], default="person",
                    help="hold out people (default) or sequences")
    tr.set_defaults(func=_train)

    ev = sub.add_parser("evaluate-predictor",
                        help="a predictive model against mimicry, constant velocity and "
                             "random on the test people")
    ev.add_argument("--predictor", type=Path, required=True, help="predictor folder")
    ev.add_argument("--data", type=Path, required=True, help="a folder made by onsets")
    ev.add_argument("--robot", help="a robot profile: with --inverse, Emo's activation "
                                    "confusion matrix on its commands")
    ev.add_argument("--inverse", type=Path, help="the robot's inverse model (mediapipe)")
    ev.set_defaults(func=_evaluate)


def _onsets(args: argparse.Namespace) -> int:
    from facetwin.agents.coexpress.record import record_synthetic, record_videos

    if args.synthetic:
        run_on = engine(args)
        meta = record_synthetic(args.profile, args.people, args.out, args.per_person,
                                workers=run_on.workers, address=run_on.address,
                                seed=args.seed, image_size=args.image_size)
    else:
        meta = record_videos(args.videos, args.out, profile=args.profile)
    splits = ", ".join(f"{k} {len(v)}" for k, v in meta["splits"].items())
    print(f"{args.out}: {meta['sequences']} sequences, {meta['labelled']} with a clear onset; "
          f"people {splits}; card: {args.out / 'README.md'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from facetwin.agents.coexpress.train import train_predictor

    record = train_predictor(args.data, args.out, steps=args.steps, seed=args.seed,
                             by=args.split_by)
    print(f"predictor: validation MAE {record['val_mae_skull']:.4f} skull sizes, "
          f"{record['train_sequences']} training sequences")
    print(f"wrote {args.out / 'predictor.safetensors'}, {args.out / 'predictor.json'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from facetwin.agents.coexpress.evaluate import evaluate_predictor, table

    if (args.robot is None) != (args.inverse is None):
        raise UsageError("--robot and --inverse go together")
    result = evaluate_predictor(args.predictor, args.data,
                                robot=(args.robot, args.inverse) if args.robot else None)
    print(table(result))
    atomic_write(args.predictor / "evaluation.json", json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.predictor / 'evaluation.json'}")
    return 0
