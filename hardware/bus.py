"""A Feetech STS servo bus over pyserial.

    with FeetechBus.for_profile("/dev/ttyUSB0", profile) as bus:  # torque off on exit, always
        bus.torque(ids, True)
        bus.write_positions({1: 2048, 2: 2100})    # one sync write
        bus.read_positions([1, 2])                 # one sync read
        bus.read_register(1, "Present_Temperature")

Registers are named as in the model's table (:mod:`facetwin.hardware.servo_models`).
Every exchange that expects an answer waits ``timeout_s`` and retries ``retries`` times
on silence or a corrupt reply before raising :class:`BusTimeout` or
:class:`CorruptPacket`. A servo's error bits raise the matching :class:`ServoFault`
subclass at once. A vanished port raises :class:`PortGone`.
"""

from __future__ import annotations

import termios
import threading
import time

import serial

from facetwin.hardware.protocol import (
    BROADCAST, PING, READ, SYNC_READ, WRITE, BusTimeout, CorruptPacket, Packet,
    PacketReader, PortGone, decode, encode, fault, packet, sync_write_packet,
)
from facetwin.hardware.servo_models import Register, ServoModel, check_hardware, servo_model
from facetwin.profile import Profile

_PORT_ERRORS = (serial.SerialException, OSError, TypeError, termios.error)


