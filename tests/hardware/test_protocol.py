import numpy as np
import pytest

from facetwin.hardware import protocol as proto
from facetwin.hardware.servo_models import servo_model


def test_packets_match_the_documented_layout():
    sts = servo_model("STS3215")
    goal = sts.register("Goal_Position")
    # PING servo 1: FF FF 01 02 01 ~(1+2+1)=0xFB
    assert proto.packet(1, proto.PING) == bytes([0xFF, 0xFF, 0x01, 0x02, 0x01, 0xFB])
    # WRITE goal position 2048 (little-endian) to servo 3.
    p = proto.packet(3, proto.WRITE, bytes([goal.address]) + proto.encode(goal, 2048))
    assert p[:5] == bytes([0xFF, 0xFF, 3, 5, 3]) and p[5:8] == bytes([42, 0x00, 0x08])
    assert p[-1] == ~(3 + 5 + 3 + 42 + 0x00 + 0x08) & 0xFF
    sync = proto.sync_write_packet(42, {1: proto.encode(goal, 100), 2: proto.encode(goal, 200)})
    assert sync[2] == proto.BROADCAST and sync[4] == proto.SYNC_WRITE
    assert sync[5:7] == bytes([42, 2]) and sync[7] == 1 and sync[10] == 2


def test_registers_encode_as_sts_servos_store_them():
    sts = servo_model("STS3032")
    speed, load = sts.register("Present_Velocity"), sts.register("Present_Load")
    assert proto.decode(speed, bytes([25, 0x80])) == -25  # sign-magnitude, bit 15
    assert proto.decode(load, bytes([7, 0x04])) == -7  # bit 10
    for register, value in ((speed, -300), (speed, 300), (load, -999),
                            (sts.register("Goal_Position"), 4095),
                            (sts.register("Torque_Enable"), 1)):
        assert proto.decode(register, proto.encode(register, value)) == value
    with pytest.raises(KeyError, match="not supported.*STS3215"):
        servo_model("SCS0009")  # big-endian words: refused, not half driven


def test_reader_reframes_split_noisy_and_corrupt_streams():
    good = [proto.packet(i, 0, bytes([i, 2 * i])) for i in range(1, 6)]
    bad = bytearray(proto.packet(9, 0, b"\x01"))
    bad[-1] ^= 0xFF
    stream = b"\x00\xff\x13" + good[0] + bytes(bad) + good[1] + b"\xff" + good[2] + good[3] + \
        good[4]
    reader = proto.PacketReader()
    got = []
    for k in range(0, len(stream), 3):  # arrives three bytes at a time
        got += reader.feed(stream[k:k + 3])
    assert [p.servo_id for p in got] == [1, 2, 3, 4, 5]
    assert got[2].params == bytes([3, 6])
    assert reader.corrupt == 1


def test_status_error_bits_raise_typed_errors():
    assert isinstance(proto.fault(4, 0x01), proto.InputVoltageError)
    assert isinstance(proto.fault(4, 0x02), proto.AngleLimitError)
    assert isinstance(proto.fault(4, 0x04), proto.OverheatError)
    assert isinstance(proto.fault(4, 0x08), proto.OvercurrentError)
    assert isinstance(proto.fault(4, 0x20), proto.OverloadError)
    both = proto.fault(7, 0x24)
    assert isinstance(both, proto.OverloadError)
    assert str(both) == "servo 7: overheating, overload"


def test_fuzzed_bytes_never_break_the_reader():
    rng = np.random.default_rng(0)
    reader = proto.PacketReader()
    sent, recovered = set(), 0
    for k in range(10_000):
        if k % 3 == 0:  # valid packets, sometimes damaged
            data = bytearray(proto.packet(int(rng.integers(0, 254)), int(rng.integers(0, 256)),
                                          rng.bytes(int(rng.integers(0, 8)))))
            if rng.random() < 0.3:
                data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
            else:
                sent.add(bytes(data))
        else:
            data = rng.bytes(int(rng.integers(0, 24)))
            if rng.random() < 0.3:
                data = b"\xff\xff" + data
        for p in reader.feed(bytes(data)):
            recovered += proto.packet(p.servo_id, p.code, p.params) in sent
        assert len(reader.buffer) <= 4 + proto.MAX_LEN
    # Garbage that looks like a header can swallow the packet after it; most survive.
    assert recovered > 0.8 * len(sent)
    assert reader.corrupt > 100


def test_packets_refuse_impossible_fields():
    with pytest.raises(ValueError, match="servo id"):
        proto.packet(300, proto.PING)
    with pytest.raises(ValueError, match="same number of bytes"):
        proto.sync_write_packet(42, {1: b"\x00\x01", 2: b"\x00"})
