"""Build the twin's MJCF from a robot profile and the face asset.

The skin is a MuJoCo flex shell (dim 2, stretch-only) with one body per free vertex.
Vertices that sit on something rigid belong to that body instead: the border and nose
bridge to the skull, the chin to the jaw, lid margins to the lids, and the points each
skin linkage grips to that linkage. Free vertices are also tethered to their rest
position by a soft spring, standing in for the tissue between skin and skull; the
tether is what keeps a stretch-only membrane from wrinkling freely, and it sets how far
a linkage's pull spreads.

Every driven joint gets a position actuator with the control's torque limit; slider
linkages are driven through a servo horn of ``HORN_RADIUS_M``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facetwin.profile import Control, Profile, ProfileError
from facetwin.sim.face import FaceAsset

TIMESTEP_S = 0.001
HORN_RADIUS_M = 0.01
# Servo dynamics. A geared servo's rotor inertia, reflected through its gearbox, is the
# bulk of what a joint feels (armature); it grows with the servo's size, so it is
# scaled by torque. Stiffness and damping give every servo the same ~20 ms response.
KP_PER_NM = 40.0  # N·m/rad of position gain per N·m of servo torque
# The neck and head joints carry the whole face, skin included: twice the stiffness per
# N·m keeps their response near the face servos'. No gravity and no load from outside
# the head reach them, so their settled angles are the commanded ones at any gain.
RIG_KP_SCALE = 2.0
ARMATURE_PER_NM = 0.003  # kg·m² per N·m
HINGE_DAMPING_PER_NM = 0.05  # gearbox friction
LINKAGE_KP_PER_N = 100.0  # N/m per N of linkage force
LINKAGE_ARMATURE_KG = 0.01
LINKAGE_DAMPING_NS_PER_M = 40.0
# Rig pivots in the head frame (metres).
NECK_PIVOT = np.array([0.0, -0.15, -0.04])
HEAD_PIVOT = np.array([0.0, -0.09, -0.03])
# Axis of each rig joint, signed so that positive values read naturally: neck and head
# pitch look up, yaw turns to the subject's left, roll tilts the left ear down, the jaw
# opens, eyes look left/up, lids close.
RIG_AXES = {
    "yaw": (0, 1, 0), "pitch": (-1, 0, 0), "roll": (0, 0, -1),
    "jaw_pitch": (1, 0, 0), "jaw_yaw": (0, 1, 0),
    "eye_yaw": (0, 1, 0), "eye_pitch": (-1, 0, 0),
    "lid_upper": (1, 0, 0), "lid_lower": (-1, 0, 0),
}
# The mouth's outer corners (subject's left, right) and how much of the jaw's opening
# they follow.
MOUTH_CORNERS = (291, 61)
MODIOLUS_JAW_SHARE = 0.4
# Lid margin points gripped by each lid (the middle of each margin; the corners stay
# with the skin so the lids close with a natural curve).
UPPER_LID_GRIP = slice(1, 6)
LOWER_LID_GRIP = slice(2, 5)


@dataclass(frozen=True)
class SkinParams:
    """Physical parameters of the skin; the defaults are tuned for a stable 1 ms step.

    The vertex masses are scaled up from silicone's few grams per face: only the settled
    shape is measured, and heavier vertices let the explicit flex forces run at the
    servo-friendly step without shrinking it. An explicit step is stable while each
    vertex's mass keeps pace with the membrane stiffness about it, so the stiffest free
    vertex gets ``vertex_mass_kg`` and the others proportionally less: the mass the head
    and neck carry, and the time the skin takes to follow them, shrink with it.
    """

    young_pa: float = 1.0e5
    poisson: float = 0.3
    thickness_m: float = 0.002
    tether_n_per_m: float = 120.0
    # The lips hang on a ring of muscle, not on bone: their tether is this share of the
    # skin's, so that they follow the mouth's corners (a smile curves them) instead of
    # letting the corners tear away from them.
    lip_tether_share: float = 0.25
    vertex_mass_kg: float = 0.012

    def tethers(self, face: FaceAsset, vertices: np.ndarray) -> np.ndarray:
        """Each vertex's tether stiffness (N/m)."""
        k = np.full(len(vertices), self.tether_n_per_m)
        k[np.isin(vertices, face.lips)] *= self.lip_tether_share
        return k

    def tissue_damping(self, tether_n_per_m: np.ndarray,
                       vertex_mass_kg: np.ndarray) -> np.ndarray:
        """Viscous damping (N·s/m) of each free vertex against the skull, critical for
        its tether (the twin applies it as a generalised force). MuJoCo's own flex
        damping is stiffness-proportional: it leaves the slow modes ringing, and it
        makes MuJoCo build every edge's Jacobian at each step."""
        return 2.0 * np.sqrt(np.asarray(tether_n_per_m) * np.asarray(vertex_mass_kg))


