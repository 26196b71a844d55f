"""Make the twin's face asset from the public-domain astronaut portrait.

Run once, offline, and commit what it writes (``face/face.json``, ``face/texture.png``,
``face/wrinkles.png``):

    python -m facetwin.assets.make_face

MediaPipe's bundled face mesh finds the 478 landmarks on ``skimage.data.astronaut()``;
the 468 skin points become the mask's vertices (MediaPipe's tessellation, so the twin's
vertices *are* the landmarks MediaPipe reports), and the geometry is turned to face the
camera, made left/right symmetric and scaled to a real face (63 mm between the pupils).
She smiles, so the face is relaxed to neutral (``neutral_face``); its skin is painted,
not photographed (``skin_texture``: the photo gives only colours), with expression folds
(``wrinkles``); eyeballs, a mouth cavity, teeth on a dental arch and a skull are fitted
around the mask; last, the landmarks are slid to where MediaPipe sees them on the twin's
own render (``fit_to_mediapipe``). The output is deterministic for a given mediapipe
version. ``relaxed_portrait`` applies the same relaxation to the photo itself: a picture
of her at rest, which the main job measures her smile from.

Sources and licences: the portrait is public domain (NASA, shipped in scikit-image);
the face-mesh topology and landmarks are MediaPipe's (Apache-2.0).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment

from facetwin.assets.neutral_face import (LOWER_INNER, UPPER_INNER, UPPER_OUTER,
                                          lip_vertices, relax)
from facetwin.assets import fit_to_mediapipe, wrinkles
from facetwin.assets.skin_texture import frontal_uv, paint
from facetwin.landmarks import IRIS_START, N_SKIN

FACE_DIR = Path(__file__).resolve().parent / "face"
TEXTURE_SIZE = 512
INTERPUPILLARY_M = 0.063
EYEBALL_RADIUS_M = 0.0125
JAW_PIVOT = np.array([0.0, -0.03, 0.0])
SKULL_CENTRE = np.array([0.0, -0.01, -0.03])
TEETH_SPAN = 0.8  # of the mouth's width
TEETH_BEHIND_LIPS_M = 0.0025
# Landmarks on the face's plane of symmetry in MediaPipe's topology.
MIDLINE = [0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 94,
           151, 152, 164, 168, 175, 195, 197, 199, 200]
# Bone and cartilage: these skin points ride rigidly on the skull.
NOSE_BRIDGE = [168, 6, 197, 195, 5, 4, 1, 19, 94]
LEFT_IRIS, RIGHT_IRIS = IRIS_START["left"], IRIS_START["right"]  # centres
# Lid margins between the eye corners (33/133 right, 263/362 left), nose side last.
LIDS = {
    "right_upper": [246, 161, 160, 159, 158, 157, 173],
    "right_lower": [7, 163, 144, 145, 153, 154, 155],
    "left_upper": [466, 388, 387, 386, 385, 384, 398],
    "left_lower": [249, 390, 373, 374, 380, 381, 382],
}


def detect_landmarks(image: np.ndarray) -> np.ndarray:
    """478 landmarks of the one face in ``image`` as (x px, y px, z px)."""
    from facetwin.envs.perception import FaceMeshDetector

    detector = FaceMeshDetector()
    try:
        found = detector(image, "source portrait", depth=True)
    finally:
        detector.close()
    if found is None:
        raise RuntimeError("MediaPipe found no face in the source portrait")
    return found


def tessellation() -> tuple[np.ndarray, dict[str, list[int]]]:
    """Triangles of MediaPipe's face mesh (recovered from its edge list) and contours."""
    import mediapipe as mp

    fm = mp.solutions.face_mesh
    edges = {tuple(sorted(e)) for e in fm.FACEMESH_TESSELATION}
    nbrs: dict[int, set[int]] = {}
    for a, b in edges:
        nbrs.setdefault(a, set()).add(b)
        nbrs.setdefault(b, set()).add(a)
    tris = sorted({tuple(sorted((a, b, c))) for a, b in edges for c in nbrs[a] & nbrs[b]})

    def points(connections) -> list[int]:
        return sorted({i for e in connections for i in e})

    contours = {
        "face_oval": points(fm.FACEMESH_FACE_OVAL),
        "eye_left": points(fm.FACEMESH_LEFT_EYE),
        "eye_right": points(fm.FACEMESH_RIGHT_EYE),
        "brow_left": points(fm.FACEMESH_LEFT_EYEBROW),
        "brow_right": points(fm.FACEMESH_RIGHT_EYEBROW),
        "lips": points(fm.FACEMESH_LIPS),
    }
    return np.array(tris), contours


