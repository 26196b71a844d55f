"""Perception the real robot uses: MediaPipe's bundled face mesh (478 landmarks).

mediapipe 0.10.21 ships the face-mesh models inside its wheel, so this works offline.
"""

from __future__ import annotations

import numpy as np


class FaceMeshDetector:
    """MediaPipe face mesh on single RGB images; landmarks in pixels, or None."""

    def __init__(self, static_image_mode: bool = True):
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static_image_mode, refine_landmarks=True, max_num_faces=1)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} "
                             f"{image.shape}")
        result = self._mesh.process(image)
        if not result.multi_face_landmarks:
            return None
        h, w = image.shape[:2]
        return np.array([[p.x * w, p.y * h] for p in result.multi_face_landmarks[0].landmark])

    def close(self) -> None:
        self._mesh.close()


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


def _align(points: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float]:
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
    aligned, roll = _align(np.asarray(pixels, dtype=float), np.asarray(neutral_pixels))
    mm_per_px = camera.pose[2, 3] / camera.focal_px * 1e3
    d = (aligned - neutral_pixels) * mm_per_px
    xyz = np.column_stack([d[:, 0], -d[:, 1], np.zeros(len(d))])  # image y runs down
    return np.concatenate([xyz.ravel(), [0.0, 0.0, -roll]]).astype(np.float32)
