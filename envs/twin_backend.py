"""The twin as a backend: MuJoCo physics, rendered by a webcam-like camera."""

from __future__ import annotations

import numpy as np

from facetwin.envs.backend import Stepped
from facetwin.envs.expression import head_frame_landmarks
from facetwin.envs.safety import SafetyFilter
from facetwin.profile import Profile
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.randomization import Randomization
from facetwin.sim.render import FaceRenderer, Look
from facetwin.sim.twin import Twin


def ramp_and_settle(twin: Twin, safety: SafetyFilter, action, period_s: float):
    """A settled step: the filtered command sent period by period until it is reached,
    then the face left to settle; returns the last applied command and its report."""
    period_steps = max(1, round(period_s / twin.model.opt.timestep))
    for applied, report in safety.ramp(action, period_s):
        twin.command(applied)
        if not report.reached:
            twin.step(period_steps)
    twin.settle()
    return applied, report


class TwinBackend:
    """Drives a :class:`Twin` through the safety filter; time is simulated time."""

    def __init__(self, profile: Profile, image_size: int, period_s: float):
        self.profile, self.period_s = profile, period_s
        self.safety = SafetyFilter(profile)
        self.twin = Twin(profile)
        self.camera = PinholeCamera.from_profile(profile.camera, image_size)
        self.renderer = FaceRenderer(self.twin, self.camera)
        self._period_steps = max(1, round(period_s / self.twin.model.opt.timestep))
        # A perturbed face's own neutral, its landmarks (head frame, m) and head rotation,
        # against which its features are measured; None on the nominal twin, whose
        # neutral is the target model's.
        self.own_neutral: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self, start, rng: np.random.Generator, randomization: Randomization) -> None:
        offset, tilt = randomization.camera(rng)
        self.camera = PinholeCamera.from_profile(self.profile.camera, self.camera.width,
                                                 offset, tilt)
        self.renderer.set_camera(self.camera)
        self.renderer.set_look(Look.sample(randomization, rng))
        if start is not None:
            start, _ = self.safety.target(start)
        if randomization == Randomization():
            self.own_neutral = None
            self.twin.reset(controls=start, rng=rng, randomization=randomization)
        else:
            # A robot is measured against its own neutral, as it rests there (Emo): a
            # perturbed rest shape or calibration is not an expression.
            self.twin.reset(rng=rng, randomization=randomization)
            self.twin.settle()
            self.own_neutral = head_frame_landmarks(self.twin), self.twin.head_pose()[1]
            if start is not None:
                self.twin.command(start)
                self.twin.settle()
        self.safety.reset(self.profile.neutral if start is None else start)

    def step(self, action, mode: str) -> Stepped:
        began = self.twin.time
        if mode == "period":
            applied, report = self.safety(action, self.period_s)
            self.twin.command(applied)
            self.twin.step(self._period_steps)
        else:
            applied, report = ramp_and_settle(self.twin, self.safety, action, self.period_s)
        return Stepped(applied, report, self.twin.time - began)

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        return self.renderer.render(), self.twin.present_controls()

    def close(self) -> None:
        self.renderer.close()
