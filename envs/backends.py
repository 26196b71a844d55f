"""Backends: what the env drives. The env filters every command before it gets here.

A backend moves the face to a command, lets time pass (one control period, or until the
face is still), reports the present control positions and a camera image. The twin
backend is the MuJoCo face; the serial backend is a Feetech bus with a camera, and
applies the safety filter a second time itself.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from facetwin.envs.safety import SafetyFilter
from facetwin.hardware.bus import FeetechBus
from facetwin.hardware.calibration import Calibration
from facetwin.hardware.camera import open_camera
from facetwin.hardware.journal import Journal
from facetwin.hardware.protocol import BusError, PortGone
from facetwin.profile import Profile

SETTLE_TICKS = 2  # present positions within this of the goal count as arrived
MAX_SETTLE_S = 1.5
STILL_IMAGE_GAP_S = 0.06  # longer than a 25 fps camera's frame interval
STILL_IMAGE_LEVEL = 0.3  # mean absolute pixel change that counts as still


class HardwareError(RuntimeError):
    """The physical face (or the virtual bus standing in for it) failed; the message
    says what happened and what state the face was left in."""


class TwinBackend:
    def __init__(self, twin, renderer, period_steps: int):
        self.twin, self.renderer, self.period_steps = twin, renderer, period_steps
        self.last_applied = twin.profile.neutral.astype(float)

    def reset(self, controls, rng, randomization) -> None:
        self.twin.reset(controls=controls, rng=rng, randomization=randomization)
        self.last_applied = np.array(controls if controls is not None else
                                     self.twin.profile.neutral, dtype=float)

    def command(self, applied: np.ndarray) -> None:
        self.twin.command(applied)
        self.last_applied = applied.copy()

    def advance(self) -> int:
        self.twin.step(self.period_steps)
        return self.period_steps

    def settle(self) -> int:
        return self.twin.settle()

    def present(self) -> np.ndarray:
        return self.twin.present_controls()

    def image(self) -> np.ndarray:
        return self.renderer.render()

    def close(self) -> None:
        """Nothing to release: the env owns the twin and its renderer."""


class SerialBackend:
    """A face on a Feetech bus. Start-up ramps to neutral with torque on; ``close``
    ramps back to neutral and turns torque off; a watchdog ramps to neutral when no
    command arrives for the profile's ``watchdog_s``; any bus fault turns torque off
    (when the port still exists) and raises :class:`HardwareError`."""

    def __init__(self, profile: Profile, port: str, camera, image_size: int,
                 calibration: Calibration | str | Path | None = None,
                 journal: str | Path | None = None, timeout_s: float = 0.006,
                 retries: int = 1):
        self.profile = profile
        self.period = profile.control_period_s
        self.calibration = calibration if isinstance(calibration, Calibration) else \
            Calibration.load(profile, Path(calibration) if calibration else None)
        self.ids = self.calibration.ids
        self.filter = SafetyFilter(profile)  # defence in depth: the env filtered already
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        self.journal = Journal(Path(journal) if journal else
                               Path("journals") / f"{profile.name}-{stamp}.jsonl",
                               profile.name, profile.sha256)
        self.camera = open_camera(camera, image_size) if camera is not None else None
        self._goal: dict[int, int] = {}
        self._lock = threading.RLock()  # the watchdog thread sends too
        self._failed: str | None = None
        self._last_command = time.monotonic()
        self._stop = threading.Event()
        try:
            self.bus = FeetechBus(port, profile.hardware.baudrate, timeout_s, retries)
            present = self.calibration.to_controls(self.bus.read_positions(self.ids))
            self.filter.reset(present)
            self.bus.write_velocities(self.calibration.speeds())
            self.bus.torque(self.ids, True)
            self.journal.append("torque", on=True, ids=self.ids)
            self._ramp(profile.neutral, "start-up")
        except BusError as exc:
            self._fail(exc, "start-up")
        self._watchdog = threading.Thread(target=self._watch, daemon=True, name="watchdog")
        self._watchdog.start()

    @property
    def last_applied(self) -> np.ndarray:
        return self.filter.last.copy()

    # -- sending -----------------------------------------------------------------------
    def _send(self, controls: np.ndarray, why: str) -> None:
        """Filter again, journal, then put the goal positions on the wire."""
        with self._lock:
            if self._failed:
                raise HardwareError(self._failed)
            safe, report = self.filter(controls, self.period)
            ticks = self.calibration.to_ticks(safe)
            self.journal.append("command", why=why, requested=[float(v) for v in controls],
                                applied=[float(v) for v in safe], ticks=ticks,
                                reasons=report.reasons())
            try:
                self.bus.write_positions(ticks)
            except BusError as exc:
                self._fail(exc, why)
            self._goal = ticks
            self._last_command = time.monotonic()

    def _ramp(self, goal: np.ndarray, why: str) -> None:
        for _ in self.filter.ramp(goal, self.period):
            self._send(self.filter.last, why)
            time.sleep(self.period)

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
            if self._failed or time.monotonic() - self._last_command < self.profile.watchdog_s:
                continue
            if np.array_equal(self.filter.last, self.profile.neutral):
                continue
            try:
                with self._lock:
                    self.journal.append("watchdog", idle_s=time.monotonic() - self._last_command)
                    self._send(self.profile.neutral, "watchdog")
            except HardwareError:
                return

    # -- the backend interface ---------------------------------------------------------
    def reset(self, controls, rng, randomization) -> None:
        self._ramp(self.profile.neutral if controls is None else controls, "reset")
        self.settle()

    def command(self, applied: np.ndarray) -> None:
        self._send(applied, "step")

    def advance(self) -> int:
        elapsed = time.monotonic() - self._last_command
        time.sleep(max(0.0, self.period - elapsed))
        return 1

    def settle(self) -> int:
        """Wait until every servo is at its goal (or has stopped short of it)."""
        start, previous, still = time.monotonic(), None, 0
        while time.monotonic() - start < MAX_SETTLE_S:
            present = self._read()
            arrived = all(abs(present[i] - g) <= SETTLE_TICKS for i, g in self._goal.items())
            stopped = previous is not None and all(abs(present[i] - previous[i]) <= 1
                                                   for i in present)
            still = still + 1 if arrived or stopped else 0
            if still >= 2:
                break
            previous = present
            self.advance()
            self._last_command = time.monotonic()  # waiting for the face is not idling
        self._wait_for_still_image(start)
        return int(round((time.monotonic() - start) / self.period))

    def _wait_for_still_image(self, start: float) -> None:
        """The skin keeps moving after the servos stop: wait until the camera sees no
        change over a few periods (longer than a camera frame interval)."""
        if self.camera is None:
            return
        before = self.camera.read().astype(np.int16)
        while time.monotonic() - start < MAX_SETTLE_S:
            time.sleep(STILL_IMAGE_GAP_S)
            self._last_command = time.monotonic()
            now = self.camera.read().astype(np.int16)
            if np.abs(now - before).mean() < STILL_IMAGE_LEVEL:
                return
            before = now

    def _read(self) -> dict[int, int]:
        if self._failed:
            raise HardwareError(self._failed)
        try:
            return self.bus.read_positions(self.ids)
        except BusError as exc:
            self._fail(exc, "read")

    def present(self) -> np.ndarray:
        return self.calibration.to_controls(self._read())

    def image(self) -> np.ndarray:
        if self.camera is None:
            raise HardwareError("the serial backend has no camera; pass camera=")
        return self.camera.read()

    def close(self) -> None:
        self._stop.set()
        try:
            if not self._failed:
                self._ramp(self.profile.neutral, "shut-down")
        except HardwareError:
            pass
        finally:
            if not self._failed:
                self.bus.close()  # torque off, then close
                self.journal.append("torque", on=False, ids=self.ids)
            self.journal.close()
            if self.camera is not None:
                self.camera.close()
