"""What a loaded profile is: its controls, how the twin and the hardware realise them,
its camera and its limits. Frozen dataclasses, made only by :mod:`.parse`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from facetwin.errors import FaceTwinError
from facetwin.profile.couplings import Coupling
from facetwin.profile.units import from_box, from_unit, to_box, to_unit

GROUPS = ("brows", "lids", "gaze", "nose", "mouth", "jaw", "head", "neck")
CONTROL_BOUND = 1e4  # control units: no face's range reaches further from 0
IMAGE_SIZES = (32, 2048)  # pixels, square: MediaPipe needs 32; beyond 2048 is a typo
CONTROL_RATES_HZ = (1.0, 1000.0)
# The longest a face may take to come to rest after a command (seconds), on the twin
# and on the robot: a face still moving then is reported, not waited for.
MAX_SETTLE_S = 1.5
TWIN_BOUNDS = {"joints": (180.0, "deg"), "landmarks": (50.0, "mm")}  # largest |at_low|, |at_high|
# Joints of the twin's rig that a control may drive (degrees); built in facetwin.sim.mjcf.
RIG_JOINTS = (
    "neck_yaw", "neck_pitch", "neck_roll", "head_yaw", "head_pitch", "head_roll",
    "jaw_pitch", "jaw_yaw",
    "eye_yaw_left", "eye_yaw_right", "eye_pitch_left", "eye_pitch_right",
    "lid_upper_left", "lid_upper_right", "lid_lower_left", "lid_lower_right",
)


class ProfileError(FaceTwinError, ValueError):
    """A profile file that cannot be used; the message names file, control and field."""

    @classmethod
    def at(cls, path: Path, where: str, field_name: str, problem: str) -> ProfileError:
        return cls(f"{path}: {where}: field '{field_name}': {problem}")


class CommandError(FaceTwinError, ValueError):
    """A command that was refused before anything was applied."""


@dataclass(frozen=True)
class Linkage:
    """A skin linkage: a slider gripping ``landmarks`` and moving along ``direction``."""

    landmarks: tuple[int, ...]
    direction: tuple[float, float, float]  # unit vector, face frame
    parent: str  # "head", "jaw" or the name of another control's linkage
    symmetric: bool  # also drive the mirror-image linkage on the other side
    mirrored: bool = False  # landmarks and direction are given for the mirror side


@dataclass(frozen=True)
class TwinRealisation:
    """How the twin moves for a control: joint targets at the range ends (0 at neutral)."""

    at_low: float  # degrees for rig joints, millimetres for linkages
    at_high: float
    joints: tuple[str, ...] = ()
    linkage: Linkage | None = None
    mirror_of: str | None = None  # resolved while loading; None in a loaded profile


@dataclass(frozen=True)
class Hardware:
    """How the physical face is driven: the bus and the servos' nominal travel."""

    protocol: str = "feetech-sts"
    model: str = "STS3032"
    baudrate: int = 1_000_000
    ticks_per_turn: int = 4096
    travel_deg: float = 120.0  # servo rotation across a control's range, before calibration
    reply_timeout_s: float = 0.01  # wait for a servo's answer before one retry


@dataclass(frozen=True)
class Control:
    name: str
    group: str
    low: float
    high: float
    neutral: float
    mirror: str | None
    max_speed: float  # control units per second
    torque: float  # N·m at the servo horn
    servos: tuple[int, ...]
    twin: TwinRealisation
    servo_direction: int = 1  # -1: ticks fall as the control rises (mirrored mounting)


@dataclass(frozen=True)
class Camera:
    distance: float  # metres from the head origin along the face's z axis
    height: float  # metres above the head origin
    fovy_deg: float
    size: int  # default square image size in pixels


