"""The mimicry pipeline, one frame at a time: MediaPipe on the person -> Emo's
normalisation onto the robot's face (each face against its own neutral, limited to the
robot's reach; see ``human_features``) -> the inverse model -> a One-Euro filter -> a
command. A frame without a face holds the last command."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from facetwin import profile as profiles
from facetwin.agents.inverse.store import ModelError, load_model
from facetwin.agents.mimic.smoothing import OneEuroFilter
from facetwin.agents.mimic.sources import SourceError
from facetwin.envs.perception import FaceMeshDetector, feature_pixels, human_features
from facetwin.envs.safety import SafetyFilter
from facetwin.envs.targets import TargetModel

DEFAULT_NEUTRAL_FRAMES = 10  # frames with a face taken as the person at rest


@dataclass
class Command:
    controls: np.ndarray  # what goes to the env (control units)
    unit: np.ndarray  # the same, 0-1 per control
    raw: np.ndarray | None  # the model's output before smoothing (0-1), when it ran
    person: np.ndarray | None  # the person's landmarks (pixels of their picture)
    target: np.ndarray | None  # where they put the robot's landmarks (robot pixels)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


class Mimic:
    """A person's picture in, the robot's command out; one call per frame, in order.

    Args:
        profile: the robot's face.
        model_dir: an inverse model trained on MediaPipe features (``--features mediapipe``).
        image_size: the robot camera's image size.
        smoothing: the One-Euro filter on the model's output (defaults when None).
        gain: how strongly the person's expression is put on the robot (Emo's K).
        neutral: a picture of the person at rest; else the first ``neutral_frames``
            frames with a face are taken as the person at rest.
    """

    def __init__(self, profile: profiles.Profile, model_dir: Path, image_size: int = 256,
                 smoothing: OneEuroFilter | None = None, gain: float = 1.0,
                 neutral: np.ndarray | None = None,
                 neutral_frames: int = DEFAULT_NEUTRAL_FRAMES):
        self.profile = profile
        self.module, config = load_model(model_dir, profile)  # another profile's is refused
        require_camera_inputs(model_dir, config)
        self.person_neutral = None if neutral is None else _landmarks_at_rest(neutral)
        self.neutral_frames = 0 if neutral is not None else max(0, int(neutral_frames))
        self.smoothing = smoothing if smoothing is not None else OneEuroFilter()
        self.gain = gain
        self.detector = FaceMeshDetector(static_image_mode=False)  # tracks across frames
        # The robot's own neutral and reach, as its camera sees them on a nominal twin.
        self._robot_detector = FaceMeshDetector()
        self.robot = TargetModel(profile, SafetyFilter(profile), image_size, "camera",
                                 self._robot_detector)
        self.reach = self.robot.reach()
        self._seen_neutral: list[np.ndarray] = []
        self.unit = profile.to_box(profile.neutral)

    def __call__(self, image: np.ndarray, t: float) -> Command:
        began = time.perf_counter()
        person = self.detector(image, "source frame")
        return self.see(person, t, {"detect": time.perf_counter() - began})

    def see(self, person: np.ndarray | None, t: float, timings: dict) -> Command:
        """The command for the person's landmarks at ``t`` (None: no face found)."""
        clock = time.perf_counter
        if person is None:  # hold the last command
            return self._command(None, None, None, timings)
        if self.person_neutral is None and len(self._seen_neutral) < self.neutral_frames:
            self._seen_neutral.append(person)  # the person at rest; the robot holds neutral
            if len(self._seen_neutral) == self.neutral_frames:
                self.person_neutral = np.mean(self._seen_neutral, axis=0)
            return self._command(None, person, None, timings)
        began = clock()
        features = self.features_of(person)
        timings["map"], began = clock() - began, clock()
        raw = self.units_of(features)
        timings["infer"], began = clock() - began, clock()
        self.unit = np.clip(self.smoothing(raw, t), 0.0, 1.0)
        timings["smooth"] = clock() - began
        target = feature_pixels(features, self.robot.perceived_neutral, self.robot.camera)
        return self._command(raw, person, target, timings)

    def features_of(self, person: np.ndarray, neutral: np.ndarray | None = None) -> np.ndarray:
        """The person's landmarks as the robot's expression features (Emo's
        normalisation), against ``neutral`` (by default the person's, or the robot's
        until the person's is known)."""
        own = neutral if neutral is not None else self.person_neutral \
            if self.person_neutral is not None else self.robot.perceived_neutral
        return human_features(person, own, self.robot.perceived_neutral, self.robot.camera,
                              self.reach, self.gain)

    def units_of(self, features: np.ndarray) -> np.ndarray:
        """The inverse model's command (0-1 per control) for expression features."""
        with torch.no_grad():
            return self.module(torch.as_tensor(features[None]))[0].numpy().astype(float)

    def restart(self) -> None:
        """Forget the person: the next frames are someone new (their neutral included,
        unless it was given as a picture)."""
        if self.neutral_frames:
            self.person_neutral = None
        self._seen_neutral = []
        self.smoothing.reset()
        self.unit = self.profile.to_box(self.profile.neutral)

    def _command(self, raw, person, target, timings) -> Command:
        return Command(self.profile.from_box(self.unit).astype(np.float32),
                       self.unit.copy(), raw, person, target, timings)

    def close(self) -> None:
        self.detector.close()
        self._robot_detector.close()
        self.robot.close()


def _landmarks_at_rest(picture: np.ndarray) -> np.ndarray:
    detector = FaceMeshDetector()
    try:
        found = detector(picture, "neutral picture")
    finally:
        detector.close()
    if found is None:
        raise SourceError("MediaPipe found no face in the neutral picture")
    return found


def require_camera_inputs(model_dir: Path, config: dict) -> None:
    if config["inputs"] != "mediapipe":
        raise ModelError(f"{model_dir} reads {config['inputs']} inputs; mimicry sees a "
                         "person through MediaPipe: train a model with --features mediapipe")
