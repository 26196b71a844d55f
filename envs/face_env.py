"""``facetwin/FaceTwin-v0``: a robot face behind the Gymnasium API.

    env = gym.make("facetwin/FaceTwin-v0", profile="x2c30")
    obs, info = env.reset(seed=0, options={"target": "happiness"})
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Actions are the profile's controls in control units. Every action passes the profile's
safety filter (:mod:`facetwin.envs.safety`) before it reaches the backend, and
``info["safety"]`` says what was applied and why. ``step_mode="period"`` applies one
control period of the filtered command; ``step_mode="settle"`` (the default) keeps
sending it, period by period at the profile's speeds, until it is reached and the face
is still.

Backends: ``backend="twin"`` (the MuJoCo face) or ``backend="serial"`` with
``port=`` (a Feetech bus, or the virtual bus standing in for it) and ``camera=`` (a
webcam, a video file, or the frame file of the virtual bus's twin camera). Both have
the same action and observation spaces.

Targets (``reset(options={"target": ...})``): a name from the profile's expression
library (extended by ``library=``, a file written by ``facetwin optimize``), a control
vector, or a picture of a person (an RGB array; ``"target_neutral"`` may give the same
person at rest), mapped onto the robot's face by ``human_features``.

``features="ground_truth"`` (the twin's default) measures the twin's own landmarks;
``features="camera"`` (the serial backend's only choice, and what picture targets
need) measures landmarks MediaPipe finds on the camera image, as in-plane
displacements from the face's own neutral (see ``perceived_features``); control
targets are then seen the same way on a nominal twin render.

Expression features (``achieved_goal`` / ``desired_goal``) are the 478 landmarks in the
head's frame, in millimetres relative to the neutral face, followed by the head's
rotation vector in degrees. The reward is minus the expression distance: the mean
landmark distance in millimetres plus ``HEAD_WEIGHT_MM_PER_DEG`` times the head
rotation error, each term reported in ``info["reward_terms"]``.
"""

from __future__ import annotations

import hashlib

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from scipy.spatial.transform import Rotation

from facetwin import profile as profiles
from facetwin.envs.backends import SerialBackend, TwinBackend
from facetwin.envs.perception import FaceMeshDetector, human_features, perceived_features
from facetwin.envs.safety import SafetyFilter
from facetwin.library import load_library
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.face import N_LANDMARKS
from facetwin.sim.randomization import Randomization
from facetwin.sim.render import FaceRenderer, Look
from facetwin.sim.twin import Twin

HEAD_WEIGHT_MM_PER_DEG = 0.1
FEATURE_BOUND = 1000.0  # mm and degrees: far beyond any face's reach
BACKENDS = ("twin", "serial")
FEATURES = ("ground_truth", "camera")


def expression_distance(achieved: np.ndarray, desired: np.ndarray) -> dict[str, np.ndarray]:
    """Terms of the distance between expression feature vectors (any leading shape)."""
    a, d = np.asarray(achieved, dtype=float), np.asarray(desired, dtype=float)
    n = N_LANDMARKS * 3
    diff = (a[..., :n] - d[..., :n]).reshape(*a.shape[:-1], N_LANDMARKS, 3)
    landmark_mm = np.linalg.norm(diff, axis=-1).mean(axis=-1)
    head_deg = np.linalg.norm(a[..., n:] - d[..., n:], axis=-1)
    return {"landmark_mm": landmark_mm, "head_deg": head_deg}


class FaceTwinEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 25}

    def __init__(self, profile: str | profiles.Profile = "x2c30", backend: str = "twin",
                 image_size: int | None = None, render_mode: str | None = None,
                 step_mode: str = "settle", randomization: Randomization | None = None,
                 control_rate_hz: float | None = None, port: str | None = None,
                 camera: str | None = None, calibration=None, journal=None,
                 features: str | None = None, library=None):
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
        if step_mode not in ("settle", "period"):
            raise ValueError(f"step_mode must be 'settle' or 'period', got {step_mode!r}")
        self.profile = profile if isinstance(profile, profiles.Profile) else \
            profiles.load(profile)
        self.render_mode, self.step_mode = render_mode, step_mode
        self.randomization = randomization or Randomization()
        self.size = int(image_size or self.profile.camera.size)
        self.twin = Twin(self.profile)
        self.camera = PinholeCamera.from_profile(self.profile.camera, self.size)
        self.renderer = FaceRenderer(self.twin, self.camera)
        self.safety = SafetyFilter(self.profile)
        self.expressions = dict(self.profile.expressions)
        if library is not None:
            self.expressions.update(load_library(library, self.profile))

        p = self.profile
        self.action_space = spaces.Box(p.low, p.high, dtype=np.float32)
        n_feat = N_LANDMARKS * 3 + 3
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (self.size, self.size, 3), dtype=np.uint8),
            "landmarks": spaces.Box(-self.size, 2 * self.size, (N_LANDMARKS, 2),
                                    dtype=np.float32),
            "controls": spaces.Box(p.low, p.high, dtype=np.float32),
            "achieved_goal": spaces.Box(-FEATURE_BOUND, FEATURE_BOUND, (n_feat,), np.float32),
            "desired_goal": spaces.Box(-FEATURE_BOUND, FEATURE_BOUND, (n_feat,), np.float32),
        })
        rate = control_rate_hz or p.control_rate_hz
        self.period_s = 1.0 / rate
        self._period_steps = max(1, round(self.period_s / self.twin.model.opt.timestep))
        self._neutral_landmarks = self._settled_landmarks(p.neutral)
        self._target_cache: dict[bytes, np.ndarray] = {}
        self._image: np.ndarray | None = None
        self.target_name: str | None = None
        self._desired = np.zeros(n_feat, dtype=np.float32)
        self.backend_name, self.features = backend, features
        self._face_seen = True
        self._reach = None
        if features == "camera":
            self.detector = FaceMeshDetector(static_image_mode=True)
            self._perceived_neutral = self._seen_on_twin(p.neutral)
            self._landmarks = self._own_neutral = self._perceived_neutral.copy()
        if backend == "twin":
            self.backend = TwinBackend(self.twin, self.renderer, self._period_steps)
            return
        if port is None or camera is None:
            raise ValueError("backend='serial' needs port= (the servo bus) and camera= "
                             "(a webcam, a video file, or the virtual bus's frame file)")
        self.backend = SerialBackend(p, port, camera, self.size, calibration, journal)
        # The face's own neutral, seen now that start-up has brought it there; targets
        # stay relative to the twin's neutral (each face relative to its own, as in Emo).
        seen = self.detector(self.backend.image())
        if seen is not None:
            self._own_neutral = seen

    # -- features ----------------------------------------------------------------------
    def _head_frame_landmarks(self) -> np.ndarray:
        pos, rot = self.twin.head_pose()
        return (self.twin.landmarks_3d() - pos) @ rot

    def _settled_landmarks(self, controls: np.ndarray) -> np.ndarray:
        self.twin.reset(controls=controls)
        return self._head_frame_landmarks()

    def _features(self) -> np.ndarray:
        _, rot = self.twin.head_pose()
        mm = (self._head_frame_landmarks() - self._neutral_landmarks) * 1e3
        head = Rotation.from_matrix(rot).as_rotvec(degrees=True)
        return np.concatenate([mm.ravel(), head]).astype(np.float32)

    def features_of(self, controls) -> np.ndarray:
        """Expression features of ``controls`` after the safety filter, as the nominal twin
        shows them (cached)."""
        controls, _ = self.safety.target(controls)
        key = controls.tobytes()
        if key not in self._target_cache:
            if self.features == "ground_truth":
                self.twin.reset(controls=controls)
                self._target_cache[key] = self._features()
            else:
                self._target_cache[key] = perceived_features(
                    self._seen_on_twin(controls), self._perceived_neutral, self.camera)
        return self._target_cache[key]

    def human_features_of(self, image: np.ndarray, neutral: np.ndarray | None = None,
                          gain: float = 1.0) -> np.ndarray:
        """Expression features of the person in ``image`` (RGB), relative to ``neutral``
        (the same person at rest; the robot's neutral when not given), limited to what
        this face can reach (cached)."""
        if self.features != "camera":
            raise ValueError("a picture target is seen through the camera: make the env "
                             "with features='camera'")
        images = [image] + ([] if neutral is None else [neutral])
        digest = hashlib.sha256(repr(gain).encode())
        for i in images:
            digest.update(np.ascontiguousarray(i).tobytes())
        key = digest.digest()
        if key not in self._target_cache:
            found = [self.detector(_rgb(i)) for i in images]
            if any(f is None for f in found):
                which = "target" if found[0] is None else "target_neutral"
                raise ValueError(f"MediaPipe found no face in the {which} picture")
            human_neutral = found[1] if neutral is not None else self._perceived_neutral
            self._target_cache[key] = human_features(
                found[0], human_neutral, self._perceived_neutral, self.camera,
                self.perceived_reach(), gain)
        return self._target_cache[key]

    def perceived_reach(self) -> tuple[np.ndarray, np.ndarray]:
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
                        moves.append(self.features_of(v)[:N_LANDMARKS * 3]
                                     .reshape(N_LANDMARKS, 3)[:, :2])
            per_control = np.stack(moves)
            self._reach = (np.minimum(per_control, 0).sum(axis=0),
                           np.maximum(per_control, 0).sum(axis=0))
        return self._reach

    def _seen_on_twin(self, controls) -> np.ndarray:
        """MediaPipe's landmarks on a nominal twin render of ``controls`` (ground truth
        where MediaPipe finds no face)."""
        self.twin.reset(controls=controls)
        seen = self.detector(self.renderer.render())
        return seen if seen is not None else self.camera.project(self.twin.landmarks_3d())

    def compute_reward(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        terms = expression_distance(achieved_goal, desired_goal)
        return -(terms["landmark_mm"] + HEAD_WEIGHT_MM_PER_DEG * terms["head_deg"])

    # -- Gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        target = options.pop("target", None)
        target_neutral = options.pop("target_neutral", None)
        start = options.pop("controls", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; "
                             "known: target, target_neutral, controls")
        library = self.expressions
        if target is None:
            names = sorted(library)
            target = names[int(self.np_random.integers(len(names)))]
        if isinstance(target, str):
            if target not in library:
                raise ValueError(f"profile {self.profile.name!r} has no expression "
                                 f"{target!r}; library: {', '.join(sorted(library))}")
            self.target_name = target
            self._desired = self.features_of(library[target])
        elif np.ndim(target) == 3:
            self.target_name = "picture"
            self._desired = self.human_features_of(target, target_neutral)
        else:
            self.target_name = None
            self._desired = self.features_of(np.asarray(target, dtype=float))

        r = self.randomization
        if start is not None:
            start, _ = self.safety.target(start)
        if self.backend_name == "twin":
            offset, tilt = r.camera(self.np_random)
            self.camera = PinholeCamera.from_profile(self.profile.camera, self.size, offset,
                                                     tilt)
            self.renderer.set_camera(self.camera)
            self.renderer.set_look(Look.sample(r, self.np_random))
        self.backend.reset(start, self.np_random, r)
        self.safety.reset(self.backend.last_applied)
        obs = self.observe()
        return obs, self._info(obs, settle_steps=0)

    def step(self, action):
        # The hardware backend's watchdog may have moved the face since the last step.
        self.safety.last = self.backend.last_applied
        if self.step_mode == "period":
            applied, report = self.safety(action, self.period_s)
            self.backend.command(applied)
            steps = self.backend.advance()
        else:
            steps = 0
            while True:
                applied, report = self.safety(action, self.period_s)
                self.backend.command(applied)
                if report.rate_fraction >= 1.0 and not report.yielding:
                    break
                steps += self.backend.advance()
            steps += self.backend.settle()
        obs = self.observe()
        info = self._info(obs, settle_steps=steps)
        info["applied"] = applied.astype(np.float32)
        info["safety"] = report.as_dict()
        return obs, sum(info["reward_terms"].values()), False, False, info

    def observe(self) -> dict[str, np.ndarray]:
        """Look at the face as it is now, without commanding it."""
        self._image = self.backend.image()
        if self.features == "ground_truth":
            landmarks = self.camera.project(self.twin.landmarks_3d())
            achieved = self._features()
        else:
            seen = self.detector(self._image)
            self._face_seen = seen is not None
            if seen is not None:
                self._landmarks = seen
            landmarks = self._landmarks
            achieved = perceived_features(landmarks, self._own_neutral, self.camera)
        return {
            "image": self._image,
            "landmarks": np.clip(landmarks, -self.size, 2 * self.size).astype(np.float32),
            "controls": self.backend.present().astype(np.float32),
            "achieved_goal": np.clip(achieved, -FEATURE_BOUND, FEATURE_BOUND),
            "desired_goal": self._desired.copy(),
        }

    def _info(self, obs, settle_steps: int) -> dict:
        terms = expression_distance(obs["achieved_goal"], obs["desired_goal"])
        info = {
            "target": self.target_name,
            "reward_terms": {"landmark_mm": -float(terms["landmark_mm"]),
                             "head": -HEAD_WEIGHT_MM_PER_DEG * float(terms["head_deg"])},
            "settle_steps": settle_steps,
        }
        if self.backend_name == "twin":
            info["sim_time"] = self.twin.time
            info["strain_max"] = float(self.twin.strain().max())
        if self.features == "camera":
            info["face_detected"] = self._face_seen
        return info

    def render(self):
        if self.render_mode == "depth_array":
            return self.renderer.render(depth=True)[1]
        if self.render_mode == "rgb_array":
            return self._image if self._image is not None else self.renderer.render()
        return None

    def close(self):
        self.backend.close()
        if self.features == "camera":
            self.detector.close()
        self.renderer.close()


def _rgb(image) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
        raise ValueError(f"a picture target must be an RGB uint8 array (H, W, 3), got "
                         f"{a.dtype} {a.shape}")
    return np.ascontiguousarray(a[..., :3])
