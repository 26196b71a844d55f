"""Relax the portrait's smile into a neutral face, keeping the face-mesh topology.

The astronaut smiles: her mouth is 63 mm wide with its corners drawn up and back, her
lips parted over her teeth, her cheeks, lower lids and brows raised. A neutral face is
made from it by moving handles to where a relaxed face has them and letting the rest
of the skin follow smoothly (displacements interpolated in space by a 3-D biharmonic
spline, which keeps the portrait's shape wherever nothing is pulled):

- the lips meet along a gently curved line (``LIP_GAP_M`` apart), the mouth narrows to
  ``MOUTH_PER_CANTHI`` of the distance between the outer eye corners, its corners
  ``CORNER_BELOW_STOMION_M`` below the line's middle; each lip is ``LIP_FULLNESS`` times
  as thick as the smile stretched it, tapering to the corners;
- the corners come forward to ``CORNER_BEHIND_LIPS_M`` behind the upper lip (the smile
  had them 24 mm back);
- the jaw closes (the chin and jaw line turn up about the jaw's pivot) by ``JAW_SHARE``
  of the lower lip's rise;
- the cheeks, lower lids, upper lids and brows come down;
- part of the skin between the handles is replaced by the smoothest surface through
  them (``FAIRING``): it carried the smile's bulges.

The proportions are a relaxed adult face's (the mouth about 0.55 of the outer canthal
width, in anthropometric tables and MediaPipe's canonical face model). Where a
proportion is set by how the face looks from the profiles' camera, 20 mm above the
mouth, rather than by a table, its comment says so.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.interpolate import RBFInterpolator
from scipy.sparse.linalg import spsolve

# Lip contours from the subject's right corner to the left one.
UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
OUTER_CANTHI = (33, 263)
NOSE_TIP = 1
NOSE = [1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278,
        294, 326, 327, 344, 440]
# The subject's right side of: the cheeks and lower lids a Duchenne smile raises
# (AU6), the brows and upper lids it lifts; the left side is their mirror image.
CHEEKS_RIGHT = [50, 101, 36, 205, 187, 123, 117, 118, 119, 206, 116, 111, 31, 228, 229,
                230, 231, 232, 233]
LOWER_LID_RIGHT = [7, 163, 144, 145, 153, 154, 155, 25, 110, 24, 23, 22, 26, 112]
UPPER_LID_RIGHT = [246, 161, 160, 159, 158, 157, 173]  # between the corners 33 and 133
BROW_RIGHT = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55]

MOUTH_PER_CANTHI = 0.55
# Seen from a camera above the mouth, corners set back rise in the picture: 3 mm below
# the line and 10 mm behind the upper lip (a real face's are nearer 17) read as level.
CORNER_BELOW_STOMION_M = 0.003
CORNER_BEHIND_LIPS_M = 0.010
LIP_GAP_M = 0.0001
CHEEK_DROP_M = 0.003
LOWER_LID_DROP_M = 0.0005
UPPER_LID_DROP_M = 0.0035  # at the lid's highest point, less toward the corners
BROW_DROP_M = 0.003
FOREHEAD_ABOVE_BROWS_M = 0.012  # the skin this far above the brows stays
JAW_SHARE = 0.5  # of the lower lip's rise; the rest is the lip (a smile depresses it)
LIP_FULLNESS = 1.4  # a smile stretches the lips thin; at rest they are fuller
LIP_TAPER = 0.6
FAIRING = 0.5


def laplacian(n: int, triangles: np.ndarray) -> sparse.csr_matrix:
    """The graph Laplacian of the mesh (each vertex minus the mean of its neighbours)."""
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    a = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    a = (a + a.T).tocsr()
    degree = np.asarray(a.sum(axis=1)).ravel()
    return (sparse.identity(n) - sparse.diags(1.0 / degree) @ a).tocsr()


def biharmonic_fill(n: int, triangles: np.ndarray, fixed: dict[int, np.ndarray]) -> np.ndarray:
    """A field (n, 3) equal to ``fixed`` at its vertices and with the least squared
    Laplacian elsewhere: of displacements, the smoothest deformation; of positions, the
    smoothest surface."""
    lap = laplacian(n, triangles)
    energy = (lap.T @ lap).tocsr()
    known = np.array(sorted(fixed))
    free = np.setdiff1d(np.arange(n), known)
    d = np.zeros((n, 3))
    d[known] = np.array([fixed[i] for i in known])
    rhs = -energy[free][:, known] @ d[known]
    d[free] = np.column_stack([spsolve(energy[free][:, free].tocsc(), rhs[:, k])
                               for k in range(3)])
    return d


def _along(x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    order = np.argsort(xs)
    return np.interp(x, xs[order], ys[order])


def _inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    from matplotlib.path import Path

    return Path(polygon).contains_points(points)


def _lip(v: np.ndarray, inner: list[int], outer: list[int]) -> list[int]:
    """One lip's points between its corners: its two contours and the points between."""
    contours = set(UPPER_OUTER + UPPER_INNER + LOWER_OUTER + LOWER_INNER)
    band = _inside(v[:, :2], v[outer + inner[::-1], :2])
    return sorted(set(inner[1:-1] + outer[1:-1]) |
                  {int(i) for i in np.flatnonzero(band) if i not in contours})