class FeetechBus:
    """A Feetech STS servo bus on a serial port (see the module's docstring).

    Args:
        port: the serial device (``/dev/ttyUSB0``, or a virtual bus's link).
        baudrate: the servos' rate.
        timeout_s: how long to wait for a servo's answer before a retry.
        retries: retries on silence or a corrupt reply before raising.
        model: the servo model whose register table is used.
    """

    def __init__(self, port: str, baudrate: int = 1_000_000, timeout_s: float = 0.01,
                 retries: int = 1, model: str | ServoModel = "STS3032"):
        self.port_name, self.baudrate = port, baudrate
        self.timeout_s, self.retries = timeout_s, retries
        self.model = servo_model(model) if isinstance(model, str) else model
        self.lock = threading.RLock()  # one exchange at a time (the watchdog shares the bus)
        self._reader = PacketReader()
        self.torque_ids: set[int] = set()
        self.attempts = 0  # packets sent that expected an answer, retries included
        try:
            self._serial = serial.Serial(port, baudrate, timeout=0, write_timeout=0.1)
        except (serial.SerialException, OSError) as exc:
            raise PortGone(f"cannot open servo bus {port!r}: {exc}") from None

    @classmethod
    def for_profile(cls, port: str, profile: Profile, retries: int = 1) -> FeetechBus:
        """The bus of ``profile``'s face: its baud rate, reply timeout and servo model
        (a model or rate the servos do not have is a ProfileError naming the file)."""
        baudrate, model = check_hardware(profile)
        return cls(port, baudrate, profile.hardware.reply_timeout_s, retries, model)

    # -- context -----------------------------------------------------------------------
    def __enter__(self) -> FeetechBus:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._serial.is_open

    def close(self) -> None:
        """Torque off on every servo (best effort), then close the port."""
        if self._serial.is_open:
            try:
                self.torque_off_all()
                self._serial.flush()  # out of the OS buffer before the port closes
            except (PortGone, *_PORT_ERRORS):
                pass
            self._serial.close()

    @property
    def corrupt_packets(self) -> int:
        return self._reader.corrupt

    # -- raw I/O -----------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        try:
            self._serial.reset_input_buffer()
            self._reader.buffer.clear()
            self._serial.write(data)
        except _PORT_ERRORS as exc:
            raise PortGone(f"servo bus {self.port_name!r} is gone: {exc}") from None

    def _receive(self, ids: list[int], deadline: float) -> dict[int, Packet]:
        got: dict[int, Packet] = {}
        wanted = set(ids)
        corrupt_before = self._reader.corrupt
        # Every reply in, good or corrupt: nothing more will come, so no use waiting.
        while len(got) + self._reader.corrupt - corrupt_before < len(wanted):
            left = deadline - time.perf_counter()
            try:
                # Past the deadline, still take what already arrived: a process that was
                # descheduled must not throw away the reply waiting in its buffer.
                self._serial.timeout = max(left, 0.0)
                data = self._serial.read(max(1, self._serial.in_waiting))
            except _PORT_ERRORS as exc:
                raise PortGone(f"servo bus {self.port_name!r} is gone: {exc}") from None
            for p in self._reader.feed(data):
                if p.servo_id in wanted:
                    got[p.servo_id] = p
            if left <= 0:
                break
        return got

    def exchange(self, data: bytes, ids: list[int]) -> dict[int, Packet]:
        """Send ``data`` and collect one status packet from each of ``ids``, retrying
        the whole exchange on silence or corruption; raise on servo errors."""
        with self.lock:
            for _ in range(self.retries + 1):
                corrupt_before = self._reader.corrupt
                self._send(data)
                self.attempts += 1
                got = self._receive(ids, time.perf_counter() + self.timeout_s)
                if len(got) == len(ids):
                    for p in got.values():
                        if p.code:
                            raise fault(p.servo_id, p.code)
                    return got
            missing = sorted(set(ids) - got.keys())
            if self._reader.corrupt > corrupt_before:
                raise CorruptPacket(f"servo(s) {missing}: corrupt replies after "
                                    f"{self.retries + 1} tries")
            raise BusTimeout(f"servo(s) {missing}: no reply within {self.timeout_s * 1e3:.1f} "
                             f"ms after {self.retries + 1} tries")

    # -- instructions ------------------------------------------------------------------
    def ping(self, servo_id: int) -> None:
        self.exchange(packet(servo_id, PING), [servo_id])

    def read(self, servo_id: int, address: int, length: int) -> bytes:
        reply = self.exchange(packet(servo_id, READ, bytes([address, length])), [servo_id])
        data = reply[servo_id].params
        if len(data) != length:
            raise CorruptPacket(f"servo {servo_id}: read {length} bytes at {address}, "
                                f"got {len(data)}")
        return data

    def write(self, servo_id: int, address: int, data: bytes) -> None:
        code = packet(servo_id, WRITE, bytes([address]) + bytes(data))
        if servo_id == BROADCAST:
            with self.lock:
                self._send(code)
        else:
            self.exchange(code, [servo_id])

    def sync_write(self, address: int, data: dict[int, bytes]) -> None:
        """One packet for all servos; servos do not answer a sync write."""
        with self.lock:
            self._send(sync_write_packet(address, data))

    def sync_read(self, address: int, length: int, ids: list[int]) -> dict[int, bytes]:
        code = packet(BROADCAST, SYNC_READ, bytes([address, length]) + bytes(ids))
        reply = self.exchange(code, list(ids))
        bad = [i for i, p in reply.items() if len(p.params) != length]
        if bad:
            raise CorruptPacket(f"servo(s) {bad}: sync read of {length} bytes came back short")
        return {i: reply[i].params for i in ids}

    # -- registers by name -------------------------------------------------------------
    def read_register(self, servo_id: int, name: str) -> int:
        r = self.model.register(name)
        return decode(r, self.read(servo_id, r.address, r.size))

    def write_register(self, servo_id: int, name: str, value: int) -> None:
        r = self._writable(name)
        self.write(servo_id, r.address, encode(r, value))

    def sync_write_register(self, name: str, values: dict[int, int]) -> None:
        r = self._writable(name)
        self.sync_write(r.address, {i: encode(r, v) for i, v in values.items()})

    def _writable(self, name: str) -> Register:
        r = self.model.register(name)
        if not r.writable:
            raise ValueError(f"register {name} of {self.model.name} is read-only")
        return r

    def sync_read_register(self, name: str, ids) -> dict[int, int]:
        r = self.model.register(name)
        return {i: decode(r, d) for i, d in self.sync_read(r.address, r.size, list(ids)).items()}

    # -- servo-level helpers -----------------------------------------------------------
    def torque(self, ids, on: bool) -> None:
        ids = list(ids)
        self.sync_write_register("Torque_Enable", {i: int(on) for i in ids})
        self.torque_ids = self.torque_ids | set(ids) if on else self.torque_ids - set(ids)

    def torque_off_all(self) -> None:
        self.write_register(BROADCAST, "Torque_Enable", 0)
        self.torque_ids = set()

    def write_positions(self, ticks: dict[int, int]) -> None:
        self.sync_write_register("Goal_Position", ticks)

    def write_velocities(self, ticks_per_s: dict[int, int]) -> None:
        self.sync_write_register("Goal_Velocity", ticks_per_s)

    def read_positions(self, ids) -> dict[int, int]:
        return self.sync_read_register("Present_Position", ids)

    def read_status(self, servo_id: int) -> dict[str, int]:
        """Position, speed, load (0.1 %), voltage (0.1 V) and temperature of one servo,
        read in one exchange."""
        names = ("Present_Position", "Present_Velocity", "Present_Load", "Present_Voltage",
                 "Present_Temperature")
        regs = [self.model.register(n) for n in names]
        first = regs[0].address
        block = self.read(servo_id, first, regs[-1].address + regs[-1].size - first)
        values = [decode(r, block[r.address - first:]) for r in regs]
        return dict(zip(("position", "speed", "load", "voltage", "temperature"), values))
