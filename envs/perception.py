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
