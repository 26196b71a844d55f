"""The twin of a robot as a function of a few dozen numbers: what the fit varies.

:class:`Parameters` lays the identifiable part of a :class:`~facetwin.sim.robot.Robot`
out as one vector, zero on the nominal twin, with the prior each block gets (the size
``Randomization.realistic()`` says copies of a face differ by). :class:`TwinModel`
settles its own twin at poses for any such vector and projects the landmarks through
the vector's camera; :meth:`TwinModel.jacobian` differences it, block by block, only
where a block can act:

- a servo's zero offset at every pose (its travel then follows exactly: the offset's
  column times how far the pose has the control from neutral);
- a symmetric control's left-to-right travel from that column, split by face side;
- grip points and the skin's rest shape once, at rest (they shift the face about the
  same at every pose), then through each pose's projection;
- the skin's membrane and tether stiffness at every pose (they only show under pull);
- the camera's pose by projection alone: it moves no skin.

What a camera cannot tell apart is not made a parameter: a single linkage's travel from
its servo's (both scale the same displacement; the servo's travel holds both), a
servo's gain and backlash (a position servo settles at its goal whatever its gain).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import mujoco
import numpy as np

from facetwin.agents.engine import Engine, Job, load_profile, profile_ref
from facetwin.envs.settled import settle_model
from facetwin.profile import Profile
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.randomization import Randomization
from facetwin.sim.robot import Robot
from facetwin.sim.render import FaceRenderer
from facetwin.sim.twin import Twin
from facetwin.threads import single_threaded

EXTRA_SETTLE_STEPS = 30  # a little past the twin's settling test, for differences
BASIS_WIDTH_M = 0.02  # the rest-shape field's bumps, as broad as a moulded skin's differ
SIDE_WIDTH_M = 0.004  # how sharply the face's two halves part at its midline

BLOCKS = ("servo_offset", "servo_travel", "mirror_travel", "linkage_anchor", "skin_rest",
          "skin_thickness", "tether_stiffness", "camera_offset", "camera_tilt")
CAMERA_BLOCKS = ("camera_offset", "camera_tilt")  # they move no skin
POSE_BLOCKS = ("servo_offset", "servo_travel", "mirror_travel", "skin_thickness",
               "tether_stiffness")  # differenced at every pose (pose_columns)


@dataclass(frozen=True)
class Block:
    name: str
    size: int
    prior: float  # standard deviation, in the block's units
    unit: str


class Parameters:
    """The parameter vector of one profile's twin (see the module's docstring).

    Args:
        twin: the profile's twin (its layout and rest shape).
        basis_size: bumps in the skin's rest-shape field (three directions each).
    """

    def __init__(self, twin: Twin, basis_size: int = 12):
        p, r = twin.profile, Randomization.realistic()
        self.profile, self.layout = p, twin.layout
        self.width = (p.high - p.low).astype(float)
        joints = twin.built.joints
        n = len(p.controls)
        has_slide = np.zeros(n, dtype=bool)
        for j in joints:
            has_slide[j.control] |= j.kind == "slide"
        slides = [(j.control, self.layout.joints.index(j.name), j.name.endswith("_mirror"))
                  for j in joints if j.kind == "slide"]
        self.mirrors = [(i, j) for i, j, mirror in slides if mirror]
        self.primaries = {i: j for i, j, mirror in slides if not mirror}
        self.slides = [self.layout.joints.index(s) for s in self.layout.slides]
        free = twin.face.vertices[list(self.layout.free_vertices)]
        self.centres = _spread(free, basis_size)
        self.basis = np.exp(-((free[:, None] - free[self.centres][None]) ** 2).sum(-1)
                            / (2 * BASIS_WIDTH_M ** 2))  # (free vertices, bumps), peak 1
        # The prior: realistic()'s uniform draws as Gaussians of the same spread (a
        # half-width over the square root of three).
        spread = 1 / np.sqrt(3)
        travel_prior = spread * np.where(has_slide, r.linkage_travel[1] - 1,
                                         r.servo_travel[1] - 1)
        self.blocks = [
            Block("servo_offset", n, spread * r.servo_offset, "share of range"),
            Block("servo_travel", n, 0.0, "scale - 1"),
            Block("mirror_travel", len(self.mirrors), spread * (r.linkage_travel[1] - 1),
                  "scale - 1"),
            Block("linkage_anchor", 3 * len(self.slides), spread * r.linkage_anchor_mm, "mm"),
            Block("skin_rest", 3 * basis_size, spread * r.skin_rest_mm, "mm"),
            Block("skin_thickness", 1, spread * np.log(r.skin_thickness[1]), "log scale"),
            Block("tether_stiffness", 1, spread * np.log(r.tether_stiffness[1]), "log scale"),
            Block("camera_offset", 3, spread * r.camera_offset_m * 1e3, "mm"),
            Block("camera_tilt", 3, spread * r.camera_tilt_deg, "deg"),
        ]
        assert tuple(b.name for b in self.blocks) == BLOCKS
        self.prior = np.concatenate([np.full(b.size, b.prior) for b in self.blocks])
        self.prior[self.slice("servo_travel")] = travel_prior

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)

    def slice(self, name: str) -> slice:
        start = 0
        for b in self.blocks:
            if b.name == name:
                return slice(start, start + b.size)
            start += b.size
        raise KeyError(name)

    def robot(self, theta: np.ndarray) -> Robot:
        """The robot of parameter vector ``theta``."""
        g = lambda name: np.asarray(theta[self.slice(name)], dtype=float)  # noqa: E731
        robot = Robot.nominal(self.layout)
        travel = robot.linkage_travel.copy()
        for (_, joint), t in zip(self.mirrors, g("mirror_travel")):
            travel[joint] = 1.0 + t
        rest = self.basis @ g("skin_rest").reshape(-1, 3) * 1e-3
        return replace(
            robot, servo_offset=g("servo_offset") * self.width,
            servo_travel=1.0 + g("servo_travel"), linkage_travel=travel,
            linkage_anchor_m=g("linkage_anchor").reshape(-1, 3) * 1e-3, skin_rest_m=rest,
            skin_thickness=float(np.exp(g("skin_thickness")[0])),
            tether_stiffness=float(np.exp(g("tether_stiffness")[0])),
            camera_offset_m=g("camera_offset") * 1e-3, camera_tilt_deg=g("camera_tilt"))

    def truth(self, robot: Robot) -> dict[str, np.ndarray]:
        """What a robot's parameters are in this vector's terms, where they can be: the
        calibration, with each slider's travel folded into its servo's, and grip points
        (for comparing an identification with a hidden robot)."""
        effective = robot.servo_travel.copy()
        for i, j in self.primaries.items():
            effective[i] *= robot.linkage_travel[j]
        return {"servo_offset": robot.servo_offset / self.width,
                "servo_travel": effective - 1.0,
                "linkage_anchor": robot.linkage_anchor_m.ravel() * 1e3}


def _spread(points: np.ndarray, k: int) -> np.ndarray:
    """``k`` of ``points`` spread over them (farthest-point sampling from the first)."""
    chosen = [0]
    d = np.linalg.norm(points - points[0], axis=1)
    for _ in range(k - 1):
        chosen.append(int(d.argmax()))
        d = np.minimum(d, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(chosen)


class TwinModel:
    """A twin settled at poses for any parameter vector, seen through its camera.

    Args:
        profile: the face.
        image_size: the robot camera's image size (pixels, square).
    """

    def __init__(self, profile: Profile, image_size: int, basis_size: int = 12):
        self.profile, self.size = profile, image_size
        self._twin = Twin(profile)
        self._settle_model = settle_model(profile, self._twin.face)
        self.layout = self._twin.layout
        self.params = Parameters(self._twin, basis_size)
        self._twin.reset()
        # The rests of one physical robot, by pose: a fit's steps that move only the
        # camera see the same faces, which settle the same every time.
        self._rests: dict[bytes, np.ndarray] = {}
        self._rests_of = b""
        rest = self._twin.landmarks_3d()
        self._side = {}  # per mirrored slide: each landmark's share on its side
        for _, joint in self.params.mirrors:
            x = self._twin.built_pivot(self.layout.joints[joint])[0]
            self._side[joint] = 1 / (1 + np.exp(-np.sign(x) * rest[:, 0] / SIDE_WIDTH_M))

    def camera(self, theta: np.ndarray) -> PinholeCamera:
        robot = self.params.robot(theta)
        return PinholeCamera.from_profile(self.profile.camera, self.size,
                                          robot.camera_offset_m, robot.camera_tilt_deg)

    def renderer(self, theta: np.ndarray) -> FaceRenderer:
        """A renderer of this model's twin through ``theta``'s camera (close it)."""
        return FaceRenderer(self._twin, self.camera(theta))

    def hidden(self, randomization: Randomization, seed: int) -> Robot:
        """The robot ``FaceTwinEnv(randomization=...).reset(seed=seed)`` draws (for
        scoring an identification against the truth it never saw)."""
        from facetwin.envs.twin_backend import draw_robot

        return draw_robot(self._twin, randomization, np.random.default_rng(seed))[0]

    def settled(self, theta: np.ndarray, controls: np.ndarray, quick: bool = False
                ) -> np.ndarray:
        """The twin of ``theta``'s 3D landmarks (metres), settled at ``controls``: from
        rest at neutral, or ``quick``, the way a settled env step comes to rest (the same
        shape within the settle rule's tolerance, about twice as fast: good enough for
        the Jacobian's differences; the residuals, which decide the fit, take the
        slower way, closer to where a robot's transient takes its face)."""
        twin = self._twin
        physical = np.array(theta, dtype=float)
        for name in CAMERA_BLOCKS:
            physical[self.params.slice(name)] = 0.0
        robot = physical.tobytes() + bytes([quick])
        if robot != self._rests_of:
            self._rests, self._rests_of = {}, robot
        pose = np.asarray(controls, dtype=float).tobytes()
        if pose in self._rests:
            twin.data.qpos[:] = self._rests[pose]
            twin.data.qvel[:] = 0.0
            mujoco.mj_forward(twin.model, twin.data)
            return twin.landmarks_3d()
        if quick:
            twin.reset(robot=self.params.robot(theta))
            twin.rest_at(controls, self._settle_model, strict=False)
        else:
            twin.reset(controls=controls, robot=self.params.robot(theta), strict=False)
        twin.step(EXTRA_SETTLE_STEPS)
        self._rests[pose] = twin.data.qpos.copy()
        return twin.landmarks_3d()

    def shapes(self, theta: np.ndarray, poses: np.ndarray, quick: bool = False) -> np.ndarray:
        """(poses, landmarks, 3) metres."""
        return np.stack([self.settled(theta, c, quick) for c in poses])

    def pixels(self, theta: np.ndarray, shapes: np.ndarray) -> np.ndarray:
        """``shapes`` through ``theta``'s camera: (poses, landmarks, 2) pixels."""
        cam = self.camera(theta)
        return np.stack([cam.project(x) for x in shapes])

    def jacobian(self, poses: np.ndarray, progress=None, blocks=BLOCKS,
                 workers: int = 1) -> np.ndarray:
        """d pixels / d theta at the nominal twin, (poses, landmarks, 2, parameters),
        block by block as the module's docstring says (only ``blocks``; the other
        columns are left zero); the per-pose blocks in ``workers`` processes."""
        P = self.params
        theta0 = np.zeros(P.size)
        base = self.shapes(theta0, poses, quick=True)
        cam0 = self.camera(theta0)
        if set(POSE_BLOCKS) & set(blocks):
            J = np.stack(self._map_poses(poses, blocks, workers, progress)).astype(np.float32)
        else:  # nothing to difference pose by pose: no workers to start
            J = np.zeros((*base.shape[:2], 2, P.size), dtype=np.float32)
            if progress is not None:
                progress(len(poses))
        neutral = self.profile.neutral.astype(float)
        # Grip points and rest shape: a 3D shift at rest, carried to each pose.
        rest0 = self.settled(theta0, neutral, quick=True)
        for name, h in (("linkage_anchor", 0.5), ("skin_rest", 0.5)):
            if name not in blocks:
                continue
            s = P.slice(name)
            for index in range(s.start, s.stop):
                shift = (self.settled(_nudged(P.size, index, h), neutral, True) - rest0) / h
                for k in range(len(poses)):
                    J[k, :, :, index] = (cam0.project(base[k] + 1e-3 * shift)
                                         - cam0.project(base[k])) / 1e-3
        for name, h in (("camera_offset", 0.5), ("camera_tilt", 0.1)):
            if name not in blocks:
                continue
            s = P.slice(name)
            for index in range(s.start, s.stop):
                cam = self.camera(_nudged(P.size, index, h))
                for k in range(len(poses)):
                    J[k, :, :, index] = (cam.project(base[k]) - cam0.project(base[k])) / h
        return J

    def pose_columns(self, pose: np.ndarray, blocks=BLOCKS) -> np.ndarray:
        """The Jacobian's columns that need the twin settled at ``pose`` itself:
        servo calibration and skin stiffness (landmarks, 2, parameters)."""
        P, n = self.params, len(self.profile.controls)
        theta0 = np.zeros(P.size)
        cam0 = self.camera(theta0)
        px = cam0.project(self.settled(theta0, pose, quick=True))
        J = np.zeros((len(px), 2, P.size))

        def column(index: int, h: float, central: bool) -> np.ndarray:
            x_up = self.settled(_nudged(P.size, index, h), pose, quick=True)
            if not central:
                return (cam0.project(x_up) - px) / h
            x_down = self.settled(_nudged(P.size, index, -h), pose, quick=True)
            return (cam0.project(x_up) - cam0.project(x_down)) / (2 * h)

        offsets, travels = P.slice("servo_offset"), P.slice("servo_travel")
        neutral = self.profile.neutral.astype(float)
        if {"servo_offset", "servo_travel", "mirror_travel"} & set(blocks):
            for i in range(n):
                # Central at neutral, where a control's slope changes (its two ends map
                # to twin targets apart).
                col = column(offsets.start + i, 0.01, central=pose[i] == neutral[i])
                J[:, :, offsets.start + i] = col
                J[:, :, travels.start + i] = col * (pose[i] - neutral[i]) / P.width[i]
            for m, (i, joint) in enumerate(P.mirrors):
                J[:, :, P.slice("mirror_travel").start + m] = \
                    J[:, :, travels.start + i] * self._side[joint][:, None]
        for name in ("skin_thickness", "tether_stiffness"):
            if name in blocks:
                J[:, :, P.slice(name).start] = column(P.slice(name).start, 0.1, False)
        return J

    def _map_poses(self, poses, blocks, workers: int, progress) -> list[np.ndarray]:
        """Each pose's columns: here, or on the engine's workers (each its own nominal
        twin)."""
        if workers <= 1:
            out = []
            for pose in poses:
                out.append(self.pose_columns(pose, blocks))
                if progress is not None:
                    progress(1)
            return out
        made: dict[int, np.ndarray] = {}
        job = Job(_ColumnMaker, (profile_ref(self.profile), self.size,
                                 self.params.basis.shape[1]),
                  take=lambda i, columns: made.__setitem__(i, columns) or 1,
                  finish=lambda i: None, payload=lambda i: (poses[i], tuple(blocks)),
                  name=lambda i: f"the Jacobian at pose {i}")
        outcome = Engine(workers).run(job, range(len(poses)), _Progress(progress))
        if outcome.failed:
            raise RuntimeError(f"the Jacobian could not be taken: {outcome.describe(job)}")
        return [made[i] for i in range(len(poses))]


class _Progress:
    """A progress function as the engine's bar."""

    def __init__(self, progress):
        self.progress = progress

    def update(self, n: int) -> None:
        if self.progress is not None:
            self.progress(n)

    def set_postfix(self, **_) -> None:
        pass


class _ColumnMaker:
    """A worker's nominal twin, taking one pose's Jacobian columns at a time."""

    def __init__(self, profile: tuple[str, str], size: int, basis_size: int):
        self.model = TwinModel(load_profile(profile), size, basis_size)

    def run(self, payload):
        pose, blocks = payload
        with single_threaded():
            yield self.model.pose_columns(pose, blocks)


def _nudged(size: int, index: int, h: float) -> np.ndarray:
    """The nominal parameter vector with parameter ``index`` at ``h``."""
    theta = np.zeros(size)
    theta[index] = h
    return theta
