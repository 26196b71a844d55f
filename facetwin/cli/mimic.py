"""``facetwin mimic`` and ``coexpress``: a person's face drives the robot's through an
inverse model, after them or, with a predictive model, with them."""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin.cli.arguments import PROFILE, UsageError, count, read_rgb, real


def _live() -> argparse.ArgumentParser:
    """What both commands take: where the person is, where the robot is, the filter."""
    live = argparse.ArgumentParser(add_help=False)
    live.add_argument("--source", required=True,
                      help="<video0> or a webcam index, a video file, an image, a folder")
    live.add_argument("--neutral", type=Path, help="a picture of the person at rest")
    live.add_argument("--backend", choices=["twin", "serial"], default="twin")
    live.add_argument("--port", help="the servo bus (serial backend)")
    live.add_argument("--camera", help="the robot's camera (serial backend)")
    live.add_argument("--journal", type=Path, help="the serial session's journal "
                                                   "(default: journals/PROFILE-TIME.jsonl)")
    live.add_argument("--gain", type=real(0, 10), default=1.0, help="expression gain (Emo's K)")
    live.add_argument("--min-cutoff", type=real(0, 1000, above=True), default=1.0,
                      help="One-Euro cutoff on a held pose, Hz (lower: smoother)")
    live.add_argument("--beta", type=real(0, 1000), default=5.0,
                      help="One-Euro speed coefficient (higher: less lag on moves)")
    live.add_argument("--d-cutoff", type=real(0, 1000, above=True), default=1.0,
                      help="One-Euro speed cutoff, Hz")
    live.add_argument("--fps", type=real(0, 240, above=True), default=30.0,
                      help="frame rate of a folder of images or a held picture")
    live.add_argument("--no-preview", action="store_true", help="no window even with a display")
    return live


LIVE = _live()


def register(sub) -> None:
    mim = sub.add_parser("mimic", parents=[PROFILE, LIVE],
                         help="a person's face (webcam, video, picture, folder) drives the "
                              "robot's through an inverse model")
    mim.add_argument("--model", type=Path, required=True,
                     help="a model folder trained with --features mediapipe")
    mim.add_argument("--out", type=Path, default=Path("out/mimic"), help="output folder")
    mim.add_argument("--neutral-frames", type=count(0, 10_000),
                     help="else the first N frames with a face are the person at rest "
                          "(default 10, or 0 for a picture: the robot's neutral stands in)")
    mim.set_defaults(func=_mimic)

    co = sub.add_parser("coexpress", parents=[PROFILE, LIVE],
                        help="anticipate a person's expression from its first frames and "
                             "make it with them (Emo's coexpression); mimicry otherwise")
    co.add_argument("--inverse", type=Path, required=True,
                    help="the robot's inverse model, trained with --features mediapipe")
    co.add_argument("--predictor", type=Path, required=True,
                    help="a predictive model (facetwin train-predictor)")
    co.add_argument("--out", type=Path, default=Path("out/coexpress"), help="output folder")
    co.add_argument("--neutral-frames", type=count(1, 10_000), default=10,
                    help="else the first N frames with a face are the person at rest")
    co.add_argument("--latency", type=real(0, 10), default=0.0,
                    help="seconds from a frame's capture to the robot moving (camera, "
                         "processing, servos), made up for by arriving that much earlier")
    co.set_defaults(func=_coexpress)


def _common(args: argparse.Namespace) -> dict:
    from facetwin.agents.mimic.smoothing import OneEuroFilter

    if args.backend == "serial" and not (args.port and args.camera):
        raise UsageError("--backend serial needs --port and --camera")
    try:
        smoothing = OneEuroFilter(args.min_cutoff, args.beta, args.d_cutoff)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return {"backend": args.backend, "port": args.port, "camera": args.camera,
            "journal": args.journal,
            "neutral": read_rgb(args.neutral) if args.neutral else None,
            "neutral_frames": args.neutral_frames, "smoothing": smoothing, "gain": args.gain,
            "fps": args.fps, "preview": False if args.no_preview else None}


def _mimic(args: argparse.Namespace) -> int:
    from facetwin.agents.mimic.loop import mimic

    summary = mimic(args.profile, args.model, args.source, args.out, **_common(args))
    _print(summary, args.out)
    return 0


def _coexpress(args: argparse.Namespace) -> int:
    from facetwin.agents.coexpress.loop import coexpress

    summary = coexpress(args.profile, args.inverse, args.predictor, args.source, args.out,
                        latency_s=args.latency, **_common(args))
    _print(summary, args.out)
    timed = [e for e in summary["expressions"] if e["late_s"] is not None]
    for e in summary["expressions"]:
        print(f"expression at {e['onset_s']:.2f} s: person peaked at {e['peak_s']:.2f} s, "
              + (f"robot 80 % of its way at {e['robot_80_s']:.2f} s "
                 f"({e['late_s'] * 1e3:+.0f} ms)" if e["late_s"] is not None else e["why"]))
    if timed:
        print(f"{len(summary['onsets'])} onsets acted on; median robot - person "
              f"{summary['median_late_s'] * 1e3:+.0f} ms over {len(timed)} expressions")
    return 0


def _print(summary: dict, out: Path) -> None:
    lat = summary["camera_to_command_ms"]
    print(f"{summary['frames']} frames, a face in {summary['faces_found']}, "
          f"{summary['frames_per_s']:.1f} frames/s, camera -> command p50 {lat['p50']} ms "
          f"p95 {lat['p95']} ms" + (" (interrupted)" if summary["interrupted"] else ""))
    print(f"wrote {summary['video']}\nwrote {out / 'summary.json'}")
