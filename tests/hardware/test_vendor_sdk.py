"""A script written against Feetech's own SDK (feetech-servo-sdk, ``scservo_sdk``) runs
unchanged against the virtual bus and sees the servos move, as on the real ones."""

import pytest

from helpers import wait_until
from facetwin import profile as profiles
from facetwin.hardware.virtual_bus import VirtualBus

scs = pytest.importorskip("scservo_sdk")

# STS memory table addresses, as a user copies them from Feetech's manual.
ADDR_MIN_LIMIT, ADDR_MAX_LIMIT, ADDR_TORQUE_ENABLE = 9, 11, 40
ADDR_GOAL_POSITION, ADDR_PRESENT_POSITION = 42, 56


def vendor_script(port_name: str, ids: list[int]):
    """Ping every servo, read its limits, sync-write goals a quarter into each range,
    sync-read until they arrive, then torque off: the SDK's own examples, end to end."""
    port = scs.PortHandler(port_name)
    packets = scs.PacketHandler(0)  # STS: little-endian words
    assert port.openPort() and port.setBaudRate(1_000_000)
    try:
        for sid in ids:
            model, result, error = packets.ping(port, sid)
            assert result == scs.COMM_SUCCESS and error == 0, (sid, result, error)
        quarter = {}
        for sid in ids:
            lo, r1, _ = packets.read2ByteTxRx(port, sid, ADDR_MIN_LIMIT)
            hi, r2, _ = packets.read2ByteTxRx(port, sid, ADDR_MAX_LIMIT)
            assert r1 == r2 == scs.COMM_SUCCESS
            quarter[sid] = lo + (hi - lo) // 4
        write = scs.GroupSyncWrite(port, packets, ADDR_GOAL_POSITION, 2)
        for sid, goal in quarter.items():
            assert write.addParam(sid, [scs.SCS_LOBYTE(goal), scs.SCS_HIBYTE(goal)])
        assert write.txPacket() == scs.COMM_SUCCESS
        read = scs.GroupSyncRead(port, packets, ADDR_PRESENT_POSITION, 2)
        for sid in ids:
            assert read.addParam(sid)

        def positions():
            assert read.txRxPacket() == scs.COMM_SUCCESS
            return {sid: read.getData(sid, ADDR_PRESENT_POSITION, 2) for sid in ids}

        wait_until(lambda: positions() == quarter, what="every servo reaching its goal")
        for sid in ids:
            result, error = packets.write1ByteTxRx(port, sid, ADDR_TORQUE_ENABLE, 0)
            assert result == scs.COMM_SUCCESS and error == 0
        return quarter
    finally:
        port.closePort()


def test_a_vendor_sdk_script_moves_every_servo_of_rena25(tmp_path):
    rena = profiles.load("rena25")
    with VirtualBus.for_profile(rena, tmp_path / "face") as bus:
        start = bus.present()
        reached = vendor_script(str(bus.link), sorted(bus.servos))
        assert len(reached) == 25
        assert sum(reached[sid] != start[sid] for sid in reached) == 25  # every one moved
        assert bus.present() == reached
        assert not any(s.torque_on for s in bus.servos.values())
