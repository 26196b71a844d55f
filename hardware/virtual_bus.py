"""A virtual Feetech bus: servos that answer the real protocol on a pseudo-terminal.

    bus = VirtualBus.for_profile(profile, link="/tmp/face")   # /tmp/face -> /dev/pts/N
    bus.start()
    ...                                  # FeetechBus("/tmp/face") talks to it
    bus.faults.silent.add(5)             # servo 5 stops answering
    bus.stop()

Each servo has a register table, moves toward its goal at its goal velocity, and
reports position, speed, load and temperature. Faults can be injected: silence,
corrupted checksums, status error bits, and the port vanishing. An optional plant (the
twin, handed in from outside: this module knows nothing of physics) follows the
servos' present positions.
"""

from __future__ import annotations

import collections
import os
import select
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from facetwin.errors import FaceTwinError
from facetwin.files import Busy, hold_lock
from facetwin.hardware.protocol import (
    BROADCAST, PING, READ, SYNC_READ, SYNC_WRITE, WRITE, AngleLimitError, PacketReader, decode,
    encode, packet,
)
from facetwin.hardware.servo_models import EEPROM_END, ServoModel, check_hardware, servo_model
from facetwin.profile import Profile


class LinkError(FaceTwinError, RuntimeError):
    """The link path cannot become this bus's port; the message says why."""


class Plant(Protocol):
    """What the servos move: told the present positions (ticks) and when they were read
    (``time.monotonic()``)."""

    def update(self, present: dict[int, int], now: float) -> None: ...
    def close(self) -> None: ...


@dataclass
class Faults:
    silent: set[int] = field(default_factory=set)  # servo ids that do not answer
    corrupt: set[int] = field(default_factory=set)  # servo ids whose replies are corrupted
    error_bits: dict[int, int] = field(default_factory=dict)  # status error byte per id


class VirtualServo:
    """One servo's register table and motion, as a Feetech STS servo behaves: it powers up
    with torque on, holding where it is; a goal position within its limits makes it move
    at its goal velocity (0 meaning its top speed); EEPROM ignores writes while locked
    and read-only registers ignore them always."""

    def __init__(self, servo_id: int, position: int, limits: tuple[int, int] = (0, 4095),
                 model: str | ServoModel = "STS3032"):
        self.id = servo_id
        self.model = servo_model(model) if isinstance(model, str) else model
        self.regs = bytearray(256)
        self._writable = bytearray(256)
        for r in self.model.registers.values():
            self._writable[r.address:r.address + r.size] = bytes([r.writable]) * r.size
        for name, value in (("Model_Number", self.model.number), ("ID", servo_id),
                            ("Min_Position_Limit", limits[0]), ("Max_Position_Limit", limits[1]),
                            ("Max_Temperature_Limit", 70), ("Max_Torque_Limit", 1000),
                            ("Torque_Limit", 1000), ("Torque_Enable", 1), ("Lock", 1),
                            ("Present_Voltage", 74), ("Goal_Position", position)):
            self.set(name, value)
        self.position = float(position)
        self.temperature = 30.0
        self.load = 0.0
        self.angle_fault = False
        self._publish(0.0)

    def get(self, name: str) -> int:
        r = self.model.register(name)
        return decode(r, self.regs[r.address:r.address + r.size])

    def set(self, name: str, value: int) -> None:
        r = self.model.register(name)
        self.regs[r.address:r.address + r.size] = encode(r, value)

    @property
    def limits(self) -> tuple[int, int]:
        return self.get("Min_Position_Limit"), self.get("Max_Position_Limit")

    @property
    def torque_on(self) -> bool:
        return bool(self.get("Torque_Enable"))

    def write(self, address: int, data: bytes) -> None:
        locked = bool(self.get("Lock"))
        for k, byte in enumerate(data):
            a = address + k
            if a < len(self.regs) and self._writable[a] and not (locked and a < EEPROM_END):
                self.regs[a] = byte
        goal = self.model.register("Goal_Position")
        if address < goal.address + goal.size and goal.address < address + len(data):
            lo, hi = self.limits
            target = self.get("Goal_Position")
            self.angle_fault = not lo <= target <= hi
            self.set("Goal_Position", min(max(target, lo), hi))

    def turn_by_hand(self, position: int) -> None:
        """What an operator does during calibration: move the horn with torque off."""
        if not self.torque_on:
            self.position = float(position)
            self._publish(0.0)

    def step(self, dt: float) -> None:
        speed = 0.0
        if self.torque_on:
            goal = self.get("Goal_Position")
            v = abs(self.get("Goal_Velocity")) or self.model.max_speed
            delta = max(-v * dt, min(v * dt, goal - self.position))
            self.position += delta
            speed = delta / dt if dt > 0 else 0.0
        self.load = 0.9 * self.load + 0.1 * min(1000.0, abs(speed) / self.model.max_speed * 1000.0)
        heating = 0.002 * self.load if self.torque_on else 0.0
        self.temperature += (heating - 0.01 * (self.temperature - 30.0)) * dt
        self._publish(speed)

    def _publish(self, speed: float) -> None:
        self.set("Present_Position", int(round(self.position)))
        self.set("Present_Velocity", max(-0x7FFF, min(0x7FFF, int(round(speed)))))
        self.set("Present_Load", min(int(self.load), 1000))
        self.set("Present_Temperature", int(self.temperature))
        self.set("Moving", int(abs(speed) > 0.5))