@dataclass
class ActuatedJoint:
    """One actuated joint and the control that drives it."""

    name: str
    control: int  # index into the profile's controls
    kind: str  # "hinge" (target in degrees) or "slide" (target in millimetres)


@dataclass
class BuiltModel:
    xml: str
    joints: list[ActuatedJoint]
    skin_bodies: list[str]  # the body each skin vertex belongs to
    free_vertices: np.ndarray  # indices of vertices with their own body
    vertex_mass: np.ndarray  # kg, one per free vertex
    tether: np.ndarray  # N/m, one per free vertex
    # Joints that follow the jaw by MODIOLUS_JAW_SHARE of its angle, each driven by the
    # position actuator of its name after the profile's own.
    jaw_followers: list[str] = field(default_factory=list)


@dataclass
class _Body:
    name: str
    parent: str | None
    pivot: np.ndarray  # head-frame rest position of the body's origin
    joints: list[tuple[str, str, tuple[float, float, float], float, float, float]] = \
        field(default_factory=list)  # (name, type, axis, lo, hi, servo torque)
    mass: float = 0.01


def _fmt(v) -> str:
    return " ".join(f"{x:.6g}" for x in np.ravel(v))


def build(profile: Profile, face: FaceAsset, skin: SkinParams = SkinParams()) -> BuiltModel:
    bodies: dict[str, _Body] = {}
    actuated: list[ActuatedJoint] = []
    owner: dict[int, str] = {}  # skin vertex -> body holding it
    gripped_by: dict[int, str] = {}  # skin vertex -> control whose linkage grips it

    def add_body(name: str, parent: str | None, pivot, mass: float = 0.01) -> _Body:
        if name not in bodies:
            bodies[name] = _Body(name, parent, np.asarray(pivot, dtype=float), mass=mass)
        return bodies[name]

    add_body("neck", None, NECK_PIVOT, mass=1.0)
    add_body("head", "neck", HEAD_PIVOT, mass=3.0)
    add_body("jaw", "head", face.jaw_pivot, mass=0.15)
    for side, eye in face.eyes.items():
        add_body(f"eye_{side}", "head", eye.centre, mass=0.008)
        add_body(f"lid_upper_{side}", "head", eye.centre, mass=0.003)
        add_body(f"lid_lower_{side}", "head", eye.centre, mass=0.003)

    def rig_body(joint: str) -> tuple[str, tuple]:
        part, _, side = joint.rpartition("_")
        if joint.startswith(("neck_", "head_")):
            return joint.split("_")[0], RIG_AXES[joint.split("_")[1]]
        if joint.startswith("jaw_"):
            return "jaw", RIG_AXES[joint]
        if joint.startswith("eye_"):
            return f"eye_{side}", RIG_AXES[part]
        return f"{part}_{side}", RIG_AXES[part]  # lid_upper_left -> body lid_upper_left

    def linkage_parent(parent: str, mirrored: bool) -> str:
        if parent in ("head", "jaw"):
            return parent
        return f"link_{parent}" + ("_mirror" if mirrored else "")

    for ci, c in enumerate(profile.controls):
        t = c.twin
        lo, hi = sorted((t.at_low, t.at_high, 0.0))[::2]
        for joint in t.joints:
            body, axis = rig_body(joint)
            bodies[body].joints.append((joint, "hinge", axis, lo, hi, c.torque))
            actuated.append(ActuatedJoint(joint, ci, "hinge"))
        if t.linkage is None:
            continue
        sides = [t.linkage.mirrored] + ([not t.linkage.mirrored] if t.linkage.symmetric else [])
        for mirrored in sides:
            marks = [int(face.mirror[m]) if mirrored else m for m in t.linkage.landmarks]
            direction = np.asarray(t.linkage.direction) * ([-1, 1, 1] if mirrored else 1)
            suffix = "_mirror" if mirrored and t.linkage.symmetric else ""
            name = f"link_{c.name}{suffix}"
            parent = linkage_parent(t.linkage.parent,
                                    mirrored and t.linkage.symmetric)
            pivot = face.vertices[marks].mean(axis=0) if marks else \
                _linkage_anchor(profile, face, c, copy=mirrored != t.linkage.mirrored)
            body = add_body(name, parent, pivot)
            body.joints.append((name, "slide", tuple(direction), lo, hi, c.torque))
            actuated.append(ActuatedJoint(name, ci, "slide"))
            for m in marks:
                if m in gripped_by:
                    raise ProfileError.at(
                        profile.path, f"control '{c.name}'", "twin.landmarks",
                        f"skin landmark {m} is gripped by '{gripped_by[m]}' too (a symmetric "
                        "linkage grips the mirror image as well)")
                gripped_by[m] = c.name
                owner[m] = name

    coupled = _hang_mouth_corners_on_the_jaw(bodies, owner, face)

    for side in face.eyes:
        for part, grip in (("upper", UPPER_LID_GRIP), ("lower", LOWER_LID_GRIP)):
            if any(j == f"lid_{part}_{side}" for b in bodies.values() for j, *_ in b.joints):
                for m in face.lids[f"{side}_{part}"][grip]:
                    owner.setdefault(m, f"lid_{part}_{side}")
    for m in face.jaw_skin:
        owner.setdefault(m, "jaw")
    for m in face.skull_skin:
        owner.setdefault(m, "head")

    free = np.array([i for i in range(len(face.vertices)) if i not in owner])
    skin_bodies = [owner.get(i, f"skin_{i}") for i in range(len(face.vertices))]
    tether = skin.tethers(face, free)
    stiffness = membrane_stiffness(face, skin)[free] + tether
    mass = skin.vertex_mass_kg * stiffness / stiffness.max()
    xml = _xml(profile, face, skin, bodies, actuated, skin_bodies, free, mass, tether, coupled)
    return BuiltModel(xml, actuated, skin_bodies, free, mass, tether, coupled)


