"""The twin as a backend: MuJoCo physics, rendered by a webcam-like camera, with the
ground truth a robot cannot give (landmarks, features, strain, simulated time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from facetwin.envs.backend import Seen, Stepped, settle_periods
from facetwin.envs.expression import head_frame_landmarks, twin_features
from facetwin.envs.safety import SafetyFilter
from facetwin.envs.settled import ramp_and_settle, rest_at, settle_model
from facetwin.profile import Profile
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.randomization import Randomization
from facetwin.sim.render import FaceRenderer, Look
from facetwin.sim.robot import Robot, load_robot
from facetwin.sim.twin import Twin


def draw_robot(twin: Twin, randomization: Randomization,
               rng: np.random.Generator) -> tuple[Robot, Look]:
    """One robot of ``randomization`` and its lighting, drawn as an env's reset draws
    them (camera, light, then the twin's knobs): ``FaceTwinEnv(randomization=r)``'s
    ``reset(seed=S)`` and ``draw_robot(twin, r, np.random.default_rng(S))`` agree (the
    env draws a random target after the robot)."""
    offset, tilt = randomization.camera(rng)
    look = Look.sample(randomization, rng)
    return twin.draw(rng, randomization).with_camera(offset, tilt), look


class TwinBackend:
    """Drives a :class:`~facetwin.sim.twin.Twin` through the safety filter; time is
    simulated time.

    Args:
        profile: the face.
        image_size: the camera's square image size in pixels.
        period_s: one control period, seconds.
        neutral: the nominal face's neutral landmarks (head frame, metres), which a
            nominal twin's features are measured from (the target model's, so that a
            target and the face are measured alike).
        robot: one robot (a :class:`~facetwin.sim.robot.Robot`, or an identified robot
            file, refused unless made for this profile): the twin is that robot at every
            reset, seen through its camera, instead of a draw.
    """

    def __init__(self, profile: Profile, image_size: int, period_s: float,
                 neutral: np.ndarray, robot: Robot | str | Path | None = None):
        self.profile, self.period_s = profile, period_s
        self.safety = SafetyFilter(profile)
        self._twin = Twin(profile)
        self._camera = PinholeCamera.from_profile(profile.camera, image_size)
        self._renderer = FaceRenderer(self._twin, self._camera)
        self._period_steps = max(1, round(period_s / self._twin.model.opt.timestep))
        self._nominal = neutral, None
        # The neutral the present face is measured from: its own, landmarks (head frame,
        # m) and head rotation, on a perturbed twin, whose rest shape or calibration is
        # not an expression (Emo: a robot is measured against its own neutral).
        self._neutral = self._nominal
        if robot is not None and not isinstance(robot, Robot):
            robot = load_robot(robot, profile, self._twin.layout)
        self._robot = robot
        self._settle_model = None  # measured or read from the cache on the first need

    def reset(self, start, rng: np.random.Generator, randomization: Randomization) -> None:
        robot, look = self._robot, Look()
        if robot is None:
            robot, look = draw_robot(self._twin, randomization, rng)
        self._camera = PinholeCamera.from_profile(self.profile.camera, self._camera.width,
                                                  robot.camera_offset_m, robot.camera_tilt_deg)
        self._renderer.set_camera(self._camera)
        self._renderer.set_look(look)
        if start is not None:
            start, _ = self.safety.target(start)
        twin = self._twin
        if self._robot is None and randomization == Randomization():
            self._neutral = self._nominal
            twin.reset(controls=start, robot=robot)
        else:
            twin.reset(robot=robot)
            twin.settle()
            self._neutral = head_frame_landmarks(twin), twin.head_pose()[1]
            if start is not None:
                twin.command(start)
                twin.settle()
        self.safety.reset(self.profile.neutral if start is None else start)

    def step(self, action, mode: str) -> Stepped:
        twin = self._twin
        began = twin.time
        if mode == "period":
            applied, report = self.safety(action, self.period_s)
            twin.command(applied)
            twin.step(self._period_steps)
            still = report.reached and twin.still()
            return Stepped(applied, report, twin.time - began, still)
        if mode == "ramp":
            applied, report, _ = ramp_and_settle(twin, self.safety, action, self.period_s)
            return Stepped(applied, report, twin.time - began, True)
        if self._settle_model is None:
            self._settle_model = settle_model(self.profile, twin.face)
        applied, report, settle_s = rest_at(twin, self.safety, self._settle_model, action,
                                            self.period_s)
        return Stepped(applied, report, settle_s, True)

    def observe(self) -> Seen:
        twin = self._twin
        pos, rot = twin.head_pose()
        return Seen(
            image=self._renderer.render(), controls=twin.present_controls(),
            camera=self._camera, landmarks=self._camera.project(twin.landmarks_3d()),
            features=twin_features(twin, *self._neutral),
            head_pose=np.concatenate([Rotation.from_matrix(rot).as_rotvec(degrees=True),
                                      pos * 1e3]),
            strain_max=float(twin.strain().max()), sim_time=twin.time)

    def settle_periods(self) -> int:
        return settle_periods(self.safety, self.period_s)

    def depth(self) -> np.ndarray:
        """The depth image (metres) of the present face through the present camera."""
        return self._renderer.render(depth=True)[1]

    def close(self) -> None:
        self._renderer.close()
