"""``facetwin virtual-bus``, ``calibrate`` and ``replay``: the servo bus, real or
virtual. The only part of the command line that imports ``facetwin.hardware``."""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin import profile as profiles
from facetwin.cli.arguments import GIVEN_PROFILE, SEED, UsageError, real


def register(sub) -> None:
    vbus = sub.add_parser("virtual-bus", parents=[GIVEN_PROFILE],
                          help="serve a profile's servos on a pseudo-terminal")
    vbus.add_argument("--link", type=Path, required=True,
                      help="path of the symlink to the pseudo-terminal (the port to open)")
    vbus.add_argument("--plant", choices=["none", "twin"], default="none",
                      help="drive the twin with the servos and publish its camera")
    vbus.add_argument("--frame", type=Path, help="twin camera frame file (default LINK.png)")
    hidden = vbus.add_mutually_exclusive_group()
    hidden.add_argument("--randomization", metavar="NAME[:KNOB,...]",
                        help="--plant twin: a hidden robot drawn from this randomization "
                             "(realistic, moderate; NAME:KNOB,KNOB for some knobs alone)")
    hidden.add_argument("--robot", type=Path, help="--plant twin: the robot of a robot file")
    vbus.add_argument("--seed", type=SEED, default=0,
                      help="--randomization: which robot (as the env's reset(seed=) draws it)")
    vbus.set_defaults(func=_virtual_bus)

    cal = sub.add_parser("calibrate", parents=[GIVEN_PROFILE],
                         help="record each servo's range by hand (torque off)")
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


def _virtual_bus(args: argparse.Namespace) -> int:
    import signal
    import threading

    from facetwin.hardware.virtual_bus import VirtualBus

    p = profiles.load(args.profile)
    plant, camera = None, ""
    if args.plant != "twin" and (args.randomization or args.robot):
        raise UsageError("--randomization and --robot perturb the twin plant: add --plant twin")
    if args.plant == "twin":
        from facetwin.envs.twin_plant import PlantProcess
        from facetwin.sim.randomization import Randomization

        if args.randomization:
            try:
                Randomization.parse(args.randomization)
            except ValueError as exc:
                raise UsageError(f"--randomization: {exc}") from None
        frame = args.frame or Path(f"{args.link}.png")
        plant = PlantProcess(p, frame, randomization=args.randomization, seed=args.seed,
                             robot_file=args.robot)
        camera = f"; twin camera: {frame}"
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
