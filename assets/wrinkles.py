"""Expression wrinkles: where a face's skin is pushed together it folds, in lines that
anatomy names (Hjortsjö's expression lines). The twin's shell has 468 vertices, far
too few to fold, so the folds are painted: each is a set of soft lines in the skin
texture, shown in proportion to how much the skin across it is compressed, which the
renderer measures between pairs of landmarks every frame.

- forehead: horizontal lines above the brows, when the brows rise (AU1, AU2);
- glabella: vertical lines between the brows, when they are drawn together (AU4);
- nose: lines across the root of the nose and down its sides, when the nose is
  wrinkled (AU9) or the upper lip is raised under it (AU10);
- nasolabial folds: from the nose's wings to beside the mouth's corners, when the
  corners or the upper lip rise (AU10, AU12, AU13);
- crow's feet: radiating from the outer eye corners, when the cheeks push up (AU6).

Asset-side: ``paint`` draws the lines into ``wrinkles.png`` (red: depth, green: which
fold) and ``definitions`` gives, per fold, the landmark pairs and the compression at
which it starts and is fully shown.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

MM = 1e-3


def _nearest(v: np.ndarray, x: float, y: float) -> int:
    return int(np.argmin(np.hypot(v[:, 0] - x, v[:, 1] - y) - 1e-3 * v[:, 2]))


def _mirror_x(points: np.ndarray) -> np.ndarray:
    return np.asarray(points) * [-1, 1]


def _lines(v: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Each fold's lines as polylines (x, y) in metres on the neutral face."""
    brow_top = v[[105, 66, 334, 296], 1].max()
    arc = np.linspace(-1, 1, 25)
    forehead = [np.column_stack([0.034 * arc, brow_top + h - 0.004 * arc ** 2])
                for h in (0.008, 0.0135, 0.019)]
    between = 0.5 * (v[107, 1] + v[55, 1])
    glabella = [np.array([[s * 0.0035, between - 0.004], [s * 0.0045, between + 0.008]])
                for s in (-1, 1)]
    root, tip = v[168], v[5]
    nose = [np.array([[-0.008, y], [0.008, y]]) for y in np.linspace(root[1] - 0.004,
                                                                     tip[1] + 0.010, 3)]
    side = np.array([[0.006, root[1] - 0.007], [0.012, root[1] - 0.017]])
    nose += [side, _mirror_x(side)]
    fold = []
    for ala, corner, sign in ((358, 291, 1), (129, 61, -1)):
        start, end = v[ala, :2] + [sign * 0.001, -0.001], v[corner, :2] + [sign * 0.005, 0.0]
        t = np.linspace(0, 1, 12)[:, None]
        bulge = np.array([sign * 0.003, 0.0]) * np.sin(np.pi * t)  # the fold bows outward
        fold.append(start + (end - start) * t + bulge)
    crows = []
    for canthus, sign in ((263, 1), (33, -1)):
        c = v[canthus, :2] + [sign * 0.004, 0.0]
        for angle in np.radians([-28, 0, 25]):
            direction = np.array([sign * np.cos(angle), np.sin(angle)])
            crows.append(np.array([c, c + 0.008 * direction]))
    return {"forehead": forehead, "glabella": glabella, "nose": nose,
            "nasolabial": fold, "crows_feet": crows}


def definitions(v: np.ndarray) -> list[dict]:
    """Per fold: the landmark pairs across it, and the compression (1 - length / rest
    length, averaged over the pairs) at which it starts to show and is full."""
    above = [(i, _nearest(v, v[i, 0], v[i, 1] + 0.009)) for i in (105, 66, 334, 296)]
    below = [(c, _nearest(v, v[c, 0] + s * 0.003, v[c, 1] - 0.015))
             for c, s in ((263, 1), (33, -1))]
    return [
        {"name": "forehead", "pairs": above, "onset": 0.03, "full": 0.15},
        {"name": "glabella", "pairs": [(107, 336), (55, 285)], "onset": 0.03, "full": 0.15},
        {"name": "nose", "pairs": [(6, 327), (6, 98), (168, 294), (168, 64)],
         "onset": 0.02, "full": 0.1},
        {"name": "nasolabial", "pairs": [(358, 291), (129, 61)], "onset": 0.04, "full": 0.2},
        {"name": "crows_feet", "pairs": below, "onset": 0.03, "full": 0.15},
    ]


def paint(v: np.ndarray, uv_of, size: int) -> np.ndarray:
    """The folds' texture (size, size, 2) uint8: depth in channel 0, the fold's index in
    ``definitions`` plus one in channel 1. ``uv_of`` maps (n, 2) face points (metres) to
    texture coordinates."""
    out = np.zeros((size, size, 2), dtype=np.uint8)
    width = max(2, round(size / 170))  # a line about 1.3 mm wide on the face
    for index, (name, polylines) in enumerate(_lines(v).items(), start=1):
        layer = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(layer)
        for line in polylines:
            uv = uv_of(line)
            draw.line([(a * size, (1 - b) * size) for a, b in uv], fill=255, width=width,
                      joint="curve")
        depth = np.asarray(layer.filter(ImageFilter.GaussianBlur(width * 0.6)))
        mine = depth > out[..., 0]
        out[mine, 0] = depth[mine]
        out[mine & (depth > 0), 1] = index
    return out
