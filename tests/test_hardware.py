"""The hardware path against the virtual bus on a real pseudo-terminal."""

import json
import threading
import time

import imageio.v3 as iio
import numpy as np
import pytest

from facetwin import profile as profiles
from facetwin.envs.backends import HardwareError, SerialBackend
from facetwin.envs.safety import CommandError, SafetyFilter
from facetwin.hardware.bus import FeetechBus
from facetwin.hardware.calibration import Calibration, CalibrationError, record, write_limits
from facetwin.hardware.journal import Journal, read_journal
from facetwin.hardware.protocol import (
    AngleLimitError, BusTimeout, CorruptPacket, OverheatError, PortGone, Reg, u16,
)
from facetwin.hardware.virtual_bus import VirtualBus


@pytest.fixture(scope="module")
def rena():
    return profiles.load("rena25")


@pytest.fixture
def vbus(rena, tmp_path):
    with VirtualBus.for_profile(rena, tmp_path / "face") as bus:
        yield bus


@pytest.fixture
def frame(tmp_path):
    """A still camera frame for backends that need a camera but not a plant."""
    path = tmp_path / "frame.png"
    iio.imwrite(path, np.full((64, 64, 3), 128, np.uint8))
    return path


def test_driver_reads_writes_and_turns_torque_off_on_exit(rena, vbus):
    cal = Calibration.load(rena)
    with pytest.raises(RuntimeError, match="boom"):
        with FeetechBus(str(vbus.link)) as bus:
            bus.ping(1)
            assert bus.read(1, Reg.MODEL, 2) == vbus.servos[1].regs[Reg.MODEL:Reg.MODEL + 2]
            assert bus.read_positions(cal.ids) == {i: s.neutral for i, s in cal.servos.items()}
            bus.torque(cal.ids, True)
            bus.write_positions({5: 2300, 6: 1800})
            time.sleep(0.3)
            status = bus.read_status(5)
            assert status["position"] == 2300 and status["temperature"] >= 30
            bus.write(7, Reg.GOAL_POSITION, u16(2100))
            time.sleep(0.3)
            assert bus.read_positions([6, 7]) == {6: 1800, 7: 2100}
            assert all(s.torque_on for s in vbus.servos.values())
            raise RuntimeError("boom")
    time.sleep(0.02)  # the virtual servos read the bus in their own thread
    assert not any(s.torque_on for s in vbus.servos.values())


def test_faults_raise_typed_errors_within_a_control_period(rena, vbus):
    period = rena.control_period_s
    with FeetechBus(str(vbus.link), timeout_s=0.006, retries=1) as bus:
        for inject, error in [(lambda: vbus.faults.silent.add(3), BusTimeout),
                              (lambda: vbus.faults.corrupt.add(3), CorruptPacket),
                              (lambda: vbus.faults.error_bits.update({3: 0x04}), OverheatError)]:
            inject()
            start = time.perf_counter()
            with pytest.raises(error, match=r"3"):
                bus.read_positions([1, 2, 3])
            assert time.perf_counter() - start < period
            vbus.faults.silent.clear(), vbus.faults.corrupt.clear(), vbus.faults.error_bits.clear()
        bus.torque([4], True)
        with pytest.raises(AngleLimitError):  # beyond the calibrated range
            bus.write(4, Reg.GOAL_POSITION, u16(4000))
        vbus.vanish()
        start = time.perf_counter()
        with pytest.raises(PortGone):
            bus.read_positions([1])
        assert time.perf_counter() - start < period


def test_calibration_records_hand_moved_ranges_and_writes_limits(rena, vbus, tmp_path):
    true = {sid: (1000 + 10 * sid, 3000 - 10 * sid) for sid in vbus.servos}

    def operator():
        time.sleep(0.1)  # the face rests at neutral while recording starts
        home = vbus.present()
        for end in (0, 1, None):  # to one end, to the other, back home
            for sid, (lo, hi) in true.items():
                vbus.servos[sid].turn_by_hand(home[sid] if end is None else (lo, hi)[end])
            time.sleep(0.15)

    hand = threading.Thread(target=operator)
    with FeetechBus(str(vbus.link)) as bus:
        hand.start()
        cal = record(bus, rena, seconds=0.8)
        hand.join()
        write_limits(bus, cal)
    path = cal.save(tmp_path / "rena25.calibration.json")
    loaded = Calibration.load(rena, path)
    for c in rena.controls:
        sid = c.servos[0]
        s, (lo, hi) = loaded.servos[sid], true[sid]
        assert s.limits[0] <= lo + 2 and s.limits[1] >= hi - 2  # the full hand-moved range
        assert (s.high > s.low) == (c.servo_direction > 0)
        assert vbus.servos[sid].limits == s.limits
    np.testing.assert_allclose(loaded.to_controls(loaded.to_ticks(rena.neutral)),
                               rena.neutral, atol=2e-3)
    data = json.loads(path.read_text())
    data["profile"] = "emo11"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="not 'rena25'"):
        Calibration.load(rena, path)


