"""One physical copy of a profile's face, as the twin models it: :class:`Robot`.

A robot differs from the nominal twin in how its servos are calibrated, where its
linkages grip and how far they travel, its skin's rest shape and stiffness, and where its
camera stands. A :class:`~facetwin.sim.randomization.Randomization` draws robots at
random (a perturbed twin); identification (:mod:`facetwin.agents.identify`) fits one
to what a real robot's camera sees and stores it as a robot file:

    {"format": "facetwin-robot/1", "profile": "emo11", "profile_sha256": "...",
     "name": "lab-emo", "parameters": {"servo_offset": {"brow_inner": 0.01, ...}, ...},
     ...}  (the identification's uncertainty, poses and residuals beside them)

Parameters are stored by control and linkage name, so a file reads the same whatever
the profile's order; a file made for another profile, or another version of this one,
is refused (:func:`load_robot`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from facetwin.errors import FaceTwinError
from facetwin.files import read_document, write_document
from facetwin.profile import Profile

FORMAT = "facetwin-robot/1"


class RobotFileError(FaceTwinError, ValueError):
    """A robot file that cannot be used with this profile; the message says why."""


@dataclass(frozen=True)
class Layout:
    """What a robot's parameters are indexed by on one profile's twin: its controls,
    actuators (followers included), actuated joints, slider linkages and free skin
    vertices."""

    controls: tuple[str, ...]
    actuators: int
    joints: tuple[str, ...]  # actuated joints, in the twin's order
    slides: tuple[str, ...]  # the linkage sliders among them
    free_vertices: tuple[int, ...]


@dataclass(frozen=True)
class Robot:
    """A twin's per-robot parameters; :meth:`nominal` is the twin as built.

    Calibration: a servo told control value ``c`` goes to
    ``neutral + servo_travel * (c - neutral) + servo_offset`` (control units) and reports
    ``c`` back when it gets there. Linkages: each actuated joint's travel scale, each
    slider's grip-point displacement (metres, head frame). Skin: the rest-shape field
    (metres per free vertex), and scales on the membrane (``skin_stiffness`` *
    ``skin_thickness``) and on the tethers (``skin_stiffness`` * ``tether_stiffness``).
    Camera: displacement (metres) and yaw, pitch, roll (degrees) from the profile's.
    """

    servo_offset: np.ndarray
    servo_travel: np.ndarray
    servo_gain: np.ndarray  # per actuator: washes out at a settled pose
    backlash: np.ndarray  # per control, full width in control units
    linkage_travel: np.ndarray  # per actuated joint (hinges stay at 1)
    linkage_anchor_m: np.ndarray  # (sliders, 3)
    skin_rest_m: np.ndarray  # (free vertices, 3)
    skin_stiffness: float = 1.0
    skin_thickness: float = 1.0
    tether_stiffness: float = 1.0
    camera_offset_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    camera_tilt_deg: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @classmethod
    def nominal(cls, layout: Layout) -> "Robot":
        n = len(layout.controls)
        return cls(servo_offset=np.zeros(n), servo_travel=np.ones(n),
                   servo_gain=np.ones(layout.actuators), backlash=np.zeros(n),
                   linkage_travel=np.ones(len(layout.joints)),
                   linkage_anchor_m=np.zeros((len(layout.slides), 3)),
                   skin_rest_m=np.zeros((len(layout.free_vertices), 3)))

    def with_camera(self, offset_m, tilt_deg) -> "Robot":
        return replace(self, camera_offset_m=np.zeros(3) if offset_m is None else
                       np.asarray(offset_m, dtype=float),
                       camera_tilt_deg=np.zeros(3) if tilt_deg is None else
                       np.asarray(tilt_deg, dtype=float))

    def calibrated(self) -> bool:
        return bool(np.any(self.servo_offset) or np.any(self.servo_travel != 1))

    def as_parameters(self, layout: Layout) -> dict:
        """The parameters by name, in the robot file's units (millimetres for lengths)."""
        sliders = [i for i, j in enumerate(layout.joints) if j in layout.slides]
        return {
            "servo_offset": _by_name(layout.controls, self.servo_offset),
            "servo_travel": _by_name(layout.controls, self.servo_travel),
            "backlash": _by_name(layout.controls, self.backlash),
            "servo_gain": [round(float(v), 6) for v in self.servo_gain],
            "linkage_travel": _by_name([layout.joints[i] for i in sliders],
                                       self.linkage_travel[sliders]),
            "linkage_anchor_mm": {s: [round(1e3 * float(v), 4) for v in a]
                                  for s, a in zip(layout.slides, self.linkage_anchor_m)},
            "skin_rest_mm": {str(i): [round(1e3 * float(v), 4) for v in d]
                             for i, d in zip(layout.free_vertices, self.skin_rest_m)
                             if np.any(d)},
            "skin_stiffness": round(self.skin_stiffness, 6),
            "skin_thickness": round(self.skin_thickness, 6),
            "tether_stiffness": round(self.tether_stiffness, 6),
            "camera_offset_mm": [round(1e3 * float(v), 4) for v in self.camera_offset_m],
            "camera_tilt_deg": [round(float(v), 5) for v in self.camera_tilt_deg],
        }

    @classmethod
    def from_parameters(cls, table: dict, layout: Layout, where: str) -> "Robot":
        """The robot of a file's ``parameters`` table; anything missing stays nominal,
        anything unknown or not a finite number is a :class:`RobotFileError` naming it."""
        if not isinstance(table, dict):
            raise RobotFileError(f"{where}: 'parameters' must be a table")
        nominal = cls.nominal(layout)
        unknown = set(table) - set(nominal.as_parameters(layout))
        if unknown:
            raise RobotFileError(f"{where}: unknown parameters {sorted(unknown)}")
        sliders = [i for i, j in enumerate(layout.joints) if j in layout.slides]
        travel = nominal.linkage_travel.copy()
        travel[sliders] = _named(table, "linkage_travel", [layout.joints[i] for i in sliders],
                                 np.ones(len(sliders)), where)
        anchors = _named(table, "linkage_anchor_mm", layout.slides,
                         nominal.linkage_anchor_m, where, width=3) * 1e-3
        rest = _named(table, "skin_rest_mm", [str(i) for i in layout.free_vertices],
                      nominal.skin_rest_m, where, width=3) * 1e-3
        gain = table.get("servo_gain", nominal.servo_gain)
        return cls(
            servo_offset=_named(table, "servo_offset", layout.controls, nominal.servo_offset,
                                where),
            servo_travel=_named(table, "servo_travel", layout.controls, nominal.servo_travel,
                                where),
            servo_gain=_numbers(gain, "servo_gain", where, (layout.actuators,)),
            backlash=_named(table, "backlash", layout.controls, nominal.backlash, where),
            linkage_travel=travel, linkage_anchor_m=anchors, skin_rest_m=rest,
            skin_stiffness=float(_numbers(table.get("skin_stiffness", 1.0), "skin_stiffness",
                                          where, ())),
            skin_thickness=float(_numbers(table.get("skin_thickness", 1.0), "skin_thickness",
                                          where, ())),
            tether_stiffness=float(_numbers(table.get("tether_stiffness", 1.0),
                                            "tether_stiffness", where, ())),
            camera_offset_m=_numbers(table.get("camera_offset_mm", [0, 0, 0]),
                                     "camera_offset_mm", where, (3,)) * 1e-3,
            camera_tilt_deg=_numbers(table.get("camera_tilt_deg", [0, 0, 0]),
                                     "camera_tilt_deg", where, (3,)))


