"""Cameras for the hardware backend: frames stamped with their capture time.

``open_camera(spec, size)``:
- ``"<video0>"`` or ``/dev/videoN``: a webcam;
- a video file (``.mp4``, ``.avi``, ...): its frames in turn, looping (replays, tests);
- an image file (``.png``, ``.jpg``): a frame file that a producer keeps replacing
  atomically; this is how the virtual bus's twin camera publishes its renders.

Every frame carries a capture time on ``time.monotonic()``'s clock, which all processes
of a machine share: a PNG frame file carries its producer's stamp in a text chunk (the
twin plant stamps the physics time it shows), any other image file its modification
time, and a webcam or video frame the moment it was read. ``read_after(t)`` returns only
a frame captured after ``t``, waiting for one, and raises :class:`CameraError` naming the
camera if none comes in time: a caller never gets the past by mistake.
Frames come back as square ``(size, size, 3)`` uint8 RGB, centre-cropped and resized.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, PngImagePlugin

from facetwin.errors import FaceTwinError
from facetwin.video import reason

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
STAMP_KEY, SEQ_KEY = "facetwin-time", "facetwin-seq"  # PNG text chunks of a frame file
POLL_S = 0.002
FRESH_FRAME_WAIT_S = 5.0


class CameraError(FaceTwinError, RuntimeError):
    """No (fresh) frame could be read; the message names the camera."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # (size, size, 3) uint8 RGB
    time: float  # capture time, time.monotonic() clock
    seq: int  # grows with every new frame of this camera


def stamped_png(image: np.ndarray, capture_time: float, seq: int) -> bytes:
    """A frame file's bytes: the image with its capture time and sequence number."""
    info = PngImagePlugin.PngInfo()
    info.add_text(STAMP_KEY, repr(float(capture_time)))
    info.add_text(SEQ_KEY, str(int(seq)))
    out = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(out, "PNG", pnginfo=info,
                                                            compress_level=1)
    return out.getvalue()


def square_crop(frame: np.ndarray, size: int) -> np.ndarray:
    """The centre square of ``frame`` (RGB, or grey made RGB), resized to ``size``."""
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


class _Camera:
    name: str

    def read(self) -> Frame:
        raise NotImplementedError

    def read_after(self, t: float, timeout_s: float = FRESH_FRAME_WAIT_S) -> Frame:
        """The first frame captured after ``t`` (monotonic seconds), waiting up to
        ``timeout_s`` for it."""
        deadline = time.monotonic() + timeout_s
        while True:
            frame = self.read()
            if frame.time > t:
                return frame
            if time.monotonic() > deadline:
                raise CameraError(
                    f"camera {self.name}: no frame captured after the moment asked for within "
                    f"{timeout_s:g} s (the newest is {t - frame.time:.3f} s older); is its "
                    "producer running, and keeping up?")
            time.sleep(POLL_S)

    def close(self) -> None:
        pass


class FrameFileCamera(_Camera):
    """An image file that a producer keeps replacing with the newest frame."""

    def __init__(self, path: str | Path, size: int, wait_s: float = FRESH_FRAME_WAIT_S):
        self.path, self.size, self.wait_s = Path(path), size, wait_s
        self.name = str(self.path)
        self._key: tuple | None = None
        self._frame: Frame | None = None
        if not self.path.is_file():
            raise CameraError(f"camera {self.name}: no such frame file (the virtual bus's twin "
                              "camera writes LINK.png once it is ready)")

    def read(self) -> Frame:
        """The file's present frame (decoded again only when the file changed)."""
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                st = os.stat(self.path)
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
                if key != self._key:
                    self._frame, self._key = self._decode(st), key
                return self._frame
            except (OSError, ValueError, SyntaxError) as exc:
                if time.monotonic() > deadline:
                    raise CameraError(f"camera {self.name}: no frame ({exc})") from None
                time.sleep(0.01)

    def _decode(self, st: os.stat_result) -> Frame:
        with Image.open(self.path) as im:
            im.load()
            text = getattr(im, "text", {}) or {}
            image = square_crop(np.asarray(im.convert("RGB")), self.size)
        if STAMP_KEY in text:
            return Frame(image, float(text[STAMP_KEY]), int(text.get(SEQ_KEY, 0)))
        # No producer's stamp: the file's modification time, on the monotonic clock.
        modified = st.st_mtime_ns / 1e9 - time.time() + time.monotonic()
        return Frame(image, modified, st.st_mtime_ns)


class StreamCamera(_Camera):
    """A webcam or a video file (looping when it ends); frames are stamped on read."""

    def __init__(self, uri: str, size: int):
        self.uri, self.size, self.name = uri, size, uri
        self._frames = None
        self._seq = 0
        self._open()

    def _open(self) -> None:
        try:
            self._frames = iio.imiter(self.uri)
            self._first = next(self._frames)
        except StopIteration:
            raise CameraError(f"cannot open camera {self.uri!r}: it gives no frame") from None
        except (OSError, ValueError, RuntimeError) as exc:
            raise CameraError(f"cannot open camera {self.uri!r}: {reason(exc)}") from None

    def read(self) -> Frame:
        if self._first is not None:
            image, self._first = self._first, None
        else:
            try:
                image = next(self._frames)
            except StopIteration:
                self._open()
                return self.read()
        self._seq += 1
        return Frame(square_crop(image, self.size), time.monotonic(), self._seq)

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close:
            close()


def open_camera(spec: str | Path, size: int) -> FrameFileCamera | StreamCamera:
    spec = str(spec)
    if Path(spec).suffix.lower() in IMAGE_SUFFIXES:
        return FrameFileCamera(spec, size)
    return StreamCamera(spec, size)