def _hang_mouth_corners_on_the_jaw(bodies: dict[str, _Body], owner: dict[int, str],
                                   face: FaceAsset) -> list[str]:
    """When a jaw opens, the mouth's corners go down part of the way with it (the
    modiolus is tied to the lower lip): each corner's linkage chain hangs from a body
    that turns about the jaw's hinge by ``MODIOLUS_JAW_SHARE`` of the jaw's angle.
    Returns the following joints' names (none without a jaw or corner linkages)."""
    jaw = next((j for j in bodies["jaw"].joints if j[0] == "jaw_pitch"), None)
    if jaw is None:
        return []
    coupled = []
    for side, corner in (("left", MOUTH_CORNERS[0]), ("right", MOUTH_CORNERS[1])):
        name = owner.get(corner)
        if name is None or not name.startswith("link_"):
            continue
        while bodies[name].parent not in ("head", "jaw"):
            name = bodies[name].parent
        if bodies[name].parent == "jaw":
            continue
        modiolus = f"modiolus_{side}"
        bodies[modiolus] = _Body(modiolus, "head", face.jaw_pivot, mass=0.005)
        _, kind, axis, lo, hi, torque = jaw
        share = MODIOLUS_JAW_SHARE
        bodies[modiolus].joints.append((modiolus, kind, axis, lo * share, hi * share,
                                        torque * share))
        bodies[name].parent = modiolus
        coupled.append(modiolus)
    return coupled


