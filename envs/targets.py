"""Targets as expression features, worked out on a nominal twin of the target model's own.

The live face (the env's twin, or the robot) is never reset or moved to compute a
target, and targets are always seen through the profile's nominal camera, whatever the
episode's randomisation. A control target is the face those controls make after the
safety filter (the filter's target, which is a pure function of the profile); with
``features="camera"`` it is measured the way a camera-only backend measures the face,
from MediaPipe's landmarks on a render.
"""

from __future__ import annotations

import hashlib

import numpy as np

from facetwin.envs.expression import head_frame_landmarks, twin_features, unpack
from facetwin.envs.perception import (
    FaceMeshDetector, PictureError, check_picture, human_features, perceived_features,
)
from facetwin.envs.safety import SafetyFilter
from facetwin.profile import Profile
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.render import FaceRenderer
from facetwin.sim.twin import Twin


class TargetModel:
    """Targets as expression features, on a nominal twin of its own (see the module's
    docstring).

    Args:
        profile: the face.
        safety: a safety filter whose :meth:`~SafetyFilter.target` filters control targets.
        image_size: the nominal camera's image size.
        features: ``"ground_truth"`` or ``"camera"`` (MediaPipe on a render).
        detector: MediaPipe, with ``features="camera"``.
    """

    def __init__(self, profile: Profile, safety: SafetyFilter, image_size: int,
                 features: str, detector: FaceMeshDetector | None = None):
        self.profile, self.safety, self.features = profile, safety, features
        self.twin = Twin(profile)
        self.camera = PinholeCamera.from_profile(profile.camera, image_size)
        self.twin.reset(controls=profile.neutral)
        self.neutral_landmarks = head_frame_landmarks(self.twin)
        self.neutral_pixels = self.camera.project(self.twin.landmarks_3d())
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self._pictures: dict[bytes, np.ndarray] = {}
        self._reach: tuple[np.ndarray, np.ndarray] | None = None
        self.renderer = self.detector = self.perceived_neutral = None
        if features == "camera":
            self.renderer = FaceRenderer(self.twin, self.camera)
            self.detector = detector
            self.perceived_neutral = self.seen(profile.neutral)

    def of_controls(self, controls) -> np.ndarray:
        """Features of ``controls`` after the safety filter, on the nominal twin."""
        return self.face_of(controls)[0]

    def face_of(self, controls) -> tuple[np.ndarray, np.ndarray]:
        """Features and landmark pixels of ``controls`` after the safety filter, on the
        nominal twin (both cached)."""
        controls, _ = self.safety.target(controls)
        key = controls.tobytes()
        if key not in self._cache:
            if self.features == "ground_truth":
                self.twin.reset(controls=controls)
                pixels = self.camera.project(self.twin.landmarks_3d())
                self._cache[key] = twin_features(self.twin, self.neutral_landmarks), pixels
            else:
                pixels = self.seen(controls)
                self._cache[key] = perceived_features(pixels, self.perceived_neutral,
                                                      self.camera), pixels
        return self._cache[key]

    def of_picture(self, image: np.ndarray, neutral: np.ndarray | None = None,
                   gain: float = 1.0) -> np.ndarray:
        """Features of the person in ``image`` (RGB), relative to ``neutral`` (the same
        person at rest; the robot's neutral when not given), limited to this face's reach."""
        if self.features != "camera":
            raise ValueError("a picture target is seen through the camera: make the env "
                             "with features='camera'")
        named = {"target picture": image}
        if neutral is not None:
            named["target_neutral picture"] = neutral
        named = {what: check_picture(i, what) for what, i in named.items()}
        digest = hashlib.sha256(repr(gain).encode())
        for i in named.values():
            digest.update(repr(i.shape).encode())
            digest.update(i.tobytes())
        key = digest.digest()
        if key not in self._pictures:
            found = [self.detector(i, what) for what, i in named.items()]
            if any(f is None for f in found):
                which = "target" if found[0] is None else "target_neutral"
                raise PictureError(f"MediaPipe found no face in the {which} picture")
            human_neutral = found[1] if neutral is not None else self.perceived_neutral
            self._pictures[key] = human_features(found[0], human_neutral,
                                                 self.perceived_neutral, self.camera,
                                                 self.reach(), gain)
        return self._pictures[key]

    def reach(self) -> tuple[np.ndarray, np.ndarray]:
        """How far each landmark can move from neutral on this face, in camera-plane mm
        (lowest and highest per coordinate): each control alone at each end, summed."""
        if self._reach is None:
            p = self.profile
            moves = []
            for i in range(len(p.controls)):
                for end in (p.low[i], p.high[i]):
                    if end != p.neutral[i]:
                        v = p.neutral.copy()
                        v[i] = end
                        moves.append(unpack(self.of_controls(v))[0][:, :2])
            per_control = np.stack(moves)
            self._reach = (np.minimum(per_control, 0).sum(axis=0),
                           np.maximum(per_control, 0).sum(axis=0))
        return self._reach

    def seen(self, controls) -> np.ndarray:
        """MediaPipe's landmarks (pixels) on a nominal render of ``controls`` (ground truth
        where MediaPipe finds no face)."""
        self.twin.reset(controls=controls)
        seen = self.detector(self.renderer.render())
        return seen if seen is not None else self.camera.project(self.twin.landmarks_3d())

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
