"""Perception the real robot uses: MediaPipe's bundled face mesh (478 landmarks).

mediapipe 0.10.21 ships the face-mesh models inside its wheel, so this works offline.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import numpy as np

from facetwin.envs.expression import pack, unpack
from facetwin.errors import FaceTwinError


MIN_PICTURE_SIDE = 32  # pixels; MediaPipe's face detector fails on degenerate images


class PictureError(FaceTwinError, ValueError):
    """A picture that cannot show a face; the message names it and why."""


def check_picture(image, what: str = "picture") -> np.ndarray:
    """``image`` as a contiguous RGB uint8 array, or a PictureError naming ``what`` and
    what is wrong with it. Grey pictures ((H, W) or (H, W, 1)) become RGB; alpha is
    dropped; 16-bit pixels keep their high byte."""
    try:
        a = np.asarray(image)
    except Exception as exc:  # ragged sequences, objects numpy cannot hold
        raise PictureError(f"the {what} is not an image array: {exc}") from None
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise PictureError(f"the {what} must be an (H, W, 3) RGB or (H, W) grey image, "
                           f"got shape {a.shape}")
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    if a.dtype != np.uint8:
        raise PictureError(f"the {what} must have 8- or 16-bit pixels, got {a.dtype}")
    h, w = a.shape[:2]
    if min(h, w) < MIN_PICTURE_SIDE:
        raise PictureError(f"the {what} is {w} x {h} pixels; a face needs at least "
                           f"{MIN_PICTURE_SIDE} x {MIN_PICTURE_SIDE}")
    a = np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a[..., :3]
    return np.ascontiguousarray(a)


def read_picture(path, what: str = "picture") -> np.ndarray:
    """The picture file ``path`` as RGB (see :func:`check_picture`), or a PictureError
    naming the file and what is wrong with it."""
    import imageio.v3 as iio

    try:
        image = iio.imread(path)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # one line
        raise PictureError(f"{path}: not a readable image ({first})") from None
    return check_picture(image, f"{what} {path}")


@contextmanager
def native_logs_silenced():
    """Native code's writes to the process's stderr dropped for the block. MediaPipe's
    graph logs its start-up there (TensorFlow Lite's XNNPACK line, absl's preamble, a
    warning per model about feedback tensors) from C++, with no switch to turn it off in
    0.10.21; it happens as a graph starts and in its first runs, and only those are
    wrapped."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class FaceMeshDetector:
    """MediaPipe face mesh on single RGB images; landmarks in pixels, or None.

    Pictures are checked before MediaPipe sees them, and a MediaPipe graph that fails
    anyway is replaced by a fresh one: one bad picture never breaks the detector."""

    def __init__(self, static_image_mode: bool = True):
        self.static_image_mode = static_image_mode
        self._mesh = self._new_mesh()
        self._started = False

    def _new_mesh(self):
        import mediapipe as mp

        with native_logs_silenced():
            mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=self.static_image_mode, refine_landmarks=True,
                max_num_faces=1)
            # The graph starts on a thread of its own; a first run on a blank picture (no
            # face: nothing tracked) waits for it, so that it logs in here.
            mesh.process(np.zeros((32, 32, 3), np.uint8))
        return mesh

    def __call__(self, image: np.ndarray, what: str = "picture",
                 depth: bool = False) -> np.ndarray | None:
        image = check_picture(image, what)
        if self._mesh is None:
            raise ValueError("this face detector is closed")
        try:
            if self._started:
                result = self._mesh.process(image)
            else:
                with native_logs_silenced():  # until both of its models have run once
                    result = self._mesh.process(image)
                self._started = bool(result.multi_face_landmarks)
        except (RuntimeError, ValueError) as exc:
            self.close()
            self._mesh, self._started = self._new_mesh(), False
            raise ValueError(f"MediaPipe could not read the {what}: {exc}") from None
        if not result.multi_face_landmarks:
            return None
        h, w = image.shape[:2]
        marks = result.multi_face_landmarks[0].landmark
        if depth:  # MediaPipe's relative depth, in pixels of the image's width
            return np.array([[p.x * w, p.y * h, p.z * w] for p in marks])
        return np.array([[p.x * w, p.y * h] for p in marks])

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None