def membrane_stiffness(face: FaceAsset, skin: SkinParams) -> np.ndarray:
    """A bound on the membrane stiffness (N/m) about each vertex at rest: the Gershgorin
    row sums of the linear constant-strain triangles' stiffness, summed over the
    triangles a vertex is in. An explicit step's stability is set by the largest
    eigenvalue of mass-scaled stiffness, which these row sums bound."""
    x = face.vertices[face.triangles]  # (T, 3 corners, 3)
    e1, e2 = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]
    normal = np.cross(e1, e2)
    double_area = np.linalg.norm(normal, axis=1)
    u = e1 / np.linalg.norm(e1, axis=1, keepdims=True)
    w = np.cross(normal / double_area[:, None], u)
    rel = x - x[:, :1]
    px, py = (rel * u[:, None]).sum(-1), (rel * w[:, None]).sum(-1)  # in-plane coordinates
    b = (np.roll(py, -1, axis=1) - np.roll(py, -2, axis=1)) / double_area[:, None]
    c = (np.roll(px, -2, axis=1) - np.roll(px, -1, axis=1)) / double_area[:, None]
    strain = np.zeros((len(x), 3, 6))  # B: (exx, eyy, gxy) from corner displacements
    strain[:, 0, 0::2], strain[:, 1, 1::2] = b, c
    strain[:, 2, 0::2], strain[:, 2, 1::2] = c, b
    nu = skin.poisson
    elastic = skin.young_pa / (1 - nu ** 2) * np.array(
        [[1, nu, 0], [nu, 1, 0], [0, 0, (1 - nu) / 2]])
    k = skin.thickness_m * 0.5 * double_area[:, None, None] * \
        np.einsum("tji,jk,tkl->til", strain, elastic, strain)
    rows = np.abs(k).sum(axis=2).reshape(len(x), 3, 2).max(axis=2)
    out = np.zeros(len(face.vertices))
    np.add.at(out, face.triangles, rows)
    return out


def critically_damp_servos(model) -> None:
    """Give every servo velocity feedback that critically damps the inertia it carries.

    The inertia behind a joint (a lid or the whole head) is only known once the model
    is compiled, so this runs on the compiled model: kv = 2 sqrt(kp M).
    """
    for a in range(model.nu):
        dof = model.jnt_dofadr[model.actuator_trnid[a, 0]]
        kp = model.actuator_gainprm[a, 0]
        model.actuator_biasprm[a, 2] = -2.0 * np.sqrt(kp * model.dof_M0[dof])


def _linkage_anchor(profile: Profile, face: FaceAsset, c: Control, copy: bool) -> np.ndarray:
    """A linkage that grips nothing itself sits where its first descendant linkage grips
    (on the mirror side when it is the mirror copy of a symmetric linkage)."""
    for child in profile.controls:
        link = child.twin.linkage
        if link is None or link.parent != c.name:
            continue
        if not link.landmarks:
            return _linkage_anchor(profile, face, child, copy)
        p = face.vertices[list(link.landmarks)].mean(axis=0)
        return face.mirror_point(p) if link.mirrored != copy else p
    raise ProfileError.at(profile.path, f"control '{c.name}'", "twin.landmarks",
                          "the linkage grips no landmarks and carries no other linkage")


