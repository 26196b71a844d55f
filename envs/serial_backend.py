"""A face on a Feetech bus, with a camera, as a backend.

Every command passes the backend's one safety filter right before the wire, whoever
sends it: a step, a start-up or shut-down ramp, the watchdog. Ticks are then held inside
each servo's calibrated range; the servos' own angle limits (``facetwin calibrate
--write-limits``) are the last line.

Observations come only from camera frames captured after the face finished moving:
a settled step waits for the servos to arrive, then for two frames, both captured after
the arrival and a few frame intervals apart, that show the skin still. A camera that
lags is waited for; one that delivers no fresh frame in time raises ``CameraError``
naming it, never returns the past.
"""

from __future__ import annotations

import threading
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

from facetwin.envs.backend import Seen, Stepped, settle_periods
from facetwin.envs.safety import SafetyFilter, SafetyReport
from facetwin.errors import FaceTwinError
from facetwin.hardware.bus import FeetechBus
from facetwin.hardware.calibration import Calibration, calibration_path
from facetwin.hardware.camera import FRESH_FRAME_WAIT_S, Frame, open_camera
from facetwin.hardware.journal import Journal
from facetwin.hardware.protocol import BusError, PortGone
from facetwin.profile import MAX_SETTLE_S, Profile
from facetwin.sim.camera import PinholeCamera

SETTLE_TICKS = 2  # present positions within this of the goal count as arrived
STILL_IMAGE_GAP_S = 0.06  # between the two frames compared: longer than a 25 fps interval
STILL_IMAGE_LEVEL = 0.3  # mean absolute pixel change that counts as still


class HardwareError(FaceTwinError, RuntimeError):
    """The physical face (or the virtual bus standing in for it) failed; the message
    says what happened and what state the face was left in."""


class NominalCalibrationWarning(UserWarning):
    """The serial backend runs on nominal ticks: no calibration file was found."""