class VirtualBus:
    """Servos on a pseudo-terminal, answering the Feetech protocol as real ones do (their
    registers, speed-limited motion, load, temperature, injected faults), optionally
    driving a plant (the twin) with their present positions.

    Args:
        link: where the symlink to the pseudo-terminal is made (the port to open).
        servos: the servos by id.
        plant: what the servos move, told their positions every ``plant_period_s``.
    """

    def __init__(self, link: str | Path, servos: dict[int, VirtualServo],
                 plant: Plant | None = None, plant_period_s: float = 0.02):
        self.link = Path(link)
        self.servos = servos
        self.plant, self.plant_period_s = plant, plant_period_s
        self.faults = Faults()
        self.goal_log: collections.deque = collections.deque(maxlen=200_000)
        self._goal_register = next(iter(servos.values())).model.register("Goal_Position")
        self.packets_seen = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._master: int | None = None
        self._slave: int | None = None
        self._port: str | None = None  # the pseudo-terminal the link points at
        self._link_lock = None

    @classmethod
    def for_profile(cls, profile: Profile, link: str | Path, calibration=None,
                    plant: Plant | None = None) -> VirtualBus:
        """The profile's servos, each at its calibrated neutral, limited to its range."""
        from facetwin.hardware.calibration import Calibration

        _, model = check_hardware(profile)
        cal = calibration or Calibration.load(profile)
        servos = {sid: VirtualServo(sid, s.neutral, s.limits, model)
                  for sid, s in cal.servos.items()}
        return cls(link, servos, plant)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> VirtualBus:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        try:
            self._claim_link(os.ttyname(self._slave))
        except BaseException:
            self.stop()  # the bus owns its plant: nothing is left running
            raise
        self._threads = [threading.Thread(target=self._serve, daemon=True, name="virtual-bus")]
        if self.plant is not None:
            self._threads.append(threading.Thread(target=self._drive_plant, daemon=True,
                                                  name="virtual-bus-plant"))
        for t in self._threads:
            t.start()
        return self

    def _claim_link(self, port: str) -> None:
        """Point the link at ``port``. A running bus holds a lock beside its link, so a
        link whose lock is free is stale and may go; anything else stays, with the reason."""
        link = self.link
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            self._link_lock = hold_lock(link.with_name(f".{link.name}.lock"),
                                        f"{link}, a virtual bus's port,")
        except Busy as exc:
            raise LinkError(f"{exc}: stop that bus, or give another --link") from None
        except OSError as exc:
            raise LinkError(f"cannot make the link {link}: {exc.strerror or exc}") from None
        if link.is_symlink() and os.readlink(link).startswith("/dev/pts/"):
            link.unlink()  # its bus is gone: the lock was free
        elif link.is_symlink() or link.exists():
            what = f"a link to {os.readlink(link)}" if link.is_symlink() else "not a link"
            raise LinkError(f"{link} exists and is {what}, not a virtual bus's port; refusing "
                            "to replace it: give another --link")
        link.symlink_to(port)
        self._port = port

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self.vanish()
        if self.plant is not None:
            self.plant.close()
        if self._link_lock is not None:
            self._link_lock.close()  # releases the lock
            self._link_lock = None

    def __enter__(self) -> VirtualBus:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def vanish(self) -> None:
        """The port disappears, as when a USB adapter is pulled."""
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        if self._port is not None and self.link.is_symlink() and \
                os.readlink(self.link) == self._port:
            self.link.unlink()  # ours alone: never another bus's link
        self._port = None

    # -- serving -----------------------------------------------------------------------
    def _serve(self) -> None:
        reader = PacketReader()
        last = time.perf_counter()
        while not self._stop.is_set():
            master = self._master
            if master is None:
                return
            try:
                ready, _, _ = select.select([master], [], [], 0.001)
                data = os.read(master, 4096) if ready else b""
            except (OSError, ValueError):
                return
            now = time.perf_counter()
            with self.lock:
                for s in self.servos.values():
                    s.step(now - last)
                last = now
                replies = b"".join(self._answer(p) for p in reader.feed(data))
            if replies:
                try:
                    os.write(master, replies)
                except OSError:
                    return

    def _answer(self, p) -> bytes:
        self.packets_seen += 1
        if p.code == SYNC_WRITE and p.servo_id == BROADCAST and len(p.params) >= 2:
            address, size = p.params[0], p.params[1]
            body, written = p.params[2:], {}
            for k in range(0, len(body) - size, size + 1):
                sid, data = body[k], bytes(body[k + 1:k + 1 + size])
                if sid in self.servos:
                    self.servos[sid].write(address, data)
                    written[sid] = data
            self._log_goals(address, written)
            return b""
        if p.code == SYNC_READ and p.servo_id == BROADCAST and len(p.params) >= 2:
            address, size = p.params[0], p.params[1]
            return b"".join(self._status(sid, bytes(self.servos[sid].regs[address:address + size]))
                            for sid in p.params[2:] if sid in self.servos)
        if p.code == WRITE and len(p.params) >= 1:
            targets = self.servos.values() if p.servo_id == BROADCAST else \
                [self.servos[p.servo_id]] if p.servo_id in self.servos else []
            data = bytes(p.params[1:])
            for s in targets:
                s.write(p.params[0], data)
            self._log_goals(p.params[0], {s.id: data for s in targets})
            return b"" if p.servo_id == BROADCAST else self._status(p.servo_id, b"")
        if p.code == READ and len(p.params) == 2 and p.servo_id in self.servos:
            address, size = p.params
            return self._status(p.servo_id, bytes(self.servos[p.servo_id].regs[address:address
                                                                               + size]))
        if p.code == PING:
            return self._status(p.servo_id, b"")
        return b""

    def _log_goals(self, address: int, written: dict[int, bytes]) -> None:
        """Record goal positions as the servos received them (tests check the wire)."""
        goal = self._goal_register
        goals = {sid: decode(goal, data) for sid, data in written.items()
                 if address == goal.address and len(data) >= goal.size}
        if goals:
            self.goal_log.append((time.monotonic(), goals))

    def _status(self, sid: int, params: bytes) -> bytes:
        servo = self.servos.get(sid)
        if servo is None or sid in self.faults.silent:
            return b""
        error = self.faults.error_bits.get(sid, 0) | (AngleLimitError.bit if servo.angle_fault
                                                      else 0)
        out = bytearray(packet(sid, error, params))
        if sid in self.faults.corrupt:
            out[-1] ^= 0x5A
        return bytes(out)

    # -- plant -------------------------------------------------------------------------
    def present(self) -> dict[int, int]:
        with self.lock:
            return {sid: int(round(s.position)) for sid, s in self.servos.items()}

    def _drive_plant(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.plant.update(self.present(), started)
            self._stop.wait(max(0.0, self.plant_period_s - (time.monotonic() - started)))
