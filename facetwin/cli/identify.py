"""``facetwin identify``: a short session on the robot, then the twin fitted to it and
written as a robot file that ``--robot`` (and ``FaceTwinEnv(robot=...)``) builds."""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin.cli.arguments import GIVEN_PROFILE, SEED, WORKERS, UsageError, count
from facetwin.files import claim_output


def register(sub) -> None:
    ident = sub.add_parser(
        "identify", parents=[GIVEN_PROFILE],
        help="fit the twin to a robot from a short camera session (servo zeros and "
             "travel, grip points, skin, camera pose); resumable")
    robot = ident.add_mutually_exclusive_group(required=True)
    robot.add_argument("--port", help="the robot's servo bus (with --camera)")
    robot.add_argument("--simulate", metavar="NAME[:KNOB,...]",
                       help="no robot: a hidden twin drawn from this randomization "
                            "(realistic, moderate) with --seed stands in for one")
    ident.add_argument("--camera", help="the robot's camera: a webcam, a video file or the "
                                        "virtual bus's frame file")
    ident.add_argument("--seed", type=SEED, default=0, help="--simulate: which robot")
    ident.add_argument("--out", type=Path, required=True,
                       help="folder for the session journal, frames, robot file and picture")
    ident.add_argument("--name", help="the robot's name (default: the profile's)")
    ident.add_argument("--poses", type=count(40, 120), default=120,
                       help="poses shown to the camera (default and most: 120)")
    ident.add_argument("--fit", metavar="BLOCK,...",
                       help="fit only these parameter blocks, the rest nominal (e.g. "
                            "servo_offset when everything else was measured)")
    ident.add_argument("--calibration", type=Path, help="the servos' calibration file")
    ident.add_argument("--workers", type=WORKERS, default=2,
                       help="processes taking the twin's Jacobian (default 2)")
    ident.set_defaults(func=_identify)


def _identify(args: argparse.Namespace) -> int:
    from facetwin import profile as profiles
    from facetwin.agents.identify import identify
    from facetwin.agents.identify.model import BLOCKS
    from facetwin.agents.identify.poses import design
    from facetwin.agents.identify.session import HiddenRobot
    from facetwin.envs.face_env import FaceTwinEnv
    from facetwin.sim.randomization import Randomization

    p = profiles.load(args.profile)
    blocks = None
    if args.fit:
        blocks = args.fit.split(",")
        known = list(BLOCKS)
        unknown = [b for b in blocks if b not in known]
        if unknown:
            raise UsageError(f"--fit: unknown blocks {unknown}; known: {', '.join(known)}")
    if args.port and not args.camera:
        raise UsageError("--port needs --camera (what the robot's camera sees is the data)")
    try:
        design(p, args.poses)
    except ValueError as exc:
        raise UsageError(f"--poses: {exc}") from None
    with claim_output(args.out):
        if args.simulate:
            try:
                r = Randomization.parse(args.simulate)
            except ValueError as exc:
                raise UsageError(f"--simulate: {exc}") from None
            env = HiddenRobot(FaceTwinEnv(p, randomization=r, features="camera"), args.seed)
        else:
            env = FaceTwinEnv(p, backend="serial", port=args.port, camera=args.camera,
                              calibration=args.calibration,
                              journal=args.out / "hardware-journal.jsonl")
        try:
            found = identify(env, args.out, args.name or p.name, args.poses, blocks=blocks,
                             workers=args.workers)
        finally:
            env.close()
    print(f"robot file: {found.path}\nbefore/after: "
          f"{found.path.with_name(found.path.name.replace('.robot.json', '.before-after.png'))}")
    print(f"held-out landmark error: nominal twin {found.nominal_px:.2f} px, identified "
          f"{found.identified_px:.2f} px; robot time {found.robot_time_s:.0f} s; fit "
          f"{found.fit.seconds.get('jacobian_s', 0) + found.fit.seconds.get('detect_s', 0):.0f} s")
    return 0
