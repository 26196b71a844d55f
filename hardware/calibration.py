"""Servo calibration: ticks <-> control units, per servo, stored beside the profile.

Each servo maps its control's low end, neutral and high end to ticks; the mapping is
linear on each side of neutral, like the profile's normalisation, and direction is
whichever way the ticks run. ``NAME.calibration.json`` beside the profile holds it;
without one, a nominal calibration centres every servo and spreads the profile's
``hardware.travel_deg`` over each control's range.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write
from facetwin.profile import Profile, from_unit, to_unit

CENTRE_TICK = 2048
NOMINAL = "nominal"


class CalibrationError(FaceTwinError, ValueError):
    """A calibration file that does not fit its profile."""


@dataclass(frozen=True)
class ServoCalibration:
    low: int  # ticks at the control's low end
    neutral: int
    high: int  # ticks at the high end; below ``low`` for a reversed servo

    @property
    def limits(self) -> tuple[int, int]:
        return min(self.low, self.high), max(self.low, self.high)


class Calibration:
    def __init__(self, profile: Profile, servos: dict[int, ServoCalibration],
                 source: str = NOMINAL):
        missing = [s for c in profile.controls for s in c.servos if s not in servos]
        if missing:
            raise CalibrationError(f"calibration of profile {profile.name!r} ({source}) has no "
                                   f"entry for servo ids {missing}")
        for sid, s in servos.items():
            lo, hi = s.limits
            if not (lo <= s.neutral <= hi and s.low != s.high):
                raise CalibrationError(f"{source}: servo {sid}: neutral {s.neutral} must lie "
                                       f"between low {s.low} and high {s.high}")
        self.profile, self.servos, self.source = profile, servos, source
        self.ids = [s for c in profile.controls for s in c.servos]
        # Control index of each servo, and each control's first servo (its present position).
        self._owner = np.array([i for i, c in enumerate(profile.controls) for _ in c.servos])
        self._first = [c.servos[0] if c.servos else None for c in profile.controls]
        table = np.array([[servos[s].low, servos[s].neutral, servos[s].high] for s in self.ids],
                         dtype=float)
        self._low, self._neutral, self._high = table.T

    @property
    def is_nominal(self) -> bool:
        """True when no calibration file was found: every servo assumed centred."""
        return self.source == NOMINAL

    # -- mapping -----------------------------------------------------------------------
    def to_ticks(self, controls: np.ndarray) -> dict[int, int]:
        u = self.profile.normalise(controls)[self._owner]
        ticks = from_unit(u, self._neutral, self._low, self._high)
        return dict(zip(self.ids, np.rint(ticks).astype(int).tolist()))

    def to_controls(self, ticks: dict[int, int]) -> np.ndarray:
        """Control values from each control's first servo (neutral where none)."""
        p = self.profile
        u = np.zeros(len(p.controls))
        for i, sid in enumerate(self._first):
            if sid is not None:
                s = self.servos[sid]
                u[i] = to_unit(ticks[sid], s.neutral, s.low, s.high)
        return np.clip(p.denormalise(np.clip(u, -1, 1)), p.low, p.high)

    def speeds(self) -> dict[int, int]:
        """Each servo's goal velocity in ticks/s for its control's maximum speed."""
        out = {}
        for c in self.profile.controls:
            for sid in c.servos:
                s = self.servos[sid]
                per_unit = max(abs(s.high - s.neutral) / max(c.high - c.neutral, 1e-9),
                               abs(s.neutral - s.low) / max(c.neutral - c.low, 1e-9))
                out[sid] = max(1, int(round(c.max_speed * per_unit)))
        return out

    # -- storage -----------------------------------------------------------------------
    @classmethod
    def nominal(cls, profile: Profile) -> Calibration:
        hw = profile.hardware
        span = hw.travel_deg / 360.0 * hw.ticks_per_turn
        servos = {}
        for c in profile.controls:
            frac = (c.neutral - c.low) / (c.high - c.low)
            for sid in c.servos:
                d = c.servo_direction
                low = CENTRE_TICK - d * span / 2
                servos[sid] = ServoCalibration(int(round(low)), int(round(low + d * frac * span)),
                                               int(round(low + d * span)))
        return cls(profile, servos)

    @classmethod
    def load(cls, profile: Profile, path: Path | None = None) -> Calibration:
        """The profile's calibration file, or the nominal calibration if it has none."""
        path = path or calibration_path(profile)
        if not path.exists():
            return cls.nominal(profile)
        try:
            raw = json.loads(path.read_text())
            if raw.get("profile") != profile.name:
                raise CalibrationError(f"{path} is for profile {raw.get('profile')!r}, "
                                       f"not {profile.name!r}")
            servos = {int(k): ServoCalibration(int(v["low"]), int(v["neutral"]), int(v["high"]))
                      for k, v in raw["servos"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"{path}: not a calibration file ({exc})") from None
        return cls(profile, servos, source=str(path))

    def save(self, path: Path | None = None) -> Path:
        return atomic_write(path or calibration_path(self.profile), json.dumps({
            "profile": self.profile.name,
            "servos": {str(k): {"low": s.low, "neutral": s.neutral, "high": s.high}
                       for k, s in sorted(self.servos.items())},
        }, indent=1) + "\n")


def calibration_path(profile: Profile) -> Path:
    return profile.companion("calibration.json")


def record(bus, profile: Profile, seconds: float, period_s: float = 0.02,
           progress=None, clock=time.monotonic, sleep=time.sleep) -> Calibration:
    """Torque off, then record each servo's range while the operator moves every joint
    by hand through its full travel. The face must be at neutral when this starts:
    the first reading is the homing (neutral) position. ``progress(done_s, total_s)`` is
    called after every reading."""
    ids = [s for c in profile.controls for s in c.servos]
    bus.torque(ids, False)
    home = bus.read_positions(ids)
    lo, hi = dict(home), dict(home)
    start = clock()
    while (elapsed := clock() - start) < seconds:
        for sid, t in bus.read_positions(ids).items():
            lo[sid], hi[sid] = min(lo[sid], t), max(hi[sid], t)
        if progress:
            progress(elapsed, seconds)
        sleep(period_s)
    servos = {}
    for c in profile.controls:
        for sid in c.servos:
            if hi[sid] - lo[sid] < 2:
                raise CalibrationError(f"servo {sid} ({c.name}) did not move "
                                       f"(stayed at {home[sid]} ticks); move every joint "
                                       "through its range while recording")
            first, last = (lo[sid], hi[sid]) if c.servo_direction > 0 else (hi[sid], lo[sid])
            servos[sid] = ServoCalibration(first, home[sid], last)
    return Calibration(profile, servos, source="recorded")


def write_limits(bus, calibration: Calibration) -> None:
    """Store each servo's calibrated range in its own angle-limit registers (EEPROM)."""
    if calibration.is_nominal:
        raise CalibrationError(
            f"refusing to write angle limits from a nominal calibration of "
            f"{calibration.profile.name!r}: it is a guess, and limits in EEPROM outlive "
            "this session; record one first with `facetwin calibrate`")
    for sid, s in calibration.servos.items():
        lo, hi = s.limits
        bus.write_register(sid, "Lock", 0)
        bus.write_register(sid, "Min_Position_Limit", lo)
        bus.write_register(sid, "Max_Position_Limit", hi)
        bus.write_register(sid, "Lock", 1)
