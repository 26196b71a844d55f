"""Video files read with one-line errors.

imageio's ffmpeg reader puts all of ffmpeg's stderr in its exception: the banner, the
build configuration and the library versions, some eighteen lines, before the line that
says what is wrong. :func:`reason` keeps imageio's summary and ffmpeg's verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facetwin.errors import FaceTwinError

SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


class VideoError(FaceTwinError, ValueError):
    """A video file that cannot be read; the message names it and says why."""


def reason(exc: BaseException) -> str:
    """What went wrong, in one line: the exception's first line and, where ffmpeg spoke,
    the last thing it said (its verdict on the file)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    first, last = lines[0], lines[-1]
    said = first if first == last or "===" in last else f"{first}: {last}"
    return said[:300]


def open_video(path: Path) -> tuple[float, Iterator[np.ndarray], int | None]:
    """The video's frame rate, its frames (read as they are asked for) and how many
    there are where the file says; a :class:`VideoError` naming the file when it
    cannot be opened, has no frame rate, or stops being readable part-way."""
    import imageio.v3 as iio

    path = Path(path)
    try:
        meta = iio.immeta(path)
        frames = iio.imiter(path)
    except (OSError, ValueError, RuntimeError) as exc:
        raise VideoError(f"{path}: not a readable video ({reason(exc)})") from None
    fps = float(meta.get("fps") or 0)
    if not np.isfinite(fps) or fps <= 0:
        raise VideoError(f"{path}: the video says no frame rate")
    duration = meta.get("duration")
    total = round(duration * fps) if duration and np.isfinite(duration) else None

    def read() -> Iterator[np.ndarray]:
        try:
            yield from frames
        except (OSError, ValueError, RuntimeError) as exc:
            raise VideoError(f"{path}: reading stopped ({reason(exc)})") from None

    return fps, read(), total


def read_video(path: Path) -> tuple[float, list[np.ndarray]]:
    """The frame rate and every frame of a video file (see :func:`open_video`)."""
    fps, frames, _ = open_video(path)
    return fps, list(frames)
