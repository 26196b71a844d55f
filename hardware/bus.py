"""A Feetech STS/SCS servo bus over pyserial.

    with FeetechBus("/dev/ttyUSB0") as bus:      # torque goes off on exit, always
        bus.torque(ids, True)
        bus.write_positions({1: 2048, 2: 2100})   # one sync write
        bus.read_positions([1, 2])                # one sync read

Every exchange that expects an answer waits ``timeout_s`` and retries ``retries``
times on silence or a corrupt reply before raising :class:`BusTimeout` or
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
    PacketReader, PortGone, Reg, fault, from_u16, packet, signed, sync_write_packet, u16,
)


class FeetechBus:
    def __init__(self, port: str, baudrate: int = 1_000_000, timeout_s: float = 0.004,
                 retries: int = 1):
        self.port_name, self.baudrate = port, baudrate
        self.timeout_s, self.retries = timeout_s, retries
        self.lock = threading.RLock()  # one exchange at a time (the watchdog shares the bus)
        self._reader = PacketReader()
        self.torque_ids: set[int] = set()
        try:
            self._serial = serial.Serial(port, baudrate, timeout=0, write_timeout=0.1)
        except (serial.SerialException, OSError) as exc:
            raise PortGone(f"cannot open servo bus {port!r}: {exc}") from None

    # -- context -----------------------------------------------------------------------
    def __enter__(self) -> FeetechBus:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Torque off on every servo (best effort), then close the port."""
        if self._serial.is_open:
            try:
                self.torque_off_all()
                self._serial.flush()  # out of the OS buffer before the port closes
            except (PortGone, serial.SerialException, OSError, termios.error):
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
        except (serial.SerialException, OSError, termios.error) as exc:
            raise PortGone(f"servo bus {self.port_name!r} is gone: {exc}") from None

    def _receive(self, ids: list[int], deadline: float) -> dict[int, Packet]:
        got: dict[int, Packet] = {}
        wanted = set(ids)
        while wanted - got.keys():
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                self._serial.timeout = left
                data = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError, TypeError, termios.error) as exc:
                raise PortGone(f"servo bus {self.port_name!r} is gone: {exc}") from None
            for p in self._reader.feed(data):
                if p.servo_id in wanted:
                    got[p.servo_id] = p
        return got

    def exchange(self, data: bytes, ids: list[int]) -> dict[int, Packet]:
        """Send ``data`` and collect one status packet from each of ``ids``, retrying
        the whole exchange on silence or corruption; raise on servo errors."""
        with self.lock:
            for attempt in range(self.retries + 1):
                corrupt_before = self._reader.corrupt
                self._send(data)
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

    # -- servo-level helpers -----------------------------------------------------------
    def torque(self, ids, on: bool) -> None:
        ids = list(ids)
        self.sync_write(Reg.TORQUE_ENABLE, {i: bytes([int(on)]) for i in ids})
        self.torque_ids = self.torque_ids | set(ids) if on else self.torque_ids - set(ids)

    def torque_off_all(self) -> None:
        self.write(BROADCAST, Reg.TORQUE_ENABLE, b"\x00")
        self.torque_ids = set()

    def write_positions(self, ticks: dict[int, int]) -> None:
        self.sync_write(Reg.GOAL_POSITION, {i: u16(t) for i, t in ticks.items()})

    def write_velocities(self, steps_per_s: dict[int, int]) -> None:
        self.sync_write(Reg.GOAL_VELOCITY, {i: u16(v) for i, v in steps_per_s.items()})

    def read_positions(self, ids) -> dict[int, int]:
        return {i: from_u16(d) for i, d in self.sync_read(Reg.PRESENT_POSITION, 2,
                                                          list(ids)).items()}

    def read_status(self, servo_id: int) -> dict[str, int]:
        """Position, speed, load (0.1 %), voltage (0.1 V) and temperature of one servo."""
        d = self.read(servo_id, Reg.PRESENT_POSITION, 8)
        return {"position": from_u16(d[0:2]), "speed": signed(from_u16(d[2:4]), 15),
                "load": signed(from_u16(d[4:6]), 10), "voltage": d[6], "temperature": d[7]}
