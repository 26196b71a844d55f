"""``facetwin mimic``: a person's face drives the robot's through an inverse model."""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin.cli.arguments import PROFILE, UsageError, count, read_rgb, real


def register(sub) -> None:
    mim = sub.add_parser("mimic", parents=[PROFILE],
                         help="a person's face (webcam, video, picture, folder) drives the "
                              "robot's through an inverse model")
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


def _mimic(args: argparse.Namespace) -> int:
    from facetwin.agents.mimic.loop import mimic
    from facetwin.agents.mimic.smoothing import OneEuroFilter

    if args.backend == "serial" and not (args.port and args.camera):
        raise UsageError("--backend serial needs --port and --camera")
    neutral = read_rgb(args.neutral) if args.neutral else None
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