def _xml(profile: Profile, face: FaceAsset, skin: SkinParams, bodies: dict[str, _Body],
         actuated: list[ActuatedJoint], skin_bodies: list[str], free: np.ndarray,
         vertex_mass: np.ndarray, tether: np.ndarray, coupled: list[str]) -> str:
    children: dict[str | None, list[_Body]] = {}
    for b in bodies.values():
        children.setdefault(b.parent, []).append(b)

    def body_xml(b: _Body, parent_pivot: np.ndarray, depth: int) -> list[str]:
        pad = "  " * depth
        lines = [f'{pad}<body name="{b.name}" pos="{_fmt(b.pivot - parent_pivot)}">',
                 f'{pad}  <inertial pos="0 0 0" mass="{b.mass}" '
                 f'diaginertia="{_fmt([b.mass * 1e-3] * 3)}"/>']
        for name, jtype, axis, lo, hi, torque in b.joints:
            if jtype == "hinge":  # degrees stay degrees
                rng, armature, damping = (lo, hi), ARMATURE_PER_NM * torque, \
                    HINGE_DAMPING_PER_NM * torque
            else:  # millimetres -> metres
                rng, armature, damping = (lo * 1e-3, hi * 1e-3), LINKAGE_ARMATURE_KG, \
                    LINKAGE_DAMPING_NS_PER_M
            lines.append(f'{pad}  <joint name="{name}" type="{jtype}" axis="{_fmt(axis)}" '
                         f'range="{rng[0] - 1e-6:.6g} {rng[1] + 1e-6:.6g}" limited="true" '
                         f'armature="{armature:.6g}" damping="{damping:.6g}"/>')
        for child in children.get(b.name, []):
            lines += body_xml(child, b.pivot, depth + 1)
        if b.name == "head":
            for i, mass, k in zip(free, vertex_mass, tether):
                rest = _fmt(face.vertices[i] - b.pivot)
                lines.append(f'{pad}  <body name="skin_{i}" pos="{rest}">'
                             f'<inertial pos="0 0 0" mass="{mass:.6g}" '
                             f'diaginertia="1e-9 1e-9 1e-9"/>'
                             + "".join(f'<joint name="skin_{i}_{a}" type="slide" axis="{ax}" '
                                       f'stiffness="{k:.6g}"/>'
                                       for a, ax in (("x", "1 0 0"), ("y", "0 1 0"),
                                                     ("z", "0 0 1")))
                             + "</body>")
        lines.append(f"{pad}</body>")
        return lines

    world = body_xml(bodies["neck"], np.zeros(3), 2)
    offsets = [face.vertices[i] - bodies[name].pivot if name in bodies else np.zeros(3)
               for i, name in enumerate(skin_bodies)]
    actuators = []
    for j in actuated:
        c = profile.controls[j.control]
        if j.kind == "hinge":
            force = c.torque
            kp = KP_PER_NM * force * (RIG_KP_SCALE if j.name.startswith(("neck_", "head_"))
                                      else 1.0)
        else:
            force = c.torque / HORN_RADIUS_M
            kp = LINKAGE_KP_PER_N * force
        actuators.append(f'    <position name="{j.name}" joint="{j.name}" kp="{kp:.6g}" '
                         f'forcerange="{-force:.6g} {force:.6g}" forcelimited="true"/>')
    # Each follower joint is held at its share of the jaw's angle by a position servo of
    # the jaw's stiffness, its goal set every step by the twin (a MuJoCo joint equality
    # does the same but runs the constraint solver every step: 40% of the physics rate).
    jaw = next((j for j in actuated if j.name == "jaw_pitch"), None)
    for follower in coupled:
        force = profile.controls[jaw.control].torque
        actuators.append(f'    <position name="{follower}" joint="{follower}" '
                         f'kp="{KP_PER_NM * force:.6g}" forcerange="{-force:.6g} {force:.6g}" '
                         f'forcelimited="true"/>')
    return f"""<mujoco model="facetwin-{profile.name}">
  <compiler angle="degree"/>
  <option timestep="{TIMESTEP_S}" integrator="Euler" gravity="0 0 0"/>
  <worldbody>
{chr(10).join(world)}
  </worldbody>
  <deformable>
    <flex name="skin" dim="2" body="{' '.join(skin_bodies)}"
          vertex="{_fmt(np.array(offsets))}"
          element="{_fmt(face.triangles)}">
      <contact contype="0" conaffinity="0"/>
      <elasticity young="{skin.young_pa:.6g}" poisson="{skin.poisson}"
                  thickness="{skin.thickness_m}" elastic2d="stretch"/>
    </flex>
  </deformable>
  <actuator>
{chr(10).join(actuators)}
  </actuator>
</mujoco>
"""