@dataclass(frozen=True)
class Profile:
    """One robot face, as loaded and checked from its TOML (:func:`~facetwin.profile.load`):
    its controls in order (the action space's order), camera, control rate, limits
    (watchdog, strain ceiling, couplings), hardware and expression library; ``sha256``
    is the file's, which everything made for this face is stamped with."""

    name: str
    description: str
    path: Path
    sha256: str
    control_rate_hz: float
    camera: Camera
    controls: tuple[Control, ...]
    expressions: dict[str, np.ndarray] = field(repr=False)
    watchdog_s: float = 0.5
    strain_ceiling: float = 0.35
    couplings: tuple[Coupling, ...] = ()
    hardware: Hardware = Hardware()

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    def companion(self, suffix: str) -> Path:
        """A file stored beside the profile, e.g. ``rena25.envelope.json``."""
        return self.path.with_name(f"{self.path.stem}.{suffix}")

    @cached_property
    def twin_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Twin joint targets at each control's low and high end."""
        return (np.array([c.twin.at_low for c in self.controls]),
                np.array([c.twin.at_high for c in self.controls]))

    def normalise(self, values) -> np.ndarray:
        """Control units to [-1, 1] with 0 at neutral, piecewise linear on each side, so
        that asymmetric neutrals still reach the same twin motion at the range ends."""
        return to_unit(values, self.neutral, self.low, self.high)

    def denormalise(self, u) -> np.ndarray:
        return from_unit(u, self.neutral, self.low, self.high)

    def to_box(self, values) -> np.ndarray:
        """Control units to the control box: 0 at each range's low end, 1 at its high."""
        return to_box(values, self.low, self.high)

    def from_box(self, u) -> np.ndarray:
        """The control box to control units, clipped to the ranges."""
        return from_box(u, self.low, self.high)

    @cached_property
    def unit_spans(self) -> tuple[np.ndarray, np.ndarray]:
        """Control units per normalised unit below and above neutral."""
        return self.neutral - self.low, self.high - self.neutral

    def twin_targets(self, values) -> np.ndarray:
        """Each control's twin joint target (degrees or millimetres) for ``values``."""
        at_low, at_high = self.twin_ends
        return from_unit(self.normalise(values), 0.0, at_low, at_high)

    def from_twin(self, targets) -> np.ndarray:
        """Control values from twin joint positions (the inverse of ``twin_targets``)."""
        at_low, at_high = self.twin_ends
        u = np.clip(to_unit(targets, 0.0, at_low, at_high), -1.0, 1.0)
        return np.clip(self.denormalise(u), self.low, self.high)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.controls]

    @cached_property
    def low(self) -> np.ndarray:
        return np.array([c.low for c in self.controls], dtype=np.float32)

    @cached_property
    def high(self) -> np.ndarray:
        return np.array([c.high for c in self.controls], dtype=np.float32)

    @cached_property
    def neutral(self) -> np.ndarray:
        return np.array([c.neutral for c in self.controls], dtype=np.float32)

    def require_same(self, name, sha256, what: str, error: type[Exception],
                     remedy: str) -> None:
        """Refuse ``what``, a file made for profile ``name`` at ``sha256``, unless it was
        made for this profile as it is now: its values mean nothing on another face."""
        if name != self.name:
            raise error(f"{what} was made for profile {name!r}, not {self.name!r}: its "
                        "values mean nothing on another face")
        if sha256 != self.sha256:
            raise error(f"{what} was made for another version of profile {self.name!r} "
                        f"(sha256 {str(sha256)[:12]}, now {self.sha256[:12]}); {remedy}")

    def checked(self, command) -> np.ndarray:
        """``command`` as a float64 vector of this face's controls, or CommandError
        naming what is wrong with it: the one check every command passes, on the twin
        and on the robot."""
        n = len(self.controls)
        try:
            a = np.asarray(command)
        except Exception as exc:  # ragged sequences and objects numpy cannot hold
            raise CommandError(f"command must be {n} numbers, got {type(command).__name__}: "
                               f"{exc}") from None
        if a.dtype.kind not in "fiu":
            raise CommandError(f"command must be real numbers (float or int), got dtype "
                               f"{a.dtype}")
        if a.shape != (n,):
            raise CommandError(f"command must have shape ({n},), one value per control of "
                               f"profile {self.name!r}, got shape {a.shape}")
        a = a.astype(float)
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            i = int(bad[0])
            raise CommandError(f"control {self.controls[i].name!r} is {a[i]}; every value "
                               "must be finite")
        return a

    def index(self, name: str) -> int:
        for i, c in enumerate(self.controls):
            if c.name == name:
                return i
        raise KeyError(f"profile {self.name!r} has no control {name!r}")

    def control(self, name: str) -> Control:
        return self.controls[self.index(name)]

    def vector(self, values: dict[str, float]) -> np.ndarray:
        """A full control vector: neutral, with the named controls set."""
        v = self.neutral.copy()
        for name, value in values.items():
            v[self.index(name)] = value
        return v
