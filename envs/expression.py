"""Expression features and the distance between them, defined once: what the env
observes and rewards, and what the optimiser models.

Features are the landmarks in the head's frame, in millimetres relative to the neutral
face (``N_LANDMARKS`` x 3, flattened), followed by the head's rotation vector in degrees.
The expression distance is the mean landmark distance in millimetres plus
``HEAD_WEIGHT_MM_PER_DEG`` times the head rotation error in degrees; the reward is minus
it, term by term.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from facetwin.landmarks import N_LANDMARKS

HEAD_WEIGHT_MM_PER_DEG = 0.1
N_FEATURES = N_LANDMARKS * 3 + 3


def pack(landmarks_mm: np.ndarray, head_rotvec_deg) -> np.ndarray:
    """The feature vector of landmark displacements (N_LANDMARKS, 3) and a head rotation."""
    return np.concatenate([np.asarray(landmarks_mm, dtype=float).ravel(),
                           np.asarray(head_rotvec_deg, dtype=float)]).astype(np.float32)


def head_frame_landmarks(twin) -> np.ndarray:
    """A twin's landmarks in its head's frame (metres)."""
    pos, rot = twin.head_pose()
    return (twin.landmarks_3d() - pos) @ rot


def twin_features(twin, neutral_landmarks: np.ndarray,
                  neutral_rot: np.ndarray | None = None) -> np.ndarray:
    """Features of a twin's present face, against ``neutral_landmarks`` (head frame, m)
    and the head's rotation at neutral (the world's axes when None)."""
    _, rot = twin.head_pose()
    if neutral_rot is not None:
        rot = rot @ neutral_rot.T
    mm = (head_frame_landmarks(twin) - neutral_landmarks) * 1e3
    return pack(mm, Rotation.from_matrix(rot).as_rotvec(degrees=True))


def unpack(features) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors (any leading shape) as landmark displacements (..., N_LANDMARKS, 3)
    in millimetres and head rotation vectors (..., 3) in degrees."""
    f = np.asarray(features, dtype=float)
    n = N_LANDMARKS * 3
    return f[..., :n].reshape(*f.shape[:-1], N_LANDMARKS, 3), f[..., n:]


def distance_terms(achieved, desired) -> dict[str, np.ndarray]:
    """Mean landmark distance (mm) and head rotation error (deg), any leading shape."""
    a_mm, a_head = unpack(achieved)
    d_mm, d_head = unpack(desired)
    return {"landmark_mm": np.linalg.norm(a_mm - d_mm, axis=-1).mean(axis=-1),
            "head_deg": np.linalg.norm(a_head - d_head, axis=-1)}


def distance(achieved, desired) -> np.ndarray:
    """The expression distance: mean landmark distance (mm) plus the weighted head
    rotation error; the reward is minus it."""
    t = distance_terms(achieved, desired)
    return t["landmark_mm"] + HEAD_WEIGHT_MM_PER_DEG * t["head_deg"]


def reward_terms(achieved, desired) -> dict[str, np.ndarray]:
    """The reward's terms; they sum to minus the expression distance."""
    t = distance_terms(achieved, desired)
    return {"landmark_mm": -t["landmark_mm"], "head": -HEAD_WEIGHT_MM_PER_DEG * t["head_deg"]}


def residual_weights() -> np.ndarray:
    """Weights under which the squared norm of a residual (achieved minus desired) is the
    mean squared landmark error (mm²) plus the head term squared: the optimiser's smooth
    stand-in for the distance."""
    return np.concatenate([np.full(N_LANDMARKS * 3, 1 / np.sqrt(N_LANDMARKS)),
                           np.full(3, HEAD_WEIGHT_MM_PER_DEG)])
