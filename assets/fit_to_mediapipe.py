"""Put the twin's landmarks where MediaPipe sees them on the twin's own face.

The skin's vertices are the face-mesh landmarks, so the twin's ground truth and what
MediaPipe reports on its camera image ought to agree. They do only roughly: MediaPipe
places each landmark by its model of faces as much as by what the picture shows (on the
relaxed face it put the forehead's top landmarks 1 cm lower than the portrait's mesh).
So the rest face is rendered, MediaPipe is run on it, and each vertex slides part of the
way to where MediaPipe saw it, along the face's surface (the shape and the painted skin
stay where they are; only which surface point is which landmark changes), until they
agree. The vertices that outline something are held where they are (the caller names
them): moving the edge of the mask, an eye or the lips would change the face's look.
The skin at the mouth's corners is held too: the flex is thinnest there, and moving it
makes the closed mouth's slivers flutter under load.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial import cKDTree

from facetwin.landmarks import N_SKIN

STEP = 0.5  # of the seen offset, per round
ROUNDS = 10
SIZES = (256, 384)  # render sizes averaged in each round
SMOOTHING = 2  # rounds of Laplacian smoothing of the offsets (MediaPipe's are noisy)
MIN_ALIGNMENT = 0.5  # a triangle may not turn further than this (cosine) from its start


def closest_point(vertices: np.ndarray, triangles: np.ndarray, points: np.ndarray,
                  candidates: int = 16) -> np.ndarray:
    """Each point's closest point on the mesh (among the triangles nearest it)."""
    tri = vertices[triangles]
    _, near = cKDTree(tri.mean(axis=1)).query(points, k=candidates)
    best, best_d = np.empty_like(points), np.full(len(points), np.inf)
    for j in range(candidates):
        t = tri[near[:, j]]
        q = _closest_on_triangles(points, t[:, 0], t[:, 1], t[:, 2])
        d = np.linalg.norm(q - points, axis=1)
        closer = d < best_d
        best[closer], best_d[closer] = q[closer], d[closer]
    return best


def _closest_on_triangles(p, a, b, c) -> np.ndarray:
    """Ericson, Real-Time Collision Detection, 5.1.5, for arrays of points and triangles."""
    ab, ac = b - a, c - a
    d1, d2 = ((ab * (p - a)).sum(-1), (ac * (p - a)).sum(-1))
    d3, d4 = ((ab * (p - b)).sum(-1), (ac * (p - b)).sum(-1))
    d5, d6 = ((ab * (p - c)).sum(-1), (ac * (p - c)).sum(-1))
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def safe(x):
        return np.where(x == 0, 1e-30, x)

    total = safe(va + vb + vc)
    out = a + ab * (vb / total)[:, None] + ac * (vc / total)[:, None]
    for mask, base, direction, t in (
            ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a, ab, d1 / safe(d1 - d3)),
            ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a, ac, d2 / safe(d2 - d6)),
            ((va <= 0) & (d4 >= d3) & (d5 >= d6), b, c - b,
             (d4 - d3) / safe((d4 - d3) + (d5 - d6)))):
        out[mask] = base[mask] + direction[mask] * t[mask, None]
    for mask, corner in (((d1 <= 0) & (d2 <= 0), a), ((d3 >= 0) & (d4 <= d3), b),
                         ((d6 >= 0) & (d5 <= d6), c)):
        out[mask] = corner[mask]
    return out


def _normals(v: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    n = np.cross(v[triangles[:, 1]] - v[triangles[:, 0]], v[triangles[:, 2]] - v[triangles[:, 0]])
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def seen_offsets(asset: dict, texture: np.ndarray, folds: np.ndarray, detector) -> tuple:
    """Where MediaPipe sees each skin landmark on the rest face's render, as an offset in
    the face's plane (metres, x and y), averaged over ``SIZES``; and the median error in
    pixels at the first size."""
    from facetwin import profile as profiles
    from facetwin.sim.camera import PinholeCamera
    from facetwin.sim.face import read_face
    from facetwin.sim.render import FaceRenderer
    from facetwin.sim.twin import Twin

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "face.json").write_text(json.dumps(asset))
        Image.fromarray(texture).save(folder / "texture.png")
        Image.fromarray(np.dstack([folds, np.zeros_like(folds[..., :1])])).save(
            folder / "wrinkles.png")
        profile = profiles.load("x2c30")  # the shipped profiles share the camera
        twin = Twin(profile, face=read_face(folder))
        offsets, errors = [], []
        for size in SIZES:
            camera = PinholeCamera.from_profile(profile.camera, size)
            renderer = FaceRenderer(twin, camera)
            seen = detector(renderer.render())
            renderer.close()
            if seen is None:
                raise RuntimeError(f"MediaPipe found no face on the twin's {size} px render")
            truth = twin.landmarks_3d()[:N_SKIN]
            pixels = camera.project(truth)
            errors.append(np.median(np.linalg.norm(seen[:N_SKIN] - pixels, axis=1)))
            metres_per_px = (camera.pose[2, 3] - truth[:, 2]) / camera.focal_px
            offsets.append((seen[:N_SKIN] - pixels) * metres_per_px[:, None] * [1, -1])
    return np.mean(offsets, axis=0), errors[0]


def fit(asset: dict, texture: np.ndarray, folds: np.ndarray, uv_of, held: list[int],
        rounds: int = ROUNDS, log=print) -> np.ndarray:
    """The rest vertices slid along the surface to where MediaPipe sees them; ``held``
    vertices stay. ``uv_of`` maps face points to texture coordinates (the paint stays
    where it is on the surface)."""
    from facetwin.assets.neutral_face import laplacian
    from facetwin.envs.perception import FaceMeshDetector

    start = np.array(asset["vertices"])
    triangles = np.array(asset["triangles"])
    mirror = np.array(asset["mirror"])
    smooth = laplacian(len(start), triangles)
    start_normals = _normals(start, triangles)
    detector = FaceMeshDetector()
    v = start.copy()
    for k in range(rounds):
        asset = dict(asset, vertices=v.round(6).tolist(), uv=uv_of(v).round(6).tolist())
        offset, error = seen_offsets(asset, texture, folds, detector)
        log(f"fit to MediaPipe, round {k + 1}/{rounds}: median error {error:.2f} px at "
            f"{SIZES[0]} px")
        offset = 0.5 * (offset + offset[mirror] * [-1, 1])
        for _ in range(SMOOTHING):
            offset = offset - 0.5 * (smooth @ offset)
        offset[held] = 0.0
        moved = closest_point(start, triangles, v + STEP * np.column_stack(
            [offset, np.zeros(len(v))]))
        # A vertex whose move would turn a triangle over goes half as far, again and again.
        for _ in range(10):
            turned = (_normals(moved, triangles) * start_normals).sum(axis=1) < MIN_ALIGNMENT
            if not turned.any():
                break
            ids = np.unique(triangles[turned])
            moved[ids] = 0.5 * (moved[ids] + v[ids])
        v = 0.5 * (moved + moved[mirror] * [-1, 1, 1])
    detector.close()
    return v
