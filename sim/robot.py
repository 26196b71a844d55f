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
    def from_parameters(cls, table: dict, layout: Layout, where: str,
                        ranges: np.ndarray) -> "Robot":
        """The robot of a file's ``parameters`` table (``ranges``: each control's width,
        in control units). Every block must be there, each named control and linkage
        in it, each value finite and within what a copy of a face can differ by
        (:data:`BOUNDS`); anything else is a :class:`RobotFileError` naming the field."""
        if not isinstance(table, dict):
            raise RobotFileError(f"{where}: 'parameters' must be a table")
        blocks = cls.nominal(layout).as_parameters(layout)
        unknown, missing = set(table) - set(blocks), [b for b in blocks if b not in table]
        if unknown:
            raise RobotFileError(f"{where}: unknown parameters {sorted(unknown)}")
        if missing:
            raise RobotFileError(f"{where}: no {', '.join(repr(b) for b in missing)} in "
                                 "'parameters' (a robot file has every block facetwin "
                                 "identify writes)")
        sliders = [i for i, j in enumerate(layout.joints) if j in layout.slides]
        slider_names = [layout.joints[i] for i in sliders]
        free = [str(i) for i in layout.free_vertices]
        read = {
            "servo_offset": _named(table, "servo_offset", layout.controls, where),
            "servo_travel": _named(table, "servo_travel", layout.controls, where),
            "backlash": _named(table, "backlash", layout.controls, where),
            "servo_gain": _numbers(table["servo_gain"], "servo_gain", where,
                                   (layout.actuators,)),
            "linkage_travel": _named(table, "linkage_travel", slider_names, where),
            "linkage_anchor_mm": _named(table, "linkage_anchor_mm", layout.slides, where, 3),
            "skin_rest_mm": _named(table, "skin_rest_mm", free, where, 3, every=False),
            **{k: _numbers(table[k], k, where, ()) for k in
               ("skin_stiffness", "skin_thickness", "tether_stiffness")},
            "camera_offset_mm": _numbers(table["camera_offset_mm"], "camera_offset_mm",
                                         where, (3,)),
            "camera_tilt_deg": _numbers(table["camera_tilt_deg"], "camera_tilt_deg", where,
                                        (3,)),
        }
        names = {"servo_offset": layout.controls, "servo_travel": layout.controls,
                 "backlash": layout.controls, "linkage_travel": slider_names,
                 "linkage_anchor_mm": layout.slides, "skin_rest_mm": free}
        for key, values in read.items():
            _within(key, values, names.get(key), ranges, where)
        travel = np.ones(len(layout.joints))
        travel[sliders] = read["linkage_travel"]
        return cls(
            servo_offset=read["servo_offset"], servo_travel=read["servo_travel"],
            servo_gain=read["servo_gain"], backlash=read["backlash"],
            linkage_travel=travel, linkage_anchor_m=read["linkage_anchor_mm"] * 1e-3,
            skin_rest_m=read["skin_rest_mm"] * 1e-3,
            skin_stiffness=float(read["skin_stiffness"]),
            skin_thickness=float(read["skin_thickness"]),
            tether_stiffness=float(read["tether_stiffness"]),
            camera_offset_m=read["camera_offset_mm"] * 1e-3,
            camera_tilt_deg=read["camera_tilt_deg"])


# What a copy of a face can differ from its twin by, per block of a robot file (in the
# file's units; "range": a share of each control's range): several times what
# identification and Randomization.realistic() reach, and inside what the twin's 1 ms
# explicit step holds (a membrane 2.7 times stiffer blows it up).
BOUNDS = {
    "servo_offset": (-0.25, 0.25, "range"), "servo_travel": (0.25, 1.75, ""),
    "backlash": (0.0, 0.1, "range"), "servo_gain": (0.2, 5.0, ""),
    "linkage_travel": (0.25, 1.75, ""), "linkage_anchor_mm": (-10.0, 10.0, "mm"),
    "skin_rest_mm": (-20.0, 20.0, "mm"), "skin_stiffness": (0.4, 2.5, ""),
    "skin_thickness": (0.4, 2.5, ""), "tether_stiffness": (0.25, 4.0, ""),
    "camera_offset_mm": (-100.0, 100.0, "mm"), "camera_tilt_deg": (-30.0, 30.0, "deg"),
}


def _within(key: str, values: np.ndarray, names, ranges: np.ndarray, where: str) -> None:
    low, high, unit = BOUNDS[key]
    values = np.atleast_1d(values)
    scale = ranges.reshape((-1,) + (1,) * (values.ndim - 1)) if unit == "range" else 1.0
    share = values / scale
    bad = np.flatnonzero(((share < low) | (share > high)).reshape(len(values), -1).any(1))
    if not len(bad):
        return
    k = int(bad[0])
    field = (f"{key}[{names[k]!r}]" if names is not None else
             f"{key}[{k}]" if len(values) > 1 else key)
    said = (f"{100 * float(share[k]):.4g} % of the control's range" if unit == "range"
            else f"{np.round(values[k], 4).tolist()}{' ' + unit if unit else ''}")
    limits = (f"{100 * low:g} % to {100 * high:g} % of its range" if unit == "range"
              else f"{low:g} to {high:g}{' ' + unit if unit else ''}")
    raise RobotFileError(f"{where}: {field} is {said}, outside {limits} (what a copy of "
                         "this face can differ from its twin by)")


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


def _named(table: dict, key: str, names, where: str, width: int | None = None,
           every: bool = True) -> np.ndarray:
    """Block ``key``'s values in the order of ``names`` (zero where ``every`` is off and
    a name is left out), ``width`` numbers each or one."""
    values = table[key]
    if not isinstance(values, dict):
        raise RobotFileError(f"{where}: {key!r} must map names to values")
    index = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(names),) if width is None else (len(names), width))
    for name, value in values.items():
        if name not in index:
            raise RobotFileError(f"{where}: {key!r} names {name!r}, which this profile's "
                                 f"twin does not have")
        if width is None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
            raise RobotFileError(f"{where}: {key}[{name!r}] = {value!r} is not a finite number")
        out[index[name]] = _numbers(value, f"{key}[{name!r}]", where,
                                    () if width is None else (width,))
    left_out = [n for n in names if n not in values] if every else []
    if left_out:
        raise RobotFileError(f"{where}: {key!r} does not give {left_out[0]!r}"
                             f"{f' and {len(left_out) - 1} more' if len(left_out) > 1 else ''}")
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
    """The robot of a robot file, refused unless made for ``profile`` as it is now and
    physically a copy of its face (:meth:`Robot.from_parameters`)."""
    doc = read_document(Path(path), FORMAT, "a FaceTwin robot file", RobotFileError, profile,
                        remedy="identify the robot again on this profile")
    return Robot.from_parameters(doc.get("parameters"), layout, str(path),
                                 (profile.high - profile.low).astype(float))