def lip_vertices(v: np.ndarray) -> list[int]:
    """Every point of the lips of the portrait's mesh ``v``, corners included."""
    corners = [UPPER_OUTER[0], UPPER_OUTER[-1], UPPER_INNER[0], UPPER_INNER[-1]]
    return sorted(set(corners + _lip(v, UPPER_INNER, UPPER_OUTER)
                      + _lip(v, LOWER_INNER, LOWER_OUTER)))


def neutral_lips(v: np.ndarray) -> dict[int, np.ndarray]:
    """Target positions of every point of the lips: closed, narrowed, corners relaxed.

    A lip point keeps its share of the way from the inner contour to the outer one at
    its place along the mouth; the mouth narrows about its middle, the lips' line is a
    gentle curve, and each lip is ``LIP_FULLNESS`` times as thick as in the portrait."""
    width = v[OUTER_CANTHI[1], 0] - v[OUTER_CANTHI[0], 0]
    half = 0.5 * MOUTH_PER_CANTHI * width
    narrow = half / v[UPPER_OUTER[-1], 0]
    centre_y = 0.5 * (v[13, 1] + v[14, 1])
    corner_x, corner_z = abs(v[UPPER_OUTER[0], 0]), v[UPPER_OUTER[0], 2]
    lift = max((v[0, 2] - CORNER_BEHIND_LIPS_M) - corner_z, 0.0)
    targets: dict[int, np.ndarray] = {}
    for inner, outer, sign in ((UPPER_INNER, UPPER_OUTER, 1.0),
                               (LOWER_INNER, LOWER_OUTER, -1.0)):
        ids = _lip(v, inner, outer)
        p = v[ids]
        y_in = _along(p[:, 0], v[inner, 0], v[inner, 1])
        y_out = _along(p[:, 0], v[outer, 0], v[outer, 1])
        share = np.clip((p[:, 1] - y_in) / (y_out - y_in), 0.0, 1.0)
        x = p[:, 0] * narrow
        line = centre_y - CORNER_BELOW_STOMION_M * (x / half) ** 2
        # Each lip is thickest in the middle and tapers to the corners; in the portrait
        # the parted lower lip ran steeply into the corners.
        centre = LIP_FULLNESS * abs(_along(np.zeros(1), v[outer, 0], v[outer, 1])[0]
                                    - _along(np.zeros(1), v[inner, 0], v[inner, 1])[0])
        taper = np.clip(1 - (x / half) ** 2, 0.0, 1.0) ** LIP_TAPER
        y = line + sign * (0.5 * LIP_GAP_M + share * centre * taper)
        # The corners come forward, the middle stays: a narrower mouth's arch. Where the
        # lips meet, they meet at one depth (the parted lower lip sat behind the upper);
        # each lip's outer edge keeps its depth.
        z_in = _along(p[:, 0], v[inner, 0], v[inner, 2])
        meet = 0.5 * (_along(p[:, 0], v[UPPER_INNER, 0], v[UPPER_INNER, 2])
                      + _along(p[:, 0], v[LOWER_INNER, 0], v[LOWER_INNER, 2]))
        z = p[:, 2] + lift * (np.abs(p[:, 0]) / corner_x) ** 2 + (1 - share) * (meet - z_in)
        targets.update({i: np.array([x[k], y[k], z[k]]) for k, i in enumerate(ids)})
    for corner in (UPPER_OUTER[0], UPPER_OUTER[-1], UPPER_INNER[0], UPPER_INNER[-1]):
        x = v[corner, 0] * narrow
        targets[corner] = np.array([x, centre_y - CORNER_BELOW_STOMION_M * (x / half) ** 2,
                                    v[corner, 2] + lift * (abs(v[corner, 0]) / corner_x) ** 2])
    return targets