def drop_non_faces(tris: np.ndarray, n_vertices: int, boundary_loops: int) -> np.ndarray:
    """Drop 3-cycles of the edge graph that are not faces: each of their edges also
    borders two real faces."""
    sides = np.sort(tris[:, [[0, 1], [1, 2], [0, 2]]], axis=2)
    keys = sides[..., 0] * n_vertices + sides[..., 1]
    uses = dict(zip(*np.unique(keys, return_counts=True)))
    keep = tris[[not all(uses[k] > 2 for k in row) for row in keys]]
    # Euler: V - E + F = 2 - (number of boundary loops) for a sphere with holes.
    expected = len(uses) - n_vertices + 2 - boundary_loops
    if len(keep) != expected:
        raise RuntimeError(f"tessellation has {len(keep)} faces, Euler expects {expected}")
    return keep


def frontal_frame(p: np.ndarray) -> np.ndarray:
    """Rotation whose rows are the face's x (subject's left), y (up) and z (forward)."""
    mid = p[MIDLINE] - p[MIDLINE].mean(axis=0)
    normal = np.linalg.svd(mid)[2][2]
    if normal[0] < 0:
        normal = -normal
    up = p[10] - p[152]
    up -= normal * (up @ normal)
    up /= np.linalg.norm(up)
    return np.stack([normal, up, np.cross(normal, up)])


def mirror_map(q: np.ndarray) -> np.ndarray:
    """For each vertex, the vertex at its mirror image across x = 0."""
    reflected = q * [-1, 1, 1]
    cost = np.linalg.norm(q[:, None] - reflected[None], axis=2)
    rows, cols = linear_sum_assignment(cost)
    mirror = cols[np.argsort(rows)]
    if not np.array_equal(mirror[mirror], np.arange(len(q))):
        raise RuntimeError("mirror assignment is not an involution")
    return mirror


