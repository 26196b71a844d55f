"""``facetwin collect``, ``train`` and ``evaluate``: a babbling dataset, an inverse model
fitted to it, and the model against its baselines."""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin.cli.arguments import ENGINE, IMAGE_SIZE, PROFILE, SEEDED, count, engine


def register(sub) -> None:
    col = sub.add_parser("collect", parents=[PROFILE, SEEDED, ENGINE],
                         help="babble on the twin and write a dataset (Parquet shards, "
                              "meta.json, a dataset card); resumable")
    col.add_argument("--strategy", default="babble",
                     choices=["random", "babble", "expert", "symmetric"])
    col.add_argument("--samples", type=count(1, 10_000_000), required=True,
                     help="settled samples (commands)")
    col.add_argument("--out", type=Path, required=True, help="dataset folder (runs resume)")
    col.add_argument("--image-size", type=IMAGE_SIZE, default=256, help="render size in pixels")
    col.add_argument("--no-images", action="store_true", help="leave the renders out")
    col.add_argument("--trajectory", action="store_true",
                     help="a row for every control period of each transition")
    col.set_defaults(func=_collect)

    tr = sub.add_parser("train", parents=[SEEDED],
                        help="fit an inverse model (or a baseline) to a dataset")
    tr.add_argument("--model", required=True,
                    choices=["mlp", "kan", "cnn", "neutral", "random", "nearest", "ridge"])
    tr.add_argument("--data", type=Path, required=True, help="a folder made by collect")
    tr.add_argument("--out", type=Path, required=True, help="model folder")
    tr.add_argument("--epochs", type=count(1, 100_000), help="default: the model's recipe")
    tr.add_argument("--features", choices=["ground_truth", "mediapipe"], default="ground_truth",
                    help="what landmark models read (mediapipe: as the robot's camera sees)")
    tr.add_argument("--image-size", type=count(16, 256), default=64, help="the image model's input")
    tr.set_defaults(func=_train)

    ev = sub.add_parser("evaluate", help="a model against its baselines on the test split")
    ev.add_argument("--model", type=Path, required=True, help="model folder")
    ev.add_argument("--data", type=Path, required=True, help="a folder made by collect")
    ev.add_argument("--closed-loop", type=count(0, 100_000), default=200,
                    help="test samples executed on the twin (default 200)")
    ev.set_defaults(func=_evaluate)


def _collect(args: argparse.Namespace) -> int:
    from facetwin.agents.inverse.collect import collect

    run_on = engine(args)
    meta = collect(args.profile, args.strategy, args.samples, args.out, workers=run_on.workers,
                   address=run_on.address,
                   image_size=args.image_size, seed=args.seed, images=not args.no_images,
                   trajectory=args.trajectory)
    splits = ", ".join(f"{k} {len(v)}" for k, v in meta["splits"].items())
    per_shard = meta["plan"]["sequences_per_shard"] * meta["plan"]["sequence_length"]
    rounded = (f" (--samples {args.samples} rounded up to whole shards of {per_shard})"
               if meta["rows"] > args.samples and not args.trajectory else "")
    print(f"{args.out}: {meta['rows']} rows in {meta['sequences']} sequences ({splits})"
          f"{rounded}; card: {args.out / 'README.md'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from facetwin.agents.inverse.train import train

    info = train(args.model, args.data, args.out, epochs=args.epochs, features=args.features,
                 image_size=args.image_size, seed=args.seed)
    fit = (f"validation L1 {info['val_l1']:.4f}, " if "val_l1" in info else
           "no validation samples (too few sequences to hold some out: the last epoch's "
           "weights kept), " if "train_l1" in info else "")
    print(f"{args.model}: {fit}{info['train_samples']} training samples, {info['seconds']} s")
    print(f"wrote {args.out / 'model.safetensors'}, {args.out / 'model.json'}"
          + (f", {args.out / 'loss.png'}" if "train_l1" in info else ""))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from facetwin.agents.inverse.evaluate import evaluate, table

    result = evaluate(args.model, args.data, closed_loop=args.closed_loop)
    print(table(result))
    print(f"wrote {args.model / 'evaluation.json'}")
    return 0
