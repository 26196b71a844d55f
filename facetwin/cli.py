"""The ``facetwin`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facetwin import profile as profiles


def _demo(args: argparse.Namespace) -> int:
    from facetwin.demo import run_demo

    video, sheet = run_demo(args.profile, args.out, size=args.size, fps=args.fps,
                            transition_s=args.transition, hold_s=args.hold)
    print(f"wrote {video}\nwrote {sheet}")
    return 0


def _profiles(args: argparse.Namespace) -> int:
    for name in profiles.available():
        p = profiles.load(name)
        print(f"{p.name:8s} {len(p.controls):3d} controls  "
              f"{sum(len(c.servos) for c in p.controls):3d} servos  {p.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="facetwin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="drive a profile through its expression library and "
                                       "write a video and a contact sheet")
    demo.add_argument("--profile", default="x2c30", help="robot profile (default: x2c30)")
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    demo.add_argument("--size", type=int, default=256, help="image size in pixels")
    demo.add_argument("--fps", type=int, default=25)
    demo.add_argument("--transition", type=float, default=0.8,
                      help="seconds to move between expressions")
    demo.add_argument("--hold", type=float, default=0.6, help="seconds to hold each one")
    demo.set_defaults(func=_demo)

    sub.add_parser("profiles", help="list the robot profiles").set_defaults(func=_profiles)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except profiles.ProfileError as exc:
        print(f"facetwin: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