def test_backend_faults_stop_the_face_and_keep_the_journal(rena, vbus, frame, tmp_path):
    journal = tmp_path / "j.jsonl"
    backend = SerialBackend(rena, str(vbus.link), frame, 64, journal=journal)
    assert all(s.torque_on for s in vbus.servos.values())
    backend.command(rena.expressions["happiness"])
    vbus.faults.error_bits[9] = 0x20  # overload
    start = time.perf_counter()
    with pytest.raises(HardwareError, match="OverloadError.*servo 9.*torque is off"):
        backend.present()
    assert time.perf_counter() - start < rena.control_period_s
    time.sleep(0.02)
    assert not any(s.torque_on for s in vbus.servos.values())
    with pytest.raises(HardwareError):  # stays failed: nothing more is sent
        backend.command(rena.neutral)
    backend.close()
    header, records, torn = read_journal(journal)
    assert header["profile"] == "rena25" and torn == 0
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "torque" and "command" in kinds and kinds[-1] == "fault"
    assert records[-1]["error"] == "OverloadError"


def test_watchdog_ramps_to_neutral_when_commands_stop(rena, vbus, frame, tmp_path):
    backend = SerialBackend(rena, str(vbus.link), frame, 64, journal=tmp_path / "j.jsonl")
    cal = backend.calibration
    backend.command(backend.filter.target(rena.expressions["surprise"])[0])
    time.sleep(rena.watchdog_s + 0.4)
    neutral = cal.to_ticks(rena.neutral)
    assert {i: vbus.servos[i]._get16(Reg.GOAL_POSITION) for i in neutral} == neutral
    backend.close()
    _, records, _ = read_journal(tmp_path / "j.jsonl")
    assert any(r["kind"] == "watchdog" for r in records)
    assert any(r.get("why") == "watchdog" for r in records)


def test_nothing_outside_the_envelope_reaches_the_wire(rena, vbus, frame, tmp_path):
    backend = SerialBackend(rena, str(vbus.link), frame, 64, journal=tmp_path / "j.jsonl")
    front = SafetyFilter(rena)
    front.reset(backend.last_applied)
    rng = np.random.default_rng(1)
    cal = backend.calibration
    sent = 0
    for k in range(10_000):
        v = rng.uniform(-1, 2, 25)
        if k % 4 == 0:
            v[rng.integers(25)] = np.nan
        elif k % 4 == 1:
            v = v[:rng.integers(25)]
        try:
            applied, _ = front(v)
        except CommandError:
            continue
        backend._send(applied, "fuzz")  # the backend filters again, then sends
        sent += 1
    backend.close()
    time.sleep(0.05)
    check = SafetyFilter(rena)
    lo = np.array([cal.servos[i].limits[0] for i in cal.ids])
    hi = np.array([cal.servos[i].limits[1] for i in cal.ids])
    goals = [g for _, g in vbus.goal_log]
    assert len(goals) >= sent
    for g in goals:
        ticks = np.array([g[i] for i in cal.ids])
        assert np.all(ticks >= lo) and np.all(ticks <= hi)
        u = rena.normalise(cal.to_controls(g))
        # Ticks are whole numbers: allow their rounding in the strain prediction.
        assert check.envelope.predict(u) <= rena.strain_ceiling + 0.01


def test_journal_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path, "rena25", "abc")
    for k in range(25):
        journal.append("command", requested=[k])
    journal.close()
    with open(path, "a") as f:
        f.write('{"t": 1.0, "kind": "comm')  # the process died mid-line
    header, records, torn = read_journal(path)
    assert header["profile_sha256"] == "abc" and len(records) == 25 and torn == 1
    assert [r["requested"][0] for r in records] == list(range(25))
