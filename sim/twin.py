"""The twin: a profile's face as MuJoCo physics, driven in control units.

    twin = Twin(profile.load("x2c30"))
    twin.command(profile.expressions["happiness"])
    twin.settle()
    twin.landmarks_3d()   # (N_LANDMARKS, 3) metres, world frame

Commands go through the servo model (:mod:`.servos`: a speed-limited ramp, backlash, a
calibration's error) to the physics, which steps at 1 kHz; a perturbed twin's draws are
applied by :mod:`.perturbation`.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import mujoco
import numpy as np

from facetwin.errors import FaceTwinError
from facetwin.profile import MAX_SETTLE_S, Profile
from facetwin.landmarks import IRIS_START, N_LANDMARKS, N_SKIN
from facetwin.sim.equilibrium import SettleModel
from facetwin.sim.face import FaceAsset, load_face
from facetwin.sim.mjcf import MODIOLUS_JAW_SHARE, SkinParams, build, critically_damp_servos
from facetwin.sim.perturbation import Perturbation
from facetwin.sim.randomization import Randomization
from facetwin.sim.robot import Layout, Robot
from facetwin.sim.servos import Servos

SETTLE_SPEED = 0.005  # m/s: no landmark faster for SETTLE_STEPS steps, the face has settled
SETTLE_STEPS = 3


# MuJoCo warns, at every compile, that the skin flex "is not rigid and has no equality
# constraints or passive forces": its check does not count the shell's stretch elasticity
# nor the tether springs that hold every skin vertex. That one message is dropped; any
# other MuJoCo warning is passed on as MuJoCo prints it.
_KNOWN_FLEX_WARNING = "flex 'skin' is not rigid and has no equality constraints or passive"
# What MuJoCo says (and does: it resets the data to the model's rest) when the explicit
# integration blows up; the twin reports it as Diverged instead, once.
_UNSTABLE = ("Nan, Inf or huge value in QACC", "Nan, Inf or huge value in QVEL",
             "Nan, Inf or huge value in QPOS")
_BAD_STATE = [int(w) for w in (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL,
                               mujoco.mjtWarning.mjWARN_BADQPOS)]


class Diverged(FaceTwinError, RuntimeError):
    """The twin's physics blew up (a robot stiffer or further from nominal than one
    millisecond's explicit step can hold); the twin was reset to rest."""


@contextmanager
def mujoco_warnings(dropped: tuple[str, ...]):
    """MuJoCo's warnings during the block: those starting with one of ``dropped`` are
    dropped, the others written to stderr; MuJoCo's own handler is back after."""
    previous = mujoco.get_mju_user_warning()

    def warn(message: str) -> None:
        if not message.startswith(dropped):
            sys.stderr.write(f"MuJoCo WARNING: {message}\n")

    mujoco.set_mju_user_warning(warn)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def compile_model(xml: str) -> mujoco.MjModel:
    """The MuJoCo model of ``xml``, without MuJoCo's known false warning about the skin."""
    with mujoco_warnings((_KNOWN_FLEX_WARNING,)):
        return mujoco.MjModel.from_xml_string(xml)


def layout_of(profile: Profile, face: FaceAsset | None = None) -> Layout:
    """What a robot's parameters are indexed by on ``profile``'s twin, from its model's
    description alone (a robot file is checked before any twin is built)."""
    return _layout(profile, build(profile, face or load_face(), SkinParams()))


def _layout(profile: Profile, built) -> Layout:
    joints = built.joints
    return Layout(controls=tuple(profile.names),
                  actuators=len(joints) + len(built.jaw_followers),
                  joints=tuple(j.name for j in joints),
                  slides=tuple(j.name for j in joints if j.kind == "slide"),
                  free_vertices=tuple(int(i) for i in built.free_vertices))


