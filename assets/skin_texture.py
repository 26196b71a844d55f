"""Paint the twin's skin as a robot face's silicone is painted: an even skin colour with
brows, lash lines and lips painted where the face-mesh landmarks put them, and a fine
mottle so that a tracker has texture to hold on to. Nothing in it paints an expression
(no smile lines, no teeth, no shadows of a pose): the face's look comes from its shape.

Texture coordinates are the neutral face seen from the front, so a region is painted
by drawing the polygon of its landmarks.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from facetwin.assets.neutral_face import LOWER_INNER, LOWER_OUTER, UPPER_INNER, UPPER_OUTER

# Brows (upper edge, then lower edge, both from the temple toward the nose) and lid
# margins (outer corner to inner corner), the subject's right side; the left side is
# their mirror image through the mesh's mirror map.
BROW_UPPER_RIGHT = [70, 63, 105, 66, 107]
BROW_LOWER_RIGHT = [46, 53, 52, 65, 55]
UPPER_LID_RIGHT = [33, 246, 161, 160, 159, 158, 157, 173, 133]
LOWER_LID_RIGHT = [33, 7, 163, 144, 145, 153, 154, 155, 133]
LID_CREASE_RIGHT = [113, 225, 224, 223, 222, 221, 189]

MARGIN = 0.04  # of the texture, around the face


def frontal_uv(vertices: np.ndarray):
    """Texture coordinates: the face seen from the front, scaled into the unit square.
    Returns the function that maps (n, 2) face points (x, y in metres) to them."""
    xy = vertices[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    size = float(np.max(hi - lo)) / (1 - 2 * MARGIN)
    centre = 0.5 * (lo + hi)
    return lambda points: (np.asarray(points)[:, :2] - centre) / size + 0.5


def _noise(rng: np.random.Generator, size: int, blur: float) -> np.ndarray:
    """Smooth noise in [-1, 1] with features about ``blur`` pixels across."""
    raw = Image.fromarray(((rng.standard_normal((size, size)) * 40) + 128).clip(0, 255)
                          .astype(np.uint8))
    smooth = np.asarray(raw.filter(ImageFilter.GaussianBlur(blur)), dtype=float) - 128
    return smooth / max(np.abs(smooth).max(), 1e-9)


def paint(vertices: np.ndarray, uv: np.ndarray, mirror: np.ndarray,
          colours: dict[str, tuple[float, float, float]], size: int = 512,
          seed: int = 0) -> np.ndarray:
    """The texture (size, size, 3) uint8 for a face with these neutral ``vertices``."""
    rng = np.random.default_rng(seed)
    px = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]]) * size

    def pts(ids) -> list[tuple[float, float]]:
        return [tuple(px[i]) for i in ids]

    def both_sides(ids: list[int]) -> list[list[int]]:
        return [ids, [int(mirror[i]) for i in ids]]

    def layer(draw_fn, blur: float) -> np.ndarray:
        """A soft mask (size, size) in [0, 1] of what ``draw_fn`` draws."""
        mask = Image.new("L", (size, size), 0)
        draw_fn(ImageDraw.Draw(mask))
        return np.asarray(mask.filter(ImageFilter.GaussianBlur(blur)), dtype=float) / 255

    skin = np.asarray(colours["skin"], dtype=float)
    tex = np.broadcast_to(skin, (size, size, 3)).copy()
    # Silicone mottle: broad, faint tone changes and a fine grain.
    tex *= 1 + 0.025 * _noise(rng, size, 12)[..., None] + 0.02 * _noise(rng, size, 1.0)[..., None]

    def blend(mask: np.ndarray, colour) -> None:
        nonlocal tex
        tex = tex * (1 - mask[..., None]) + np.asarray(colour, dtype=float) * mask[..., None]

    lips = layer(lambda d: [d.polygon(pts(outer + inner[::-1]), fill=255)
                            for outer, inner in ((UPPER_OUTER, UPPER_INNER),
                                                 (LOWER_OUTER, LOWER_INNER))], 1.5)
    blend(lips * 0.85, colours["lips"])
    # Where closed lips meet, a shadow line.
    seam = layer(lambda d: [d.line(pts(ids), fill=255, width=max(2, size // 160))
                            for ids in (UPPER_INNER, LOWER_INNER)], 1.0)
    blend(seam * 0.8, np.asarray(colours["lips"]) * 0.45)
    crease = layer(lambda d: [d.line(pts(ids), fill=255, width=max(2, size // 100))
                              for ids in both_sides(LID_CREASE_RIGHT)], size / 110)
    blend(crease * 0.25, skin * 0.75)
    brows = layer(lambda d: [d.polygon(pts(up + low[::-1]), fill=255)
                             for up, low in zip(both_sides(BROW_UPPER_RIGHT),
                                                both_sides(BROW_LOWER_RIGHT))], 1.5)
    grain = 0.85 + 0.15 * _noise(rng, size, 0.8)[..., None]
    brow_colour = np.asarray(colours["brows"]) * grain
    tex = tex * (1 - 0.9 * brows[..., None]) + brow_colour * 0.9 * brows[..., None]
    lashes = layer(lambda d: [d.line(pts(ids), fill=255, width=max(2, size // 128))
                              for ids in both_sides(UPPER_LID_RIGHT)], 0.8)
    blend(lashes * 0.9, colours["lashes"])
    lower = layer(lambda d: [d.line(pts(ids), fill=255, width=max(1, size // 256))
                             for ids in both_sides(LOWER_LID_RIGHT)], 0.8)
    blend(lower * 0.35, colours["lashes"])
    return (np.clip(tex, 0, 1) * 255).round().astype(np.uint8)
