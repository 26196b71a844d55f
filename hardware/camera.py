"""Cameras for the hardware backend, read through imageio.

``open_camera(spec, size)``:
- ``"<video0>"`` or ``/dev/videoN``: a webcam;
- a video file (``.mp4``, ``.avi``, ...): its frames in turn, looping (replays, tests);
- an image file (``.png``, ``.jpg``): re-read on every frame; this is how the virtual
  bus's twin camera publishes its renders (it replaces the file atomically).
Frames come back as square ``(size, size, 3)`` uint8 RGB, centre-cropped and resized.
"""

from __future__ import annotations

import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


class CameraError(RuntimeError):
    """No frame could be read."""


def _square(frame: np.ndarray, size: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    frame = frame[..., :3]
    h, w = frame.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = frame[top:top + side, left:left + side]
    if side != size:
        crop = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize((size, size),
                                                                         Image.BILINEAR))
    return crop.astype(np.uint8)


class FrameFileCamera:
    """An image file that a producer keeps replacing with the newest frame."""

    def __init__(self, path: str | Path, size: int, wait_s: float = 5.0):
        self.path, self.size, self.wait_s = Path(path), size, wait_s

    def read(self) -> np.ndarray:
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                return _square(iio.imread(self.path), self.size)
            except (OSError, ValueError) as exc:
                if time.monotonic() > deadline:
                    raise CameraError(f"no frame at {self.path}: {exc}") from None
                time.sleep(0.01)

    def close(self) -> None:
        pass


class StreamCamera:
    """A webcam or a video file; a file loops when it ends."""

    def __init__(self, uri: str, size: int):
        self.uri, self.size = uri, size
        self._frames = None
        self._open()

    def _open(self) -> None:
        try:
            self._frames = iio.imiter(self.uri)
            self._first = next(self._frames)
        except (OSError, ValueError, StopIteration, RuntimeError) as exc:
            raise CameraError(f"cannot open camera {self.uri!r}: {exc}") from None

    def read(self) -> np.ndarray:
        if self._first is not None:
            frame, self._first = self._first, None
            return _square(frame, self.size)
        try:
            return _square(next(self._frames), self.size)
        except StopIteration:
            self._open()
            return self.read()

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close:
            close()


def open_camera(spec: str | Path, size: int):
    spec = str(spec)
    if Path(spec).suffix.lower() in IMAGE_SUFFIXES:
        return FrameFileCamera(spec, size)
    return StreamCamera(spec, size)
