"""``facetwin/FaceTwin-v0``: a robot face behind the Gymnasium API.

    env = gym.make("facetwin/FaceTwin-v0", profile="x2c30")
    obs, info = env.reset(seed=0, options={"target": "happiness"})
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Actions are the profile's controls in control units. The env is an adapter: a step
goes to the backend (:mod:`facetwin.envs.backend`), which owns the one stateful safety
filter (:mod:`facetwin.envs.safety`), filters the action, moves the face and says what it
applied and why (``info["safety"]``), how long the face took (``info["settle_s"]``) and
whether it is at rest (``info["still"]``); then the backend's record of the face
(:class:`~facetwin.envs.backend.Seen`) becomes the observation.
``step_mode="settle"`` (the default) returns the face at rest at the filtered
command: the robot is sent it period by period at the profile's speeds until it is
reached and still; the twin, whose rest is all a settled step returns, starts its
physics where the face comes to rest (:mod:`facetwin.sim.equilibrium`) and skips the
transient, reporting in ``info["settle_s"]`` how long the transient takes.
``step_mode="ramp"`` has the twin simulate that transient too; ``step_mode="period"``
applies one control period of the filtered command.

Backends: ``backend="twin"`` (the MuJoCo face) or ``backend="serial"`` with
``port=`` (a Feetech bus, or the virtual bus standing in for it) and ``camera=`` (a
webcam, a video file, or the frame file of the virtual bus's twin camera). Both have
the same action and observation spaces.

Targets (``reset(options={"target": ...})``): a name from the profile's expression
library (extended by ``library=``, a file written by ``facetwin optimize``), a control
vector, or a picture of a person (an RGB array; ``"target_neutral"`` may give the same
person at rest), mapped onto the robot's face by ``human_features``.

``features="ground_truth"`` (the twin's default) measures the twin's own landmarks
(a twin perturbed by ``randomization``, or by a reset's ``options["randomization"]``,
starts each episode at rest at its own neutral, which its landmarks are measured from,
as a robot's are);
``features="camera"`` (the serial backend's only choice, and what picture targets
need) measures landmarks MediaPipe finds on the camera image, as in-plane
displacements from the face's own neutral (see ``perceived_features``); control
targets are then seen the same way on a nominal twin render.

Expression features (``achieved_goal`` / ``desired_goal``) and the reward, minus the
expression distance with its terms in ``info["reward_terms"]``, are defined in
:mod:`facetwin.envs.expression`. Targets are worked out by a target model with a
nominal twin of its own (:mod:`facetwin.envs.targets`), never on the live face.
"""

from __future__ import annotations

from contextlib import ExitStack

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from facetwin import profile as profiles
from facetwin.envs.backend import STEP_MODES, Seen, Stepped
from facetwin.envs.expression import N_FEATURES, distance, reward_terms
from facetwin.envs.perception import FaceMeshDetector, perceived_features
from facetwin.envs.safety import SafetyFilter
from facetwin.envs.serial_backend import SerialBackend
from facetwin.envs.targets import TargetModel
from facetwin.envs.twin_backend import TwinBackend
from facetwin.landmarks import N_LANDMARKS
from facetwin.library import load_library
from facetwin.sim.randomization import Randomization
from facetwin.sim.robot import Robot, load_robot
from facetwin.sim.twin import layout_of
from facetwin.threads import single_threaded

FEATURE_BOUND = 1000.0  # mm and degrees: far beyond any face's reach
BACKENDS = ("twin", "serial")
FEATURES = ("ground_truth", "camera")