def agreement(detector: FaceMeshDetector, env, n: int, seed: int = 0) -> dict[str, float]:
    """Detection rate and landmark error of MediaPipe against the twin's ground truth
    on ``n`` renders of random in-range commands."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    found, errors = 0, []
    for _ in range(n):
        obs, *_ = env.step(rng.uniform(env.action_space.low, env.action_space.high))
        seen = detector(obs["image"])
        if seen is not None:
            found += 1
            errors.append(np.linalg.norm(seen - obs["landmarks"], axis=1))
    all_errors = np.concatenate(errors) if errors else np.array([np.nan])
    return {"renders": n, "detection_rate": found / n,
            "median_error_px": float(np.median(all_errors)),
            "p90_error_px": float(np.percentile(all_errors, 90))}


# Landmarks on the skull that expressions barely move: forehead, nose bridge, temples.
RIGID_LANDMARKS = [10, 151, 9, 8, 168, 6, 197, 195, 127, 356, 234, 454]


def align_face(points: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float]:
    """``points`` moved by the 2D similarity that best maps their rigid landmarks onto
    the reference's (Umeyama), and the roll angle it removed, in degrees."""
    a, b = points[RIGID_LANDMARKS], reference[RIGID_LANDMARKS]
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    u, sig, vt = np.linalg.svd((b - mb).T @ (a - ma))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = (sig * np.diag(d)).sum() / ((a - ma) ** 2).sum()
    aligned = (points - ma) @ rot.T * scale + mb
    return aligned, float(np.degrees(np.arctan2(rot[1, 0], rot[0, 0])))


def perceived_features(pixels: np.ndarray, neutral_pixels: np.ndarray, camera) -> np.ndarray:
    """Expression features from a camera alone, for backends without ground truth.

    The head's in-plane motion (translation, scale, roll) is removed by aligning the
    skull's landmarks onto the same face's neutral; what remains is each landmark's
    displacement in millimetres on the plane of the face (the profile's camera
    distance), face-frame axes. Depth, head yaw and pitch are not observed and read 0;
    the roll goes in the head rotation's z.
    """
    aligned, roll = align_face(np.asarray(pixels, dtype=float), np.asarray(neutral_pixels))
    return _features(_mm(aligned - neutral_pixels, camera), roll)


def _mm(displacement_px: np.ndarray, camera) -> np.ndarray:
    """Pixel displacements on the face's plane in millimetres, face axes (y up)."""
    mm_per_px = camera.pose[2, 3] / camera.focal_px * 1e3
    return displacement_px * mm_per_px * [1.0, -1.0]  # image y runs down


def feature_pixels(features: np.ndarray, neutral_pixels: np.ndarray, camera) -> np.ndarray:
    """Where camera features put each landmark on the image of a face whose neutral
    landmarks are ``neutral_pixels``: the inverse of ``perceived_features`` (roll aside)."""
    mm = unpack(features)[0][:, :2]
    return neutral_pixels + mm / _mm(np.ones((1, 2)), camera)


def _features(displacement_mm: np.ndarray, roll_deg: float) -> np.ndarray:
    """In-plane displacements as expression features: depth, yaw and pitch read 0."""
    xyz = np.column_stack([displacement_mm, np.zeros(len(displacement_mm))])
    return pack(xyz, [0.0, 0.0, -roll_deg])


def human_features(human: np.ndarray, human_neutral: np.ndarray, robot_neutral: np.ndarray,
                   camera, reach: tuple[np.ndarray, np.ndarray] | None = None,
                   gain: float = 1.0) -> np.ndarray:
    """A person's expression as features of the robot's face (Emo's normalisation).

    Each face is measured relative to its own neutral: the person's landmarks are
    aligned onto their neutral's skull landmarks and the displacement is rescaled by
    the ratio of the two faces' skull sizes onto the robot's neutral, as seen by its
    camera. As in emo-coexpression (Methods, Eq. 1-2), each coordinate is then limited
    to the robot's reach ``(lo, hi)`` (millimetres, (478, 2) each, relative to its
    neutral) and multiplied by ``gain`` (their K). Without a neutral picture of the
    person, pass the robot's neutral as ``human_neutral``: the person's face shape then
    counts as expression, and the reach keeps what the robot cannot move out of it.
    """
    human, human_neutral = np.asarray(human, float), np.asarray(human_neutral, float)
    robot_neutral = np.asarray(robot_neutral, float)
    aligned, roll = align_face(human, human_neutral)
    scale = skull_size(robot_neutral) / skull_size(human_neutral)
    d = _mm((aligned - human_neutral) * scale, camera)
    if reach is not None:
        d = np.clip(d, reach[0], reach[1])
    return _features(d * gain, roll * gain)


def skull_size(points: np.ndarray) -> float:
    """How big a face looks: the RMS distance of its rigid landmarks from their centre."""
    rigid = points[RIGID_LANDMARKS]
    return float(np.sqrt(((rigid - rigid.mean(axis=0)) ** 2).sum(axis=1).mean()))
