"""Every figure FaceTwin draws, in one place: line plots of a run (a log scale where the
values allow), and pictures of faces as labelled tiles with landmark dots, laid out in
rows and grids. Every PNG is written whole or not at all (:func:`save_png`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facetwin.files import atomic_write

LABEL_BAR_PX = 16
LANDMARK_GREEN = (40, 230, 90)


def y_scale(lines: list[tuple[np.ndarray, str]]) -> str:
    """Logarithmic, unless a value is not positive (a learned score can be anything)."""
    return "log" if all(np.min(v) > 0 for v, _ in lines if len(v)) else "linear"


def log_lines(path: Path, lines: list[tuple[np.ndarray, str]], title: str, xlabel: str,
              ylabel: str) -> Path:
    """Each ``(values, label)`` against 1, 2, 3, ...; the y axis as :func:`y_scale`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    for values, label in lines:
        ax.plot(np.arange(1, len(values) + 1), values, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale(y_scale(lines))
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _saved(fig, path)


def _saved(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(Path(path), buffer.getvalue())


def timeline(path: Path, times: np.ndarray, lines: list[tuple[np.ndarray, str]],
              marks: list[tuple[float, str]], title: str, ylabel: str) -> Path:
    """Each ``(values, label)`` against ``times`` (s), with a labelled vertical line at
    each ``(time, label)`` of ``marks``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for values, label in lines:
        ax.plot(times, values, label=label)
    for k, (t, label) in enumerate(marks):
        ax.axvline(t, color=f"C{len(lines) + k}", linestyle="--", label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _saved(fig, path)


def dots(image: Image.Image, points: np.ndarray, colour=LANDMARK_GREEN,
         radius: float = 0.0) -> Image.Image:
    """Landmarks (pixels) drawn on ``image`` in place: points, or discs of ``radius``."""
    draw = ImageDraw.Draw(image)
    points = np.asarray(points, float)
    if radius <= 0:
        draw.point([tuple(p) for p in points], fill=colour)
    else:
        for x, y in points:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return image


def labelled(image, label: str, landmarks: np.ndarray | None = None,
             colour=LANDMARK_GREEN, radius: float = 0.8) -> Image.Image:
    """A tile: ``image`` (an RGB array or a PIL image) with ``label`` on a black bar along
    its top, and ``landmarks`` dotted on it when given."""
    tile = Image.fromarray(image) if isinstance(image, np.ndarray) else image.copy()
    tile = tile.convert("RGB")
    if landmarks is not None:
        dots(tile, landmarks, colour, radius)
    if label:
        draw = ImageDraw.Draw(tile)
        draw.rectangle((0, 0, tile.width, LABEL_BAR_PX), fill=(0, 0, 0))
        draw.text((4, 2), label, fill=(255, 255, 255))
    return tile


def grid(tiles: list[Image.Image], columns: int = 4, background=(30, 30, 30)) -> Image.Image:
    """Tiles of one size in rows of ``columns`` (a contact sheet)."""
    w, h = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * w, rows * h), background)
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * w, (i // columns) * h))
    return sheet


def row(tiles: list[Image.Image], background=(255, 255, 255)) -> Image.Image:
    """Tiles side by side, each scaled to the first one's height."""
    height = tiles[0].height
    scaled = [t if t.height == height else
              t.resize((round(t.width * height / t.height), height), Image.LANCZOS)
              for t in tiles]
    sheet = Image.new("RGB", (sum(t.width for t in scaled), height), background)
    x = 0
    for tile in scaled:
        sheet.paste(tile, (x, 0))
        x += tile.width
    return sheet


def png_bytes(image, compress_level: int = 6) -> bytes:
    """An RGB array or PIL image as PNG bytes."""
    buffer = io.BytesIO()
    picture = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    picture.save(buffer, "PNG", compress_level=compress_level)
    return buffer.getvalue()


def save_png(path: Path, image) -> Path:
    """Write ``image`` (an RGB array or PIL image) as a PNG, atomically."""
    return atomic_write(Path(path), png_bytes(image))