class FaceTwinEnv(gym.Env):
    """A robot face behind the Gymnasium API (see the module's docstring).

    Args:
        profile: a profile name (``"x2c30"``) or a loaded :class:`~facetwin.profile.Profile`.
        backend: ``"twin"`` (MuJoCo) or ``"serial"`` (a Feetech bus and a camera).
        image_size: square image size in pixels (the profile's camera size by default).
        render_mode: ``"rgb_array"``, ``"depth_array"`` (twin only) or None.
        step_mode: ``"settle"`` (the face at rest), ``"ramp"`` (at rest, the twin
            simulating the way there) or ``"period"`` (one control period).
        randomization: the twin's perturbation, drawn per reset from the env's seed.
        control_rate_hz: the control rate (the profile's by default).
        port, camera, calibration, journal: the serial backend's bus, camera, servo
            calibration (the profile's companion file by default) and journal file.
        features: ``"ground_truth"`` (twin) or ``"camera"`` (MediaPipe on the image).
        library: an expression library file that extends the profile's expressions.
        robot: a robot file from ``facetwin identify`` (twin only): the twin is that
            robot, seen through its camera (refused if made for another profile).
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 25}

    def __init__(self, profile: str | profiles.Profile = "x2c30", backend: str = "twin",
                 image_size: int | None = None, render_mode: str | None = None,
                 step_mode: str = "settle", randomization: Randomization | None = None,
                 control_rate_hz: float | None = None, port: str | None = None,
                 camera: str | None = None, calibration=None, journal=None,
                 features: str | None = None, library=None, robot=None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
        features = features or ("ground_truth" if backend == "twin" else "camera")
        if features not in FEATURES:
            raise ValueError(f"unknown features {features!r}; available: {', '.join(FEATURES)}")
        if backend == "serial" and features != "camera":
            raise ValueError("the serial backend has no ground truth: features='camera'")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"unknown render_mode {render_mode!r}; "
                             f"available: {self.metadata['render_modes']}")
        if render_mode == "depth_array" and backend != "twin":
            raise ValueError("render_mode='depth_array' needs the twin: a webcam sees no depth")
        if step_mode not in STEP_MODES:
            raise ValueError(f"step_mode must be one of {STEP_MODES}, got {step_mode!r}")
        perturbed = (randomization or Randomization()) != Randomization()
        if robot is not None and (backend != "twin" or perturbed):
            raise ValueError("robot= makes the twin one identified robot: it needs "
                             "backend='twin' and no randomization")
        if backend == "serial" and (port is None or camera is None):
            raise ValueError("backend='serial' needs port= (the servo bus) and camera= "
                             "(a webcam, a video file, or the virtual bus's frame file)")
        self.profile = p = profile if isinstance(profile, profiles.Profile) else \
            profiles.load(profile)
        self.render_mode, self.step_mode = render_mode, step_mode
        self.randomization = randomization or Randomization()
        self.size = p.camera.size if image_size is None else _checked(
            "image_size", image_size, profiles.IMAGE_SIZES, "pixels", integer=True)
        self.expressions = dict(p.expressions)
        if library is not None:
            self.expressions.update(load_library(library, p))
        self.action_space = spaces.Box(p.low, p.high, dtype=np.float32)
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (self.size, self.size, 3), dtype=np.uint8),
            "landmarks": spaces.Box(-self.size, 2 * self.size, (N_LANDMARKS, 2),
                                    dtype=np.float32),
            "controls": spaces.Box(p.low, p.high, dtype=np.float32),
            "achieved_goal": spaces.Box(-FEATURE_BOUND, FEATURE_BOUND, (N_FEATURES,),
                                        np.float32),
            "desired_goal": spaces.Box(-FEATURE_BOUND, FEATURE_BOUND, (N_FEATURES,),
                                       np.float32),
        })
        self.backend_name, self.features = backend, features
        self.target_name: str | None = None
        self._desired = np.zeros(N_FEATURES, dtype=np.float32)
        self._image: np.ndarray | None = None
        self._face_seen = True
        self._neutral_pending = False
        rate = p.control_rate_hz if control_rate_hz is None else _checked(
            "control_rate_hz", control_rate_hz, profiles.CONTROL_RATES_HZ, "Hz")
        if robot is not None and not isinstance(robot, Robot):  # refused before any twin
            robot = load_robot(robot, p, layout_of(p))
        with ExitStack() as undo:  # a part that fails to start leaves nothing running
            self.detector = FaceMeshDetector() if features == "camera" else None
            if self.detector is not None:
                undo.callback(self.detector.close)
            # The target model filters targets with a filter of its own: a target is the
            # filter's pure function of the profile, never the live filter's state.
            self.targets = TargetModel(p, SafetyFilter(p), self.size, features,
                                       self.detector)
            undo.callback(self.targets.close)
            self.backend = TwinBackend(p, self.size, 1.0 / rate,
                                       self.targets.neutral_landmarks, robot) \
                if backend == "twin" else \
                SerialBackend(p, port, camera, self.size, calibration, journal, rate)
            undo.callback(self.backend.close)
            self._seen: Seen | None = None
            if features == "camera":
                # Each face is measured against its own neutral, as in Emo: the robot's
                # as its camera sees it now that start-up has brought it there.
                seen = self.detector(self.backend.observe().image) \
                    if backend == "serial" else None
                self._own_neutral = seen if seen is not None else self.targets.perceived_neutral
                self._landmarks = self._own_neutral.copy()
            undo.pop_all()

    # -- targets -----------------------------------------------------------------------
    def features_of(self, controls) -> np.ndarray:
        """Expression features of ``controls`` after the safety filter, as the nominal twin
        shows them (cached; the live face is not touched)."""
        return self.targets.of_controls(controls)

    def human_features_of(self, image: np.ndarray, neutral: np.ndarray | None = None,
                          gain: float = 1.0) -> np.ndarray:
        """Expression features of the person in ``image`` (RGB), relative to ``neutral``
        (the same person at rest; the robot's neutral when not given), limited to what
        this face can reach (cached)."""
        return self.targets.of_picture(image, neutral, gain)

    def perceived_reach(self) -> tuple[np.ndarray, np.ndarray]:
        """How far each landmark can move from neutral on this face (camera-plane mm)."""
        return self.targets.reach()

    def neutral_face(self) -> dict[str, np.ndarray | None]:
        """The nominal face at rest through the profile's camera: its ground-truth
        landmark pixels, and (with ``features="camera"``) what MediaPipe finds on it."""
        return {"landmarks": self.targets.neutral_pixels,
                "mediapipe": self.targets.perceived_neutral}

    def compute_reward(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        return -distance(achieved_goal, desired_goal)

    # -- time --------------------------------------------------------------------------
    @property
    def settle_periods(self) -> int:
        """The most control periods a settled step can take (a ramp, then the face
        coming to rest): a bound for stepping period by period until ``info["still"]``."""
        return self.backend.settle_periods()

    @single_threaded()
    def act(self, action, mode: str | None = None) -> Stepped:
        """Move the face without looking at it (``mode`` defaults to the env's
        ``step_mode``): for loops that act more often than they look, like mimicry
        pacing a video. What was applied and why is in the result."""
        mode = self.step_mode if mode is None else mode
        if mode not in STEP_MODES:
            raise ValueError(f"mode must be one of {STEP_MODES}, got {mode!r}")
        return self.backend.step(action, mode)

    # -- Gymnasium API -----------------------------------------------------------------
    @single_threaded()
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        target = options.pop("target", None)
        target_neutral = options.pop("target_neutral", None)
        start = options.pop("controls", None)
        randomization = options.pop("randomization", self.randomization)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; "
                             "known: target, target_neutral, controls, randomization")
        if not isinstance(randomization, Randomization):
            raise ValueError("reset option 'randomization' must be a Randomization, got "
                             f"{type(randomization).__name__}")
        library = self.expressions
        drawn = target is None
        if drawn:  # after the backend's draws, so that a seed is one robot whatever the target
            self.backend.reset(start, self.np_random, randomization)
            names = sorted(library)
            target = names[int(self.np_random.integers(len(names)))]
        if isinstance(target, str):
            if target not in library:
                raise ValueError(f"profile {self.profile.name!r} has no expression "
                                 f"{target!r}; library: {', '.join(sorted(library))}")
            self.target_name, self._desired = target, self.features_of(library[target])
        elif np.ndim(target) >= 2:  # a control vector is flat; anything else is a picture
            self.target_name = "picture"
            self._desired = self.human_features_of(target, target_neutral)
        else:
            self.target_name = None
            self._desired = self.features_of(np.asarray(target, dtype=float))
        if not drawn:
            self.backend.reset(start, self.np_random, randomization)
        # A twin starting at rest is measured from its own neutral as its camera sees it
        # (a perturbed or identified twin's differs from the nominal one's), as a robot is.
        self._neutral_pending = self.features == "camera" and \
            self.backend_name == "twin" and start is None
        obs = self.observe()
        return obs, self._info(obs, settle_s=0.0)

    @single_threaded()
    def step(self, action):
        stepped = self.backend.step(action, self.step_mode)
        obs = self.observe()
        info = self._info(obs, stepped.settle_s)
        info["applied"] = stepped.applied.astype(np.float32)
        info["safety"] = stepped.report.as_dict()
        info["still"] = stepped.still
        return obs, sum(info["reward_terms"].values()), False, False, info

    @single_threaded()
    def observe(self) -> dict[str, np.ndarray]:
        """Look at the face as it is now, without commanding it."""
        self._seen = seen = self.backend.observe()
        self._image = seen.image
        if self.features == "ground_truth":
            landmarks, achieved = seen.landmarks, seen.features
        else:
            found = self.detector(self._image)
            self._face_seen = found is not None
            if found is not None:
                self._landmarks = found
                if self._neutral_pending:
                    self._own_neutral, self._neutral_pending = found, False
            landmarks = self._landmarks
            achieved = perceived_features(landmarks, self._own_neutral, seen.camera)
        return {
            "image": self._image,
            "landmarks": np.clip(landmarks, -self.size, 2 * self.size).astype(np.float32),
            "controls": seen.controls.astype(np.float32),
            "achieved_goal": np.clip(achieved, -FEATURE_BOUND, FEATURE_BOUND),
            "desired_goal": self._desired.copy(),
        }

    def _info(self, obs, settle_s: float) -> dict:
        info = {
            "target": self.target_name,
            "reward_terms": {k: float(v) for k, v in
                             reward_terms(obs["achieved_goal"], obs["desired_goal"]).items()},
            "settle_s": settle_s,
        }
        seen = self._seen
        if seen.sim_time is not None:  # the ground truth of a twin
            info["sim_time"] = seen.sim_time
            info["strain_max"] = seen.strain_max
            info["head_pose"] = seen.head_pose.astype(np.float32)
        if self.features == "camera":
            info["face_detected"] = self._face_seen
        return info

    def render(self):
        if self.render_mode == "depth_array":
            return self.backend.depth()
        if self.render_mode == "rgb_array":
            return self._image if self._image is not None else self.backend.observe().image
        return None

    def close(self):
        self.backend.close()
        self.targets.close()
        if self.detector is not None:
            self.detector.close()


def _checked(name: str, value, within: tuple[float, float], unit: str, integer: bool = False):
    """A keyword argument inside its range, or a ValueError naming it."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or \
            not within[0] <= value <= within[1]:
        whole = "a whole number " if integer else ""
        raise ValueError(f"{name} must be {whole}from {within[0]:g} to {within[1]:g} {unit}, "
                         f"got {value!r}")
    return int(value) if integer else float(value)