class Twin:
    """One profile's face as MuJoCo physics: a flex skin pulled by servo-driven linkages
    and rig joints, read back as landmarks, present controls and skin strain.

    Args:
        profile: the face.
        skin: the skin's material parameters.
        face: the face mesh (the shipped one by default).
    """

    def __init__(self, profile: Profile, skin: SkinParams = SkinParams(),
                 face: FaceAsset | None = None):
        self.profile = profile
        self.face = face or load_face()
        self.skin = skin
        self.built = build(profile, self.face, skin)
        self.model = compile_model(self.built.xml)
        critically_damp_servos(self.model)
        self.data = mujoco.MjData(self.model)
        m = self.model

        c = profile.controls
        self.servos = Servos(profile)
        joints = self.built.joints
        self._act_control = np.array([j.control for j in joints])
        self._act_scale = np.array([np.pi / 180 if j.kind == "hinge" else 1e-3 for j in joints])
        self._act_qpos = np.array([m.jnt_qposadr[m.joint(j.name).id] for j in joints])
        self._n_profile_act = len(joints)
        self._followers = np.array([m.actuator(f).id for f in self.built.jaw_followers],
                                   dtype=int)
        self._jaw_qpos = m.jnt_qposadr[m.joint("jaw_pitch").id] if self._followers.size else 0
        # The joint read back as each control's present position: its first actuator.
        first = {}
        for a, j in enumerate(joints):
            first.setdefault(j.control, a)
        self._present_act = np.array([first[i] for i in range(len(c))])

        self._eye_body = {s: m.body(f"eye_{s}").id for s in self.face.eyes}
        # The irises sit on the eyeballs: their speed is the eyes' angular speed times
        # the eyeball's radius (the skin's landmarks are the flex vertices themselves).
        self._eye_dofs = np.array([m.jnt_dofadr[j] for j in range(m.njnt)
                                   if m.joint(j).name.startswith("eye_")], dtype=int)
        self._eye_radius = max(e.radius for e in self.face.eyes.values())
        self._head_body = m.body("head").id
        self._head_pivot = self.built_pivot("head")
        self._skin_dofs = np.concatenate([
            np.arange(m.jnt_dofadr[m.joint(f"skin_{i}_x").id], 3 + m.jnt_dofadr[
                m.joint(f"skin_{i}_x").id]) for i in self.built.free_vertices])
        self._tissue_damping = np.repeat(skin.tissue_damping(self.built.tether,
                                                                 self.built.vertex_mass), 3)
        tri = self.face.triangles
        self._edges = np.stack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]], axis=1)
        rest = self.face.vertices
        self._rest_len = np.linalg.norm(rest[self._edges[..., 0]] - rest[self._edges[..., 1]],
                                        axis=2)

        self.layout = _layout(profile, self.built)
        self._perturbation = Perturbation(
            m, self.layout, slides=np.array([j.kind == "slide" for j in joints]),
            linkage_bodies=np.array([m.joint(j.name).bodyid[0] for j in joints
                                     if j.kind == "slide"]),
            skin_bodies=np.array([m.body(f"skin_{i}").id for i in self.built.free_vertices]),
            skin_joints=np.array([m.joint(f"skin_{i}_{a}").id
                                  for i in self.built.free_vertices for a in "xyz"]),
            skin_rest=self.face.vertices[self.built.free_vertices])
        self._act_travel = np.ones(len(joints))  # a perturbed linkage's travel scale
        self.reset()

    # -- state -------------------------------------------------------------------------
    @property
    def n_controls(self) -> int:
        return len(self.profile.controls)

    @property
    def time(self) -> float:
        return float(self.data.time)

    def draw(self, rng: np.random.Generator, randomization: Randomization) -> Robot:
        """A robot of ``randomization`` drawn from ``rng`` (its camera pose aside)."""
        return self._perturbation.draw(rng, randomization, self.servos)

    def reset(self, controls: np.ndarray | None = None, rng: np.random.Generator | None = None,
              randomization: Randomization | None = None, strict: bool = True,
              robot: Robot | None = None) -> None:
        """Rest pose at ``controls`` (neutral by default), as ``robot`` or, without one,
        as a fresh draw of ``randomization`` (the nominal twin when that is off)."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        if robot is None:
            robot = self.draw(rng or np.random.default_rng(0), randomization or Randomization())
        self.robot = robot
        self._act_travel = self._perturbation.apply(robot, self.servos)
        target = self.profile.neutral.astype(float) if controls is None else self.checked(controls)
        self.servos.reset(target)
        self._apply_ctrl()
        mujoco.mj_forward(m, d)
        self._skin_before = d.flexvert_xpos.copy()
        if controls is not None:
            # The servos step straight to their goals (no speed ramp); placing the joints
            # there directly would tear the skin around the jaw and head in one step.
            self.settle(strict=strict)

    def checked(self, controls) -> np.ndarray:
        """``controls`` clamped to their ranges; a command the profile refuses
        (:meth:`~facetwin.profile.Profile.checked`) raises CommandError."""
        return np.clip(self.profile.checked(controls), self.profile.low, self.profile.high)

    # -- driving -----------------------------------------------------------------------
    def command(self, controls) -> None:
        """Set the goal positions (control units); values are clamped to their ranges."""
        self.servos.goal = self.checked(controls)

    def _apply_ctrl(self) -> None:
        targets = self.profile.twin_targets(self.servos.linkage_controls())
        self.data.ctrl[:self._n_profile_act] = \
            targets[self._act_control] * self._act_scale * self._act_travel
        if self._followers.size:
            self.data.ctrl[self._followers] = MODIOLUS_JAW_SHARE * self.data.qpos[self._jaw_qpos]

    def step(self, n: int = 1) -> None:
        """Advance the physics ``n`` steps, ramping the servos toward their goals; raises
        :class:`Diverged` (the twin reset to rest) where the physics blew up."""
        with mujoco_warnings(_UNSTABLE):
            self._advance(n)

    def _advance(self, n: int) -> None:
        m, d = self.model, self.data
        for _ in range(n):
            self.servos.ramp(m.opt.timestep)
            self._apply_ctrl()
            d.qfrc_applied[self._skin_dofs] = -self._tissue_damping * d.qvel[self._skin_dofs]
            self._skin_before[:] = d.flexvert_xpos
            mujoco.mj_step(m, d)
        if d.warning.number[_BAD_STATE].any():
            self._diverged()

    def _diverged(self) -> None:
        """MuJoCo reset the data to the model's rest on its own, goals and calibration
        aside: the twin is put back at rest as a whole, then the caller is told."""
        dof = int(self.data.warning.lastinfo[_BAD_STATE].max())
        self.reset(robot=self.robot)
        raise Diverged(f"the twin's physics diverged (MuJoCo: a bad value at dof {dof}); "
                       "it was reset to rest")

    def rest_at(self, controls, model: SettleModel, max_time: float = MAX_SETTLE_S,
                strict: bool = True) -> int:
        """Bring the face to rest at ``controls`` the quickest way, and return the
        physics steps it took: the servos at their goals (through backlash and
        calibration as a ramp would leave them), every joint and skin vertex started
        where ``model`` predicts the face comes to rest, then :meth:`settle`'s
        unchanged rule. The same rest as commanding and settling, within the settle
        rule's tolerance (a few lip vertices have two rests: the shapes' mean is what
        agrees), without the transient."""
        self.command(controls)
        self.servos.setpoint[:] = self.servos.goal
        m, d = self.model, self.data
        # Where the linkages are driven, not the goal: a robot's servo offsets move its rest.
        d.qpos[:] = model.rest(self.servos.linkage_controls())
        d.qvel[:] = 0.0
        self._apply_ctrl()
        mujoco.mj_forward(m, d)
        # At rest only the jaw's followers' goals move; the tissue's damping is MuJoCo's
        # own here (implicit in Euler's step: the same rest, no Python force per step).
        max_steps, still = int(max_time / m.opt.timestep), 0
        saved = m.dof_damping[self._skin_dofs].copy()
        m.dof_damping[self._skin_dofs] = self._tissue_damping
        try:
            with mujoco_warnings(_UNSTABLE):
                for i in range(1, max_steps + 1):
                    if self._followers.size:
                        d.ctrl[self._followers] = MODIOLUS_JAW_SHARE * d.qpos[self._jaw_qpos]
                    self._skin_before[:] = d.flexvert_xpos
                    mujoco.mj_step(m, d)
                    still = still + 1 if self.landmark_speed() < SETTLE_SPEED else 0
                    if still >= SETTLE_STEPS:
                        break
        finally:
            m.dof_damping[self._skin_dofs] = saved
        # Physics that blew up were put back at the model's rest by MuJoCo, and may have
        # come to rest again since: looked for once, at the end.
        if d.warning.number[_BAD_STATE].any():
            self._diverged()
        return i if still >= SETTLE_STEPS else self._unsettled(max_steps, max_time, strict)

    def landmark_speed(self) -> float:
        """The fastest landmark's speed (m/s) over the last step, in the world frame:
        what a camera sees move, whichever joint or skin mode moves it."""
        moved = self.data.flexvert_xpos - self._skin_before
        skin = np.sqrt(np.einsum("ij,ij->i", moved, moved).max())
        eyes = np.abs(self.data.qvel[self._eye_dofs]).max(initial=0.0) * self._eye_radius
        return max(float(skin) / self.model.opt.timestep, float(eyes))

    def arrived(self) -> bool:
        """The servos' ramps have reached their goals (the joints may still be moving)."""
        return self.servos.arrived()

    def still(self) -> bool:
        """The servos have reached their goals and no landmark moves faster than settling
        allows (one step's look: :meth:`settle` wants it for several in a row)."""
        return self.arrived() and self.landmark_speed() < SETTLE_SPEED

    def settle(self, max_time: float = MAX_SETTLE_S, strict: bool = True) -> int:
        """Step until the servos reach their goals and the face stops; returns the steps.

        A face that is still moving after ``max_time`` seconds raises RuntimeError, or
        with ``strict=False`` is left as it is then; physics that blow up raise
        :class:`Diverged`.
        """
        max_steps = int(max_time / self.model.opt.timestep)
        still = 0
        with mujoco_warnings(_UNSTABLE):
            for i in range(1, max_steps + 1):
                self._advance(1)
                still = still + 1 if self.still() else 0
                if still >= SETTLE_STEPS:
                    return i
        return self._unsettled(max_steps, max_time, strict)

    def _unsettled(self, max_steps: int, max_time: float, strict: bool) -> int:
        if not strict:
            return max_steps
        raise RuntimeError(f"the face did not settle within {max_time} s "
                           f"(fastest landmark {self.landmark_speed():.3g} m/s)")

    # -- reading -----------------------------------------------------------------------
    def present_controls(self) -> np.ndarray:
        """Present positions in control units, read from the joints (as servos report)."""
        a = self._present_act
        physical = self.profile.from_twin(
            self.data.qpos[self._act_qpos[a]] / (self._act_scale[a] * self._act_travel[a]))
        return self.servos.reported(physical)

    def skin_vertices(self) -> np.ndarray:
        return self.data.flexvert_xpos.copy()

    def head_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Head position and rotation matrix in the world (rest: origin, identity)."""
        b = self._head_body
        rot = self.data.xmat[b].reshape(3, 3).copy()
        pos = self.data.xpos[b] - rot @ self._head_pivot
        return pos, rot

    def built_pivot(self, body: str) -> np.ndarray:
        """Rest position of a body's origin (head frame = world frame at rest)."""
        m, b = self.model, self.model.body(body).id
        pos = np.zeros(3)
        while b != 0:
            pos += m.body_pos[b]
            b = m.body_parentid[b]
        return pos

    def eye_pose(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        b = self._eye_body[side]
        return self.data.xpos[b].copy(), self.data.xmat[b].reshape(3, 3).copy()

    def landmarks_3d(self) -> np.ndarray:
        """The MediaPipe landmarks in metres: the skin's vertices, then the irises."""
        out = np.empty((N_LANDMARKS, 3))
        out[:N_SKIN] = self.data.flexvert_xpos
        rim = np.column_stack([self.face.iris_rim_directions, np.zeros(4)])
        for side, eye in self.face.eyes.items():
            centre, rot = self.eye_pose(side)
            # Iris points lie on the eyeball's surface, at the iris radius from its axis.
            dz = np.sqrt(eye.radius ** 2 - eye.iris_radius ** 2)
            local = np.vstack([[0, 0, eye.radius], rim * eye.iris_radius + [0, 0, dz]])
            s = IRIS_START[side]
            out[s:s + 5] = centre + local @ rot.T
        return out

    def strain(self) -> np.ndarray:
        """Per-triangle skin strain: the largest relative change of an edge's length."""
        x = self.data.flexvert_xpos
        length = np.linalg.norm(x[self._edges[..., 0]] - x[self._edges[..., 1]], axis=2)
        return np.abs(length / self._rest_len - 1.0).max(axis=1)