def _rotate_about(points: np.ndarray, pivot: np.ndarray, angle: float) -> np.ndarray:
    """Turn points about the x axis through ``pivot`` (positive lifts the chin)."""
    c, s = np.cos(angle), np.sin(angle)
    rel = points - pivot
    y = c * rel[:, 1] - s * rel[:, 2]
    z = s * rel[:, 1] + c * rel[:, 2]
    return np.column_stack([rel[:, 0], y, z]) + pivot


def relax(v: np.ndarray, triangles: np.ndarray, mirror: np.ndarray, jaw_pivot: np.ndarray,
          jaw_skin: list[int], face_oval: list[int]) -> np.ndarray:
    """The neutral face of the smiling mesh ``v`` (metres, face frame, symmetric)."""
    targets = neutral_lips(v)
    fixed = {i: t - v[i] for i, t in targets.items()}
    # The jaw closes by part of the lower lip's rise; the rest is the lip itself (a
    # smile also depresses it).
    rise = targets[14][1] - v[14, 1]
    lever = np.hypot(*(v[14, 1:] - jaw_pivot[1:]))
    turned = _rotate_about(v[jaw_skin], jaw_pivot, -JAW_SHARE * rise / lever)
    for k, i in enumerate(jaw_skin):
        fixed.setdefault(i, turned[k] - v[i])
    corners_y = 0.5 * (v[33, 1] + v[133, 1])
    lid_height = v[UPPER_LID_RIGHT, 1] - corners_y
    drops = [(CHEEKS_RIGHT, np.full(len(CHEEKS_RIGHT), CHEEK_DROP_M)),
             (LOWER_LID_RIGHT, np.full(len(LOWER_LID_RIGHT), LOWER_LID_DROP_M)),
             (UPPER_LID_RIGHT, UPPER_LID_DROP_M * lid_height / lid_height.max()),
             (BROW_RIGHT, np.full(len(BROW_RIGHT), BROW_DROP_M))]
    for ids, drop in drops:
        for right, dy in zip(ids, drop):
            for i in (right, int(mirror[right])):
                fixed.setdefault(i, np.array([0.0, -dy, 0.0]))
    # What a smile does not move stays: the nose, the forehead, and the face's outline
    # above the mouth.
    forehead = v[BROW_RIGHT, 1].max() + FOREHEAD_ABOVE_BROWS_M
    still = set(NOSE) | set(np.flatnonzero(v[:, 1] > forehead).tolist()) | \
        {i for i in face_oval if v[i, 1] > v[UPPER_OUTER[0], 1]}
    for i in still:
        fixed.setdefault(int(i), np.zeros(3))
    # In space rather than over the mesh: the mesh is dense at the lips and eyes, and a
    # mesh Laplacian there folded the skin at the mouth's corners.
    known = np.array(sorted(fixed))
    out = v + RBFInterpolator(v[known], np.array([fixed[i] for i in known]),
                              kernel="linear")(v)
    # Between the handles (cheeks, the folds beside the mouth, the chin) the skin still
    # has the smile's bulges; part of it is replaced by the smoothest surface spanning
    # the same handles.
    fair = biharmonic_fill(len(v), triangles, {i: out[i] for i in fixed})
    out = (1 - FAIRING) * out + FAIRING * fair
    return 0.5 * (out + out[mirror] * [-1, 1, 1])
