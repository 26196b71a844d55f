"""Coexpression, one frame at a time: mimicry until a person's expression starts, then
the face they are about to make, timed to arrive with them.

Per frame the person's landmarks go through mimicry (:class:`~facetwin.agents.mimic.
pipeline.Mimic`: Emo's normalisation, the inverse model, the One-Euro filter), and an
:class:`OnsetWatch` follows how far their face is from rest. When it has clearly left
rest, the predictive model reads the nine frames up to now (every four of them that
include the latest, averaged) and says which face comes and when, and the robot is
commanded toward that face on a straight ramp that ends when the person is predicted to
peak; for a few frames more, each new frame aims the ramp again. A little after the
peak, mimicry has the last word again, so a wrong guess is corrected by what the person
really did.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.agents.coexpress.predictor import SPAN, Face, averaged, load_predictor
from facetwin.agents.mimic.pipeline import Command, Mimic
from facetwin.agents.mimic.smoothing import OneEuroFilter

BASELINE_FRAMES = 5  # frames after the neutral that measure the watch's rest level
RISE = 0.006  # skull sizes above rest (and 4 rest spreads) that make an onset
HOLD_S = 0.25  # the predicted face is held this long past the predicted peak
FOLLOW_FRAMES = 8  # frames after an onset in which each new frame aims the plan again


@dataclass(frozen=True)
class Detection:
    frame: int  # the frame the onset was detected on: the decision frame
    frames: np.ndarray  # (9, points, 2) displacements up to it (the first held before)


class OnsetWatch:
    """A face's distance from rest, frame by frame, and onsets as they happen: the face
    is clearly away from rest (RISE, and four times the rest's own jitter, above the
    rest level of its first frames), after having been back at rest."""

    def __init__(self, face: Face):
        self.face = face
        self.seen = 0  # frames so far
        self.displacements: deque[np.ndarray] = deque(maxlen=SPAN + 1)
        self.deviation: deque[float] = deque(maxlen=max(BASELINE_FRAMES, 3))
        self.armed = True
        self.onset = -1  # the frame the last onset was detected on
        self.rest: tuple[float, float] | None = None  # level and spread

    def __call__(self, landmarks: np.ndarray) -> Detection | None:
        d = self.face.displacement(landmarks)
        self.displacements.append(d.astype(np.float32))
        self.deviation.append(float(np.sqrt((d ** 2).sum(1).mean())))
        n, self.seen = self.seen, self.seen + 1
        if self.rest is None:
            if self.seen >= BASELINE_FRAMES:
                level = np.array(self.deviation)
                self.rest = (float(level.mean()), float(level.std()))
            return None
        level, spread = self.rest
        now = float(np.mean(list(self.deviation)[-3:]))
        threshold = level + max(RISE, 4 * spread)
        if not self.armed:
            if now < level + 0.5 * (threshold - level):  # back at rest: watch again
                self.armed = True
            return None
        if now < threshold:
            return None
        self.armed = False
        self.onset = n
        return Detection(n, self.latest())

    def latest(self) -> np.ndarray:
        """The nine frames up to the latest (the first repeated before the first frame)."""
        kept = list(self.displacements)
        return np.stack([kept[0]] * (SPAN + 1 - len(kept)) + kept)

    def since_onset(self) -> int:
        """Frames since the last onset was detected."""
        return self.seen - 1 - self.onset


@dataclass
class Plan:
    """The robot's way to the predicted face: a ramp from ``start`` at ``t0`` to ``end``
    at ``t1``, held until ``until``."""

    start: np.ndarray
    end: np.ndarray
    t0: float
    t1: float
    until: float
    landmarks: np.ndarray  # the predicted face, pixels of the person's picture

    def unit(self, t: float) -> np.ndarray:
        s = 1.0 if self.t1 <= self.t0 else min(max((t - self.t0) / (self.t1 - self.t0), 0), 1)
        return self.start + s * (self.end - self.start)


class Coexpress(Mimic):
    """A person's picture in, the robot's command out, like :class:`Mimic`, but moving
    toward the face the person is about to make while they are still moving.

    Args (beyond Mimic's):
        predictor_dir: a predictive model (:mod:`.predictor`).
        fps: the source's frame rate, which the predictor's inputs are timed by.
        latency_s: how long the robot takes from a frame's capture to moving (camera,
            processing, servos), which the ramp makes up for by ending that much before
            the predicted peak (frame times are capture times).
    """

    def __init__(self, profile: profiles.Profile, model_dir: Path, predictor_dir: Path,
                 image_size: int = 256, smoothing: OneEuroFilter | None = None,
                 gain: float = 1.0, neutral: np.ndarray | None = None,
                 neutral_frames: int = 10, fps: float = 30.0, latency_s: float = 0.0):
        self.predictor, self.predictor_config = load_predictor(predictor_dir)
        super().__init__(profile, model_dir, image_size, smoothing, gain, neutral,
                         neutral_frames)
        self.fps, self.latency_s = fps, latency_s
        self.watch: OnsetWatch | None = None
        self.plan: Plan | None = None
        self.onsets: list[dict] = []  # each detection: when, and what was predicted

    def see(self, person: np.ndarray | None, t: float, timings: dict) -> Command:
        command = super().see(person, t, timings)
        if person is not None and self.person_neutral is not None and command.raw is not None:
            if self.watch is None:
                self.watch = OnsetWatch(Face(self.person_neutral))
            began = time.perf_counter()
            found = self.watch(person)
            if found is not None:
                self._predict(found.frames, t, new=True)
            elif self.plan is not None and self.watch.since_onset() <= FOLLOW_FRAMES \
                    and t < self.plan.t1:
                self._predict(self.watch.latest(), t, new=False)
            timings["predict"] = time.perf_counter() - began
        if self.plan is None or t > self.plan.until:
            return command
        unit = self.plan.unit(t)
        return Command(self.profile.from_box(unit).astype(np.float32), unit, command.raw,
                       command.person, command.target, timings)

    def restart(self) -> None:
        super().restart()
        self.watch, self.plan, self.onsets = None, None, []

    def _predict(self, frames: np.ndarray, t: float, new: bool) -> None:
        """A prediction from the nine frames up to now: a new plan at an onset, and while
        the face keeps rising toward it, the same plan aimed again (each frame shows more
        of how far the face is going, and when)."""
        d, after = averaged(self.predictor, frames, self.fps)
        face = self.watch.face
        landmarks = face.landmarks(d)
        unit = np.clip(self.units_of(self.features_of(landmarks, face.rest)), 0.0, 1.0)
        peak = t + max(after, 0.0)
        if new:
            self.plan = Plan(self.unit.copy(), unit, t, peak - self.latency_s,
                             peak + HOLD_S, landmarks)
            self.onsets.append({"time": round(t, 4)})
        else:
            plan = self.plan
            plan.end, plan.landmarks = unit, landmarks
            plan.t1, plan.until = max(peak - self.latency_s, plan.t0), peak + HOLD_S
        self.onsets[-1] |= {"predicted_peak": round(peak, 4),
                            "predicted": np.round(unit, 4).tolist()}
