"""Feetech STS serial-bus protocol: packets, checksums, register encoding, typed errors.

Instruction packet: ``FF FF ID LEN INSTR PARAMS... CHECKSUM`` with LEN = len(PARAMS) + 2
and CHECKSUM = ~(ID + LEN + INSTR + sum(PARAMS)) & 0xFF. A status packet has the same
shape with the servo's error byte in place of INSTR. STS servos store 16-bit registers
little-endian, signed values as sign and magnitude; SCS servos (big-endian) are not
supported. Register addresses live in :mod:`facetwin.hardware.servo_models`; error bits
follow Feetech's SCServo SDK (``ERRBIT_*``).
"""

from __future__ import annotations

from dataclasses import dataclass

from facetwin.errors import FaceTwinError
from facetwin.hardware.servo_models import Register

HEADER = b"\xff\xff"
BROADCAST = 0xFE
MAX_LEN = 250  # longest LEN the parser accepts (the SDK's packet buffer)

PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83


# -- errors ------------------------------------------------------------------------------
class BusError(FaceTwinError, RuntimeError):
    """Anything that went wrong on the servo bus."""


class BusTimeout(BusError):
    """A servo did not answer in time (after the retries)."""


class CorruptPacket(BusError):
    """A reply whose checksum or framing is wrong (after the retries)."""


class PortGone(BusError):
    """The serial port disappeared (unplugged adapter, closed pseudo-terminal)."""


class ServoFault(BusError):
    """A servo reported an error in its status byte."""

    bit = 0

    def __init__(self, servo_id: int, error_byte: int):
        self.servo_id, self.error_byte = servo_id, error_byte
        names = [cls.describe for cls in FAULTS if error_byte & cls.bit] or \
            [f"unknown error bits 0x{error_byte:02x}"]
        super().__init__(f"servo {servo_id}: {', '.join(names)}")


class InputVoltageError(ServoFault):
    bit, describe = 0x01, "input voltage out of range"


class AngleLimitError(ServoFault):
    bit, describe = 0x02, "goal outside the angle limits"


class OverheatError(ServoFault):
    bit, describe = 0x04, "overheating"


class OvercurrentError(ServoFault):
    bit, describe = 0x08, "overcurrent"


class OverloadError(ServoFault):
    bit, describe = 0x20, "overload"


FAULTS = (InputVoltageError, AngleLimitError, OverheatError, OvercurrentError, OverloadError)


def fault(servo_id: int, error_byte: int) -> ServoFault:
    """The typed error for a status byte; the most serious bit names the class."""
    for cls in (OverloadError, OvercurrentError, OverheatError, InputVoltageError,
                AngleLimitError):
        if error_byte & cls.bit:
            return cls(servo_id, error_byte)
    return ServoFault(servo_id, error_byte)


# -- packets -----------------------------------------------------------------------------
def checksum(body: bytes | bytearray) -> int:
    """Checksum over ID, LEN, INSTR/ERROR and the parameters."""
    return ~sum(body) & 0xFF


def packet(servo_id: int, code: int, params: bytes = b"") -> bytes:
    """An instruction (or status) packet."""
    if not 0 <= servo_id <= 0xFE:
        raise ValueError(f"servo id must be 0-254, got {servo_id}")
    if len(params) + 2 > MAX_LEN:
        raise ValueError(f"{len(params)} parameter bytes do not fit in one packet")
    body = bytes([servo_id, len(params) + 2, code]) + bytes(params)
    return HEADER + body + bytes([checksum(body)])


def sync_write_packet(address: int, data: dict[int, bytes]) -> bytes:
    sizes = {len(d) for d in data.values()}
    if len(sizes) != 1:
        raise ValueError("sync write needs the same number of bytes for every servo")
    params = bytes([address, sizes.pop()]) + b"".join(bytes([i]) + d for i, d in data.items())
    return packet(BROADCAST, SYNC_WRITE, params)


def encode(register: Register, value: int) -> bytes:
    """A register value as the bytes an STS servo stores (little-endian, sign-magnitude)."""
    value = int(value)
    if register.sign_bit is not None and value < 0:
        value = -value | (1 << register.sign_bit)
    return (value & ((1 << 8 * register.size) - 1)).to_bytes(register.size, "little")


def decode(register: Register, data: bytes) -> int:
    value = int.from_bytes(bytes(data[:register.size]), "little")
    if register.sign_bit is not None and value & (1 << register.sign_bit):
        return -(value & ((1 << register.sign_bit) - 1))
    return value


@dataclass(frozen=True)
class Packet:
    servo_id: int
    code: int  # instruction, or the error byte of a status packet
    params: bytes


class PacketReader:
    """Frames packets out of a byte stream, resynchronising after garbage.

    Corrupt frames (bad checksum or impossible length) are skipped and counted; the
    reader never raises on any input.
    """

    def __init__(self):
        self.buffer = bytearray()
        self.corrupt = 0

    def feed(self, data: bytes) -> list[Packet]:
        self.buffer += data
        out = []
        buf = self.buffer
        while True:
            start = buf.find(HEADER)
            if start < 0:
                del buf[:max(0, len(buf) - 1)]  # keep a trailing 0xFF: half a header
                return out
            del buf[:start]
            if len(buf) < 4:
                return out
            if buf[2] == 0xFF:  # a longer run of 0xFF: the header starts one later
                del buf[:1]
                continue
            length = buf[3]
            if length < 2 or length > MAX_LEN:
                self.corrupt += 1
                del buf[:2]
                continue
            if len(buf) < 4 + length:
                return out
            frame = bytes(buf[:4 + length])
            if checksum(frame[2:-1]) != frame[-1]:
                self.corrupt += 1
                del buf[:2]
                continue
            del buf[:4 + length]
            out.append(Packet(frame[2], frame[4], frame[5:-1]))
