"""Where a person's face comes from when the robot mimics it.

``open_source(spec, fps)``:
- a webcam: ``"<video0>"``, ``/dev/videoN`` or an index (``"0"``); live, stamped when read;
- a video file: its frames once, timed by the file's frame rate;
- an image file: that picture held for ``hold_s`` seconds;
- a folder of images: in name order, ``fps`` a second.

Each frame comes with its time in seconds: the source's own clock for files (frame
index over frame rate), ``time.monotonic()`` at capture for a webcam.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.envs.perception import PictureError, check_picture, read_picture
from facetwin.errors import FaceTwinError
from facetwin.hardware.camera import IMAGE_SUFFIXES
from facetwin.video import VideoError, open_video


class SourceError(FaceTwinError, ValueError):
    """A source that cannot be opened or read; the message names it."""


@dataclass(frozen=True)
class SourceFrame:
    image: np.ndarray  # (H, W, 3) uint8 RGB, as the source gives it
    time: float  # seconds: the source's clock (files) or time.monotonic() (live)
    index: int


@dataclass
class Source:
    name: str
    fps: float
    live: bool  # a webcam: frames come at their own pace, and the newest is what counts
    frames: Iterator[SourceFrame]
    total: int | None = None  # frames, where known in advance
    still: bool = False  # one picture held: it cannot also be the person's neutral

    def __iter__(self) -> Iterator[SourceFrame]:
        return self.frames


def open_source(spec: str | Path, fps: float = 30.0, hold_s: float = 2.0) -> Source:
    spec = str(spec)
    if re.fullmatch(r"<video\d+>|/dev/video\d+|\d+", spec):
        return _webcam(spec)
    path = Path(spec)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceError(f"source {spec}: a folder with no images "
                              f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        return Source(spec, fps, False, _timed((_read_image(f) for f in files), fps), len(files))
    if not path.exists():
        raise SourceError(f"source {spec}: no such file, folder or webcam")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        n = max(1, round(hold_s * fps))
        image = _read_image(path)
        return Source(spec, fps, False, _timed((image for _ in range(n)), fps), n, still=True)
    return _video(path)


def _read_image(path: Path) -> np.ndarray:
    try:
        return read_picture(path, "frame of")
    except PictureError as exc:
        raise SourceError(f"source {exc}") from None


def _rgb(image: np.ndarray, name) -> np.ndarray:
    try:
        return check_picture(image, f"frame of {name}")
    except PictureError as exc:
        raise SourceError(f"source {name}: {exc}") from None


def _timed(images, fps: float) -> Iterator[SourceFrame]:
    for i, image in enumerate(images):
        yield SourceFrame(image, i / fps, i)


def _video(path: Path) -> Source:
    try:
        fps, frames, total = open_video(path)
    except VideoError as exc:
        raise SourceError(f"source {exc}") from None

    def read() -> Iterator[SourceFrame]:
        try:
            for i, image in enumerate(frames):
                yield SourceFrame(_rgb(image, path), i / fps, i)
        except VideoError as exc:
            raise SourceError(f"source {exc}") from None

    return Source(str(path), fps, False, read(), total)


def _webcam(spec: str) -> Source:
    import cv2

    index = int(re.search(r"\d+", spec).group())
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise SourceError(f"source {spec}: no webcam at index {index}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0

    def read() -> Iterator[SourceFrame]:
        i = 0
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    raise SourceError(f"source {spec}: the webcam stopped giving frames")
                yield SourceFrame(np.ascontiguousarray(bgr[..., ::-1]), time.monotonic(), i)
                i += 1
        finally:
            capture.release()

    return Source(spec, fps, True, read())