def mirror_symmetric(tris: np.ndarray, mirror: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The right half's triangles and their mirror images. MediaPipe's tessellation
    splits a few quads along different diagonals on the two sides, which would make
    mirror-image commands bend the skin differently."""
    right = tris[q[tris, 0].mean(axis=1) < 0]
    out = np.vstack([right, mirror[right]])
    if len(out) != len(tris):
        raise RuntimeError("a triangle straddles the plane of symmetry")
    return out


def orient(tris: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Wind every triangle counter-clockwise seen from the front (+z)."""
    a, b, c = q[tris[:, 0]], q[tris[:, 1]], q[tris[:, 2]]
    z = np.cross(b - a, c - a)[:, 2]
    out = tris.copy()
    out[z < 0] = out[z < 0][:, [0, 2, 1]]
    return out


def eye_geometry(q: np.ndarray, contour: list[int], iris: int, px_iris: np.ndarray,
                 scale: float) -> dict:
    ring = q[contour]
    centre = ring.mean(axis=0)
    # Push the eyeball back until the lid contour sits 0.5 mm outside it, so the lids
    # cover the ball instead of cutting into it.
    r = EYEBALL_RADIUS_M + 0.0005
    lateral = np.sum((ring[:, :2] - centre[:2]) ** 2, axis=1)
    inside = lateral < r * r
    z = np.min(ring[inside, 2] - np.sqrt(r * r - lateral[inside]))
    rim = px_iris[iris + 1:iris + 5] - px_iris[iris]
    iris_radius = float(np.mean(np.linalg.norm(rim[:, :2], axis=1)) * scale)
    return {"centre": [float(centre[0]), float(centre[1]), float(z)],
            "radius": EYEBALL_RADIUS_M,
            "iris_radius": iris_radius,
            "pupil_radius": iris_radius * 0.4}


def sample_colour(image: np.ndarray, xy: np.ndarray, radius: int) -> list[float]:
    h, w = image.shape[:2]
    patches = []
    for x, y in np.round(xy).astype(int):
        patches.append(image[max(0, y - radius):min(h, y + radius + 1),
                             max(0, x - radius):min(w, x + radius + 1)].reshape(-1, 3))
    return [float(v) / 255 for v in np.median(np.concatenate(patches), axis=0)]


def dental_arch(skin: np.ndarray) -> dict:
    """Where the teeth sit: an arch a little behind the closed lips, as wide as most of
    the mouth, the upper teeth's edge just above the lips' line and the lower teeth's
    just below it, so that nothing white shows through the seam of closed lips; the lower
    teeth a little behind the upper ones."""
    inner = skin[UPPER_INNER]
    half = 0.5 * (skin[UPPER_OUTER[-1], 0] - skin[UPPER_OUTER[0], 0]) * TEETH_SPAN
    x = np.linspace(-half, half, 21)
    order = np.argsort(inner[:, 0])
    z = np.interp(x, inner[order, 0], inner[order, 2]) - TEETH_BEHIND_LIPS_M
    lip_line = 0.5 * (skin[13, 1] + skin[14, 1])
    return {"arch": np.round(np.column_stack([x, z]), 5).tolist(),
            "upper": [round(lip_line + 0.011, 5), round(lip_line + 0.0015, 5)],
            "lower": [round(lip_line - 0.0025, 5), round(lip_line - 0.0115, 5)],
            "lower_behind": 0.0015}


def jaw_and_skull_skin(skin: np.ndarray, oval: list[int]) -> tuple[list[int], list[int]]:
    """Skin points the jaw carries (the chin, the jaw line below the mouth's corners) and
    those riding on the skull (the rest of the border, the nose bridge)."""
    chin_level = skin[17, 1] - 0.004
    corner_level = skin[UPPER_OUTER[0], 1]
    jaw = {int(i) for i in np.flatnonzero(skin[:, 1] < chin_level) if i not in NOSE_BRIDGE}
    jaw |= {i for i in oval if skin[i, 1] < corner_level}
    return sorted(jaw), sorted((set(oval) - jaw) | set(NOSE_BRIDGE))


@dataclass
class Portrait:
    """The portrait's face in the twin's frame: smiling as photographed and relaxed."""

    px: np.ndarray  # (478, 3) MediaPipe's landmarks on the photo, pixels
    q: np.ndarray  # (478, 3) the same in metres, face frame, before the origin shift
    smiling: np.ndarray  # (468, 3) skin, symmetric, metres, face frame
    neutral: np.ndarray  # (468, 3) relaxed
    triangles: np.ndarray
    mirror: np.ndarray
    contours: dict[str, list[int]]
    origin: np.ndarray
    lips: list[int]

    def to_photo(self, displacement: np.ndarray, rot: np.ndarray,
                 scale: float) -> np.ndarray:
        """Face-frame displacements (metres) as displacements in the photo (pixels)."""
        return (displacement / scale @ rot)[:, :2] * [1, -1]


def portrait_face(image: np.ndarray) -> tuple[Portrait, np.ndarray, float]:
    """The portrait's face, relaxed; and the rotation and scale from photo to face frame."""
    px = detect_landmarks(image)
    tris, contours = tessellation()
    # Holes: the outer border, both eyes and the mouth.
    tris = drop_non_faces(tris, N_SKIN, boundary_loops=4)

    face = px * [1, -1, -1]  # image x right, y up, toward the camera
    rot = frontal_frame(face[:N_SKIN])
    q = (face - face[MIDLINE].mean(axis=0)) @ rot.T
    scale = INTERPUPILLARY_M / np.linalg.norm(q[LEFT_IRIS] - q[RIGHT_IRIS])
    q *= scale
    skin = q[:N_SKIN]
    mirror = mirror_map(skin)
    skin = 0.5 * (skin + skin[mirror] * [-1, 1, 1])

    eyes_y = 0.5 * (skin[contours["eye_left"]].mean(axis=0)[1]
                    + skin[contours["eye_right"]].mean(axis=0)[1])
    origin = np.array([0.0, eyes_y, skin[:, 2].max() - 0.10])
    skin = skin - origin
    tris = orient(mirror_symmetric(tris, mirror, skin), skin)
    oval = contours["face_oval"]
    neutral = relax(skin, tris, mirror, JAW_PIVOT, jaw_and_skull_skin(skin, oval)[0], oval)
    return Portrait(px, q, skin, neutral, orient(tris, neutral), mirror, contours, origin,
                    lip_vertices(skin)), rot, scale


def relaxed_portrait(image: np.ndarray) -> np.ndarray:
    """The portrait with its smile relaxed as the twin's rest face was: its pixels moved
    (piecewise affine over the face's landmarks, the picture's edge held) by the
    relaxation, each landmark from where MediaPipe found it. A picture of the person at
    rest, for a portrait that has none."""
    from skimage.transform import PiecewiseAffineTransform, warp

    face, rot, scale = portrait_face(image)
    moved = face.px[:N_SKIN, :2] + face.to_photo(face.neutral - face.smiling, rot, scale)
    h, w = image.shape[:2]
    edge = np.array([[x, y] for x in np.linspace(0, w - 1, 5) for y in np.linspace(0, h - 1, 5)
                     if x in (0, w - 1) or y in (0, h - 1)])
    to_photo = PiecewiseAffineTransform.from_estimate(np.vstack([moved, edge]),
                                                      np.vstack([face.px[:N_SKIN, :2], edge]))
    return (warp(image, to_photo, preserve_range=True) + 0.5).astype(np.uint8)


def build(image: np.ndarray, log=print) -> tuple[dict, np.ndarray, np.ndarray]:
    """The face asset (face.json's content), its skin texture and its folds' texture."""
    portrait, _, _ = portrait_face(image)
    px, q, skin, tris = portrait.px, portrait.q, portrait.neutral, portrait.triangles
    mirror, contours, origin = portrait.mirror, portrait.contours, portrait.origin
    oval, lips_all = contours["face_oval"], portrait.lips

    eyes = {side: eye_geometry(skin, contours[f"eye_{side}"], iris, q - origin, 1.0)
            for side, iris in (("left", LEFT_IRIS), ("right", RIGHT_IRIS))}
    # Symmetric by construction: mirror the left eye onto the right.
    eyes["right"] = dict(eyes["left"], centre=[-eyes["left"]["centre"][0],
                                               *eyes["left"]["centre"][1:]])

    # The portrait gives the face its skin, lip and iris colours, not its skin: the
    # photo carries the smile. Brows and hair are painted dark, as on a robot's face,
    # where they have to carry the brows' expressions at a distance.
    cheeks = px[[50, 280, 101, 330, 151]][:, :2]
    lip_middles = 0.5 * (px[UPPER_OUTER[1:-1], :2] + px[UPPER_INNER[1:-1], :2])
    colours = {
        "skin": sample_colour(image, cheeks, 4),
        "hair": [0.25, 0.18, 0.12],
        "brows": [0.25, 0.18, 0.12],
        "lips": sample_colour(image, lip_middles, 1),
        "lashes": [0.12, 0.09, 0.08],
        "iris": sample_colour(image, px[[LEFT_IRIS, RIGHT_IRIS], :2], 2),
        "sclera": [0.92, 0.9, 0.86],
        "pupil": [0.03, 0.03, 0.03],
        "mouth": [0.28, 0.06, 0.07],
        "teeth": [0.9, 0.88, 0.8],
    }
    uv_of = frontal_uv(skin)
    uv = uv_of(skin)
    texture = paint(skin, uv, mirror, colours, size=TEXTURE_SIZE)
    folds = wrinkles.paint(skin, uv_of, TEXTURE_SIZE)

    lips = contours["lips"]
    mouth_centre = skin[UPPER_INNER + LOWER_INNER].mean(axis=0)
    teeth = dental_arch(skin)
    mouth_width = float(skin[UPPER_OUTER[-1], 0] - skin[UPPER_OUTER[0], 0])

    jaw_skin, skull_skin = jaw_and_skull_skin(skin, oval)

    asset = {
        "source": "skimage.data.astronaut() through mediapipe.solutions.face_mesh, "
                  "relaxed to a neutral face (assets/neutral_face.py), painted skin "
                  "(assets/skin_texture.py), landmarks fitted to MediaPipe "
                  "(assets/fit_to_mediapipe.py)",
        "units": "metres; x to the subject's left, y up, z toward the camera",
        "vertices": np.round(skin, 6).tolist(),
        "uv": np.round(uv, 6).tolist(),
        "triangles": tris.tolist(),
        "mirror": mirror.tolist(),
        "contours": contours,
        "lids": LIDS,
        "iris_rim_directions": [[1, 0], [0, 1], [-1, 0], [0, -1]],
        "eyes": eyes,
        "skull": {"centre": SKULL_CENTRE.tolist(), "axes": skull_axes(skin).tolist(),
                  "skin": skull_skin},
        "jaw": {"pivot": JAW_PIVOT.tolist(), "skin": jaw_skin},
        "mouth": {"centre": mouth_centre.round(5).tolist(), "width": round(mouth_width, 5),
                  "lips": lips, "lip_vertices": lips_all, "teeth": teeth},
        "colours": colours,
        "wrinkles": [dict(d, pairs=[list(map(int, pair)) for pair in d["pairs"]])
                     for d in wrinkles.definitions(skin)],
    }
    # Last, the landmarks go where MediaPipe sees them on this face. The edges of the
    # mask, the eyes and the mouth stay: moving them would change how the face looks
    # (and the skin at the mouth's corners: see fit_to_mediapipe).
    corners = [57, 43]
    held = sorted(set(lips_all) | set(oval) | set(contours["eye_left"])
                  | set(contours["eye_right"]) | set(corners)
                  | {int(mirror[i]) for i in corners})
    skin = fit_to_mediapipe.fit(asset, texture, folds, uv_of, held, log=log)
    asset.update(vertices=np.round(skin, 6).tolist(), uv=np.round(uv_of(skin), 6).tolist())
    asset["skull"]["axes"] = skull_axes(skin).tolist()
    return asset, texture, folds


def skull_axes(skin: np.ndarray) -> np.ndarray:
    """The largest ellipsoid about the head's centre that stays behind the mask."""
    axes = np.array([0.076, 0.115, 0.105])
    k = np.sqrt(np.min(np.sum(((skin - SKULL_CENTRE) / axes) ** 2, axis=1)))
    return (axes * k * 0.995).round(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FACE_DIR)
    args = parser.parse_args()
    import skimage.data

    asset, texture, folds = build(skimage.data.astronaut())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "face.json").write_text(json.dumps(asset, separators=(",", ":")))
    Image.fromarray(texture).save(args.out / "texture.png", optimize=True)
    Image.fromarray(np.dstack([folds, np.zeros_like(folds[..., :1])])).save(
        args.out / "wrinkles.png", optimize=True)
    print(f"wrote {args.out}/face.json ({len(asset['vertices'])} vertices, "
          f"{len(asset['triangles'])} triangles), texture.png and wrinkles.png")


if __name__ == "__main__":
    main()
