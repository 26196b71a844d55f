"""What inverse models see and predict, taken from a dataset the same way at training
and at run time.

- ``ground_truth`` features: the twin's expression features (landmarks in the head's
  frame, mm about the neutral face, then the head rotation), as the env observes them;
- ``mediapipe`` features: MediaPipe's landmarks on the render turned into the features a
  camera-only backend measures (in-plane displacements from the face's own neutral, as
  the serial backend does), so a model trained on them runs on the robot unchanged;
- images: the render, resized for the image model.

Targets are the applied controls scaled to [0, 1] per control (low to high), the scale
Emo's and X2C's errors are reported in.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from facetwin.agents.inverse.dataset import DatasetError, load_columns, read_meta
from facetwin.envs.expression import N_FEATURES
from facetwin.envs.perception import perceived_features
from facetwin.landmarks import N_LANDMARKS, N_SKIN
from facetwin.profile import Profile
from facetwin.sim.camera import PinholeCamera

FEATURE_KINDS = ("ground_truth", "mediapipe")


@dataclass
class Split:
    x: np.ndarray  # (n, N_FEATURES) float32, or (n, 3, H, W) uint8 images
    y: np.ndarray  # (n, n_controls) in [0, 1]
    features: np.ndarray  # (n, N_FEATURES): the ground-truth features (closed-loop checks)
    landmarks: np.ndarray  # (n, N_LANDMARKS, 2) ground-truth pixels
    applied: np.ndarray  # (n, n_controls) control units


def load_split(root: Path, split: str, profile: Profile, kind: str,
               image_size: int | None = None) -> Split:
    """One split's inputs and targets; ``kind`` is a feature kind, or ``"image"``."""
    meta = read_meta(root)
    columns = ["applied", "features", "landmarks"]
    if kind == "mediapipe":
        columns += ["mediapipe", "face_found"]
    if kind == "image":
        columns.append("image")
    c = load_columns(root, columns, split)
    keep = c["face_found"] if kind == "mediapipe" else np.ones(len(c["applied"]), bool)
    if kind == "ground_truth":
        x = c["features"]
    elif kind == "mediapipe":
        x = mediapipe_features(c["mediapipe"][keep], meta, profile)
    elif kind == "image":
        if any(v is None for v in c["image"]):
            raise DatasetError(f"{root} was collected with --no-images: an image model "
                               "needs the renders")
        x = np.array([image_input(Image.open(io.BytesIO(b)), image_size) for b in c["image"]],
                     np.uint8).reshape(-1, 3, image_size, image_size)
    else:
        raise DatasetError(f"unknown input kind {kind!r}; available: "
                           f"{', '.join((*FEATURE_KINDS, 'image'))}")
    return Split(x=np.array(x, np.float32 if kind != "image" else np.uint8),
                 y=profile.to_box(c["applied"][keep]).astype(np.float32),
                 features=np.array(c["features"][keep]),
                 landmarks=np.array(c["landmarks"][keep]).reshape(-1, N_LANDMARKS, 2),
                 applied=np.array(c["applied"][keep]))


def mediapipe_features(pixels: np.ndarray, meta: dict, profile: Profile) -> np.ndarray:
    """Camera features of MediaPipe landmarks (n, 956 px), against the dataset's neutral."""
    camera = PinholeCamera.from_profile(profile.camera, meta["plan"]["image_size"])
    neutral = np.asarray(meta["neutral"]["mediapipe"], float).reshape(N_LANDMARKS, 2)
    return np.array([perceived_features(p.reshape(N_LANDMARKS, 2), neutral, camera)
                     for p in pixels], np.float32).reshape(-1, N_FEATURES)


def image_input(image: Image.Image | np.ndarray, size: int) -> np.ndarray:
    """A render (or an RGB array) as the image model's (3, size, size) uint8 input."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR),
                      np.uint8).transpose(2, 0, 1)


@cache
def landmark_regions() -> tuple[tuple[str, np.ndarray], ...]:
    """Facial regions as index sets into the features' landmarks: MediaPipe's named
    contours (brows, eyes, irises with their centres, lips, nose, face oval), and the
    rest of the skin in four quadrants about the face's centre."""
    from mediapipe.python.solutions import face_mesh_connections as mesh

    from facetwin.landmarks import IRIS_START
    from facetwin.sim.face import load_face

    def points(connections) -> set[int]:
        return set(itertools.chain.from_iterable(connections))

    named = {
        "brow_left": points(mesh.FACEMESH_LEFT_EYEBROW),
        "brow_right": points(mesh.FACEMESH_RIGHT_EYEBROW),
        "eye_left": points(mesh.FACEMESH_LEFT_EYE), "eye_right": points(mesh.FACEMESH_RIGHT_EYE),
        "iris_left": set(range(IRIS_START["left"], IRIS_START["left"] + 5)),
        "iris_right": set(range(IRIS_START["right"], IRIS_START["right"] + 5)),
        "lips": points(mesh.FACEMESH_LIPS), "nose": points(mesh.FACEMESH_NOSE),
        "face_oval": points(mesh.FACEMESH_FACE_OVAL),
    }
    taken = set().union(*named.values())
    rest = np.array(sorted(set(range(N_SKIN)) - taken))
    xy = load_face().vertices[rest, :2]
    centre = np.median(load_face().vertices[:, :2], axis=0)
    for side, sx in (("left", xy[:, 0] >= centre[0]), ("right", xy[:, 0] < centre[0])):
        for part, sy in (("upper", xy[:, 1] >= centre[1]), ("lower", xy[:, 1] < centre[1])):
            named[f"skin_{part}_{side}"] = set(rest[sx & sy].tolist())
    return tuple((name, np.array(sorted(ids))) for name, ids in named.items())


def region_columns() -> list[np.ndarray]:
    """For each region, its columns in a feature vector (x, y, z of each landmark); the
    head's rotation is a last region of its own."""
    cols = [np.stack([3 * ids, 3 * ids + 1, 3 * ids + 2], axis=1).ravel()
            for _, ids in landmark_regions()]
    return cols + [np.arange(N_FEATURES - 3, N_FEATURES)]