def _by_name(names, values) -> dict:
    return {n: round(float(v), 6) for n, v in zip(names, values)}


def _numbers(value, key: str, where: str, shape: tuple) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        a = None
    if a is None or a.shape != shape or not np.all(np.isfinite(a)):
        wanted = f"{shape[0]} numbers" if shape else "a number"
        raise RobotFileError(f"{where}: {key!r} must be {wanted} (finite), got "
                             f"{str(value)[:60]}")
    return a


def _named(table: dict, key: str, names, default: np.ndarray, where: str,
           width: int | None = None) -> np.ndarray:
    values = table.get(key, {})
    if not isinstance(values, dict):
        raise RobotFileError(f"{where}: {key!r} must map names to values")
    out = np.array(default, dtype=float, copy=True)
    index = {n: i for i, n in enumerate(names)}
    for name, value in values.items():
        if name not in index:
            raise RobotFileError(f"{where}: {key!r} names {name!r}, which this profile's "
                                 f"twin does not have")
        if width is None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
            raise RobotFileError(f"{where}: {key}[{name!r}] = {value!r} is not a finite number")
        out[index[name]] = _numbers(value, f"{key}[{name!r}]", where,
                                    () if width is None else (width,))
    return out


def save_robot(path: Path, profile: Profile, layout: Layout, robot: Robot, **extra) -> Path:
    """Write ``robot`` as a robot file for ``profile``, with ``extra`` fields beside its
    parameters (an identification's name, uncertainty, poses, residuals)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_document(path, FORMAT, (profile.name, profile.sha256),
                   {**extra, "parameters": robot.as_parameters(layout)}, indent=1)
    return path


def load_robot(path: Path, profile: Profile, layout: Layout) -> Robot:
    """The robot of a robot file, refused unless made for ``profile`` as it is now."""
    doc = read_document(Path(path), FORMAT, "a FaceTwin robot file", RobotFileError, profile,
                        remedy="identify the robot again on this profile")
    return Robot.from_parameters(doc.get("parameters"), layout, str(path))