class SerialBackend:
    """Start-up ramps to neutral with torque on; ``close`` ramps back to neutral and
    turns torque off; a watchdog ramps to neutral when no step comes for the profile's
    ``watchdog_s`` (on ``clock``, injectable for tests); any bus fault turns torque off
    (when the port still exists) and raises :class:`HardwareError`."""

    def __init__(self, profile: Profile, port: str, camera, image_size: int,
                 calibration: Calibration | str | Path | None = None,
                 journal: str | Path | None = None, control_rate_hz: float | None = None,
                 retries: int = 1, frame_wait_s: float = FRESH_FRAME_WAIT_S,
                 clock=time.monotonic):
        self.profile, self.frame_wait_s = profile, frame_wait_s
        self.period = 1.0 / (control_rate_hz or profile.control_rate_hz)
        self.safety = SafetyFilter(profile)
        self.calibration = calibration if isinstance(calibration, Calibration) else \
            Calibration.load(profile, Path(calibration) if calibration else None)
        if self.calibration.is_nominal:
            warnings.warn(
                f"no calibration file {calibration or calibration_path(profile)} for profile "
                f"{profile.name!r}: driving nominal ticks (every servo centred, "
                f"{profile.hardware.travel_deg:g} deg across each range). Record one with "
                f"`facetwin calibrate --profile {profile.name} --port {port}`",
                NominalCalibrationWarning, stacklevel=2)
        self.ids = self.calibration.ids
        self._limits = {sid: s.limits for sid, s in self.calibration.servos.items()}
        self._clock = clock
        self._lock = threading.RLock()  # a step, or the watchdog: never both
        self._goal: dict[int, int] = {}
        self._frame: Frame | None = None  # the observation of the last settled step
        self._fresh_after = 0.0  # an observation must be captured after this moment
        self._failed: str | None = None
        self._last_step = clock()
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True, name="watchdog")
        self.bus: FeetechBus | None = None
        # What can be checked is checked before a servo is touched.
        # A robot's face is seen through the profile's nominal camera.
        self.pinhole = PinholeCamera.from_profile(profile.camera, image_size)
        self.camera = open_camera(camera, image_size) if camera is not None else None
        if self.camera is not None:
            self.camera.read()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        self.journal = Journal(Path(journal) if journal else
                               Path("journals") / f"{profile.name}-{stamp}.jsonl",
                               profile.name, profile.sha256)
        try:
            self.bus = FeetechBus.for_profile(port, profile, retries)
            self.safety.reset(self.calibration.to_controls(self.bus.read_positions(self.ids)))
            self.bus.write_velocities(self.calibration.speeds())
            self.bus.torque(self.ids, True)
            self.journal.append("torque", on=True, ids=self.ids)
            self._ramp(profile.neutral, "start-up")
            self._settle()
        except BaseException as exc:
            self._abandon_start_up(exc)
            if isinstance(exc, BusError):
                raise HardwareError(self._failed) from exc
            raise
        self._watchdog.start()

    def _abandon_start_up(self, exc: BaseException) -> None:
        """Nothing left powered, open or running; the journal says what happened."""
        if not self._failed:
            if isinstance(exc, BusError):
                try:
                    self._fail(exc, "start-up")  # torque off, journaled
                except HardwareError:
                    pass
            else:
                self.journal.append("fault", error=type(exc).__name__, message=str(exc),
                                    state="start-up abandoned: back to neutral, torque off")
        self.close()

    # -- sending -----------------------------------------------------------------------
    def _write(self, applied: np.ndarray, report: SafetyReport, why: str,
               requested=None) -> None:
        """Journal a filtered command, then put its goal positions on the wire."""
        if self._failed:
            raise HardwareError(self._failed)
        ticks = {sid: min(max(t, self._limits[sid][0]), self._limits[sid][1])
                 for sid, t in self.calibration.to_ticks(applied).items()}
        self.journal.append("command", why=why,
                            requested=[float(v) for v in (applied if requested is None
                                                          else requested)],
                            applied=[float(v) for v in applied], ticks=ticks,
                            reasons=report.reasons())
        try:
            self.bus.write_positions(ticks)
        except BusError as exc:
            self._fail(exc, why)
        self._goal = ticks

    def _ramp(self, goal, why: str) -> tuple[np.ndarray, SafetyReport]:
        """Send ``goal`` through the filter period by period until it is reached."""
        requested = self.safety.validate(goal)
        for applied, report in self.safety.ramp(requested, self.period):
            self._write(applied, report, why, requested)
            if not report.reached:
                time.sleep(self.period)
        return applied, report

    def _fail(self, exc: Exception, during: str):
        state = "the port is gone: the servos hold their last goal"
        if not isinstance(exc, PortGone):
            try:
                self.bus.torque_off_all()
                state = "torque is off on every servo"
            except BusError as again:
                state = f"torque-off failed too ({again})"
        self._failed = f"{type(exc).__name__} during {during}: {exc}; {state}"
        self.journal.append("fault", error=type(exc).__name__, message=str(exc), state=state)
        self.journal.flush()
        raise HardwareError(self._failed) from exc

    def _watch(self) -> None:
        while not self._stop.wait(self.period):
            with self._lock:
                idle = self._clock() - self._last_step
                if self._failed or idle < self.profile.watchdog_s or \
                        np.array_equal(self.safety.last, self.profile.neutral):
                    continue
                self.journal.append("watchdog", idle_s=idle)
                try:
                    self._ramp(self.profile.neutral, "watchdog")
                except HardwareError:
                    return
                self._frame, self._fresh_after = None, time.monotonic()

    # -- waiting for the face ----------------------------------------------------------
    def _read(self) -> dict[int, int]:
        if self._failed:
            raise HardwareError(self._failed)
        try:
            return self.bus.read_positions(self.ids)
        except BusError as exc:
            self._fail(exc, "read")

    def _settle(self) -> None:
        """Wait until every servo is at its goal (or has stopped short of it), then for a
        still camera image captured after that."""
        deadline = time.monotonic() + MAX_SETTLE_S
        previous, still = None, 0
        while time.monotonic() < deadline:
            present = self._read()
            arrived = all(abs(present[i] - g) <= SETTLE_TICKS for i, g in self._goal.items())
            stopped = previous is not None and all(abs(present[i] - previous[i]) <= 1
                                                   for i in present)
            still = still + 1 if arrived or stopped else 0
            if still >= 2:
                break
            previous = present
            time.sleep(self.period)
        self._fresh_after = time.monotonic()
        self._frame = self._still_frame(self._fresh_after) if self.camera else None

    def _still_frame(self, after: float) -> Frame:
        """Of frames captured after ``after``, the first that differs from one taken
        ``STILL_IMAGE_GAP_S`` before it by less than ``STILL_IMAGE_LEVEL``: the skin has
        stopped. A face still moving after ``MAX_SETTLE_S`` of camera time gives its
        newest frame."""
        before = self.camera.read_after(after, self.frame_wait_s)
        while True:
            now = self.camera.read_after(before.time + STILL_IMAGE_GAP_S, self.frame_wait_s)
            change = np.abs(now.image.astype(np.int16) - before.image).mean()
            if change < STILL_IMAGE_LEVEL or now.time - after > MAX_SETTLE_S:
                return now
            before = now

    # -- the backend interface ---------------------------------------------------------
    def reset(self, start, rng, randomization) -> None:
        with self._lock:
            self._ramp(self.profile.neutral if start is None else start, "reset")
            self._settle()
            self._last_step = self._clock()

    def step(self, action, mode: str) -> Stepped:
        with self._lock:
            began = time.monotonic()
            if mode == "period":
                applied, report = self.safety(action, self.period)
                self._write(applied, report, "step", action)
                time.sleep(max(0.0, self.period - (time.monotonic() - began)))
                self._frame, self._fresh_after = None, time.monotonic()
            else:
                applied, report = self._ramp(action, "step")
                self._settle()
            self._last_step = self._clock()
            # After one period the robot cannot tell it is at rest without waiting.
            return Stepped(applied, report, time.monotonic() - began, mode != "period")

    def observe(self) -> Seen:
        with self._lock:
            if self.camera is None:
                raise HardwareError("the serial backend has no camera; pass camera=")
            frame = self._frame or self.camera.read_after(self._fresh_after, self.frame_wait_s)
            present = self.calibration.to_controls(self._read())
            self._last_step = self._clock()  # an agent's idle time starts when it has seen
            return Seen(frame.image, present, self.pinhole)

    def settle_periods(self) -> int:
        return settle_periods(self.safety, self.period)

    def close(self) -> None:
        self._stop.set()
        if self._watchdog.is_alive():
            self._watchdog.join()
        with self._lock:
            try:
                if self.bus is not None and self.bus.torque_ids and not self._failed:
                    self._ramp(self.profile.neutral, "shut-down")
            except HardwareError:
                pass
            finally:
                if self.bus is not None and self.bus.is_open:
                    self.bus.close()  # torque off, then close
                    if not self._failed:
                        self.journal.append("torque", on=False, ids=self.ids)
                self.journal.close()
                if self.camera is not None:
                    self.camera.close()
