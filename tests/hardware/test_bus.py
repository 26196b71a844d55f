"""The hardware path against the virtual bus on a real pseudo-terminal.

Nothing here asserts how fast anything is (bench/faults.py measures that): waits are
bounded only to turn a hang into a failure, and the watchdog and calibration run on
injected clocks.
"""

import collections
import json
import threading
import time

import numpy as np
import pytest

from helpers import FakeClock, wait_until
from facetwin import profile as profiles
from facetwin.envs.safety import CommandError, SafetyFilter
from facetwin.envs.serial_backend import HardwareError, NominalCalibrationWarning, SerialBackend
from facetwin.files import atomic_write
from facetwin.hardware.bus import FeetechBus
from facetwin.hardware.calibration import Calibration, CalibrationError, record, write_limits
from facetwin.hardware.camera import CameraError, stamped_png
from facetwin.hardware.journal import Journal, read_journal
from facetwin.hardware.protocol import (
    AngleLimitError, BusTimeout, CorruptPacket, OverheatError, PortGone,
)
from facetwin.hardware.virtual_bus import VirtualBus

pytestmark = pytest.mark.filterwarnings("ignore::facetwin.envs.serial_backend."
                                        "NominalCalibrationWarning")


@pytest.fixture(scope="module")
def rena():
    return profiles.load("rena25")


@pytest.fixture
def vbus(rena, tmp_path):
    with VirtualBus.for_profile(rena, tmp_path / "face") as bus:
        yield bus


def torque_states(vbus) -> set[bool]:
    return {s.torque_on for s in vbus.servos.values()}


def test_virtual_servos_power_up_like_feetech_sts_servos(rena, vbus):
    servo = vbus.servos[5]
    assert servo.torque_on  # a real STS servo holds its position from power-up
    with FeetechBus.for_profile(str(vbus.link), rena) as bus:
        assert bus.read_register(5, "Model_Number") == servo.model.number
        assert bus.read_register(5, "Torque_Enable") == 1
        lo, hi = servo.limits
        bus.write_register(5, "Goal_Position", (lo + hi) // 2)  # no torque-on needed
        wait_until(lambda: bus.read_register(5, "Present_Position") == (lo + hi) // 2,
                   what="servo 5 reaching its goal")
        bus.write_register(5, "Min_Position_Limit", 0)  # EEPROM, locked: ignored
        with pytest.raises(ValueError, match="read-only"):
            bus.write_register(5, "Present_Position", 7)
        bus.write(5, servo.model.register("Present_Position").address, b"\x07\x00")  # ignored
        assert servo.limits == (lo, hi)
        assert bus.read_register(5, "Present_Position") == (lo + hi) // 2
        bus.write_register(5, "Goal_Velocity", -150)  # sign-magnitude on the wire
        assert bus.read_register(5, "Goal_Velocity") == -150


def test_driver_reads_writes_and_turns_torque_off_on_exit(rena, vbus):
    cal = Calibration.load(rena)
    with pytest.raises(RuntimeError, match="boom"):
        with FeetechBus.for_profile(str(vbus.link), rena) as bus:
            bus.ping(1)
            assert bus.read_positions(cal.ids) == {i: s.neutral for i, s in cal.servos.items()}
            bus.write_positions({5: 2300, 6: 1800})
            bus.write_register(7, "Goal_Position", 2100)
            wait_until(lambda: bus.read_positions([5, 6, 7]) == {5: 2300, 6: 1800, 7: 2100},
                       what="servos 5-7 reaching their goals")
            status = bus.read_status(5)
            assert status["position"] == 2300 and status["temperature"] >= 30
            raise RuntimeError("boom")
    # The torque-off broadcast has no reply: wait until the servos have read it.
    wait_until(lambda: torque_states(vbus) == {False}, what="torque off on every servo")


def test_faults_raise_typed_errors_after_the_retries(rena, vbus):
    with FeetechBus.for_profile(str(vbus.link), rena, retries=1) as bus:
        for inject, error, attempts in [(lambda: vbus.faults.silent.add(3), BusTimeout, 2),
                                        (lambda: vbus.faults.corrupt.add(3), CorruptPacket, 2),
                                        (lambda: vbus.faults.error_bits.update({3: 0x04}),
                                         OverheatError, 1)]:
            inject()
            before = bus.attempts
            with pytest.raises(error, match=r"3"):
                bus.read_positions([1, 2, 3])
            assert bus.attempts - before == attempts  # a servo's own error is not retried
            vbus.faults.silent.clear(), vbus.faults.corrupt.clear(), vbus.faults.error_bits.clear()
        bus.read_positions([1, 2, 3])  # healthy again
        with pytest.raises(AngleLimitError):  # beyond the calibrated range
            bus.write_register(4, "Goal_Position", 4000)
        vbus.vanish()
        with pytest.raises(PortGone):
            bus.read_positions([1])


def test_calibration_records_hand_moved_ranges_and_writes_limits(rena, vbus, tmp_path):
    true = {sid: (1000 + 10 * sid, 3000 - 10 * sid) for sid in vbus.servos}
    clock = FakeClock()
    readings = collections.Counter()

    def operator(elapsed, total):
        """Moves every joint by hand between readings: to one end, the other, home."""
        readings["n"] += 1
        moves = {3: 0, 6: 1, 9: None}
        if readings["n"] in moves:
            end = moves[readings["n"]]
            for sid, (lo, hi) in true.items():
                vbus.servos[sid].turn_by_hand(home[sid] if end is None else (lo, hi)[end])

    home = vbus.present()
    with FeetechBus.for_profile(str(vbus.link), rena) as bus:
        # Times in 64ths of a second add up exactly on the injected clock.
        cal = record(bus, rena, seconds=15 / 64, period_s=1 / 64, progress=operator,
                     clock=clock, sleep=clock.advance)
        assert readings["n"] == 15
        write_limits(bus, cal)
    path = cal.save(tmp_path / "rena25.calibration.json")
    loaded = Calibration.load(rena, path)
    for c in rena.controls:
        sid = c.servos[0]
        s, (lo, hi) = loaded.servos[sid], true[sid]
        assert s.limits == (lo, hi) and s.neutral == home[sid]
        assert (s.high > s.low) == (c.servo_direction > 0)
        assert vbus.servos[sid].limits == s.limits
    np.testing.assert_allclose(loaded.to_controls(loaded.to_ticks(rena.neutral)),
                               rena.neutral, atol=2e-3)
    data = json.loads(path.read_text())
    data["profile"] = "emo11"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="not 'rena25'"):
        Calibration.load(rena, path)


def test_a_missing_calibration_is_said_aloud(rena, vbus, tmp_path):
    nominal = Calibration.load(rena)
    assert nominal.is_nominal
    with FeetechBus.for_profile(str(vbus.link), rena) as bus:
        with pytest.raises(CalibrationError, match="nominal calibration.*facetwin calibrate"):
            write_limits(bus, nominal)
    assert vbus.servos[1].limits == nominal.servos[1].limits  # nothing was written
    with pytest.warns(NominalCalibrationWarning, match=r"rena25\.calibration\.json.*"
                      r"facetwin calibrate --profile rena25"):
        SerialBackend(rena, str(vbus.link), None, 64, journal=tmp_path / "j.jsonl").close()


def test_backend_faults_stop_the_face_and_keep_the_journal(rena, vbus, tmp_path):
    journal = tmp_path / "j.jsonl"
    backend = SerialBackend(rena, str(vbus.link), None, 64, journal=journal)
    assert torque_states(vbus) == {True}
    backend.step(rena.expressions["happiness"], "period")
    vbus.faults.error_bits[9] = 0x20  # overload
    with pytest.raises(HardwareError, match="OverloadError.*servo 9.*torque is off"):
        backend.step(rena.expressions["happiness"], "settle")
    wait_until(lambda: torque_states(vbus) == {False}, what="torque off on every servo")
    with pytest.raises(HardwareError):  # stays failed: nothing more is sent
        backend.step(rena.neutral, "period")
    backend.close()
    assert not backend.bus.is_open
    header, records, torn = read_journal(journal)
    assert header["profile"] == "rena25" and torn == 0
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "torque" and "command" in kinds and kinds[-1] == "fault"
    assert records[-1]["error"] == "OverloadError"


def test_watchdog_ramps_to_neutral_when_steps_stop(rena, vbus, tmp_path):
    clock = FakeClock()
    journal = tmp_path / "j.jsonl"
    backend = SerialBackend(rena, str(vbus.link), None, 64, journal=journal, clock=clock)
    cal = backend.calibration
    surprise = backend.safety.target(rena.expressions["surprise"])[0]
    backend.step(surprise, "settle")
    time.sleep(3 * backend.period)  # the watchdog looks; on its clock no time has passed
    assert backend.safety.last.tolist() == surprise.tolist()
    clock.advance(rena.watchdog_s)
    neutral = cal.to_ticks(rena.neutral)
    wait_until(lambda: {i: vbus.servos[i].get("Goal_Position") for i in neutral} == neutral,
               what="the watchdog's ramp to neutral")
    backend.close()
    _, records, _ = read_journal(journal)
    kinds = [r.get("why", r["kind"]) for r in records]
    first = kinds.index("watchdog")
    assert "step" in kinds[:first] and "step" not in kinds[first:]
    assert kinds[first + 1] == "watchdog"  # its ramp's commands follow its record


@pytest.mark.slow
def test_nothing_outside_the_envelope_reaches_the_wire(rena, vbus, tmp_path):
    # On a frozen clock the watchdog stays out of the way of the fuzzing.
    backend = SerialBackend(rena, str(vbus.link), None, 64, journal=tmp_path / "j.jsonl",
                            clock=FakeClock())
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
            backend.safety.validate(v)
        except CommandError:
            with pytest.raises(CommandError):
                backend.step(v, "period")
            continue
        applied, report = backend.safety(v)  # what a step sends, without a period's wait
        backend._write(applied, report, "fuzz", v)
        sent += 1
    backend.close()
    wait_until(lambda: len(vbus.goal_log) >= sent, what=f"{sent} commands reaching the servos")
    check = SafetyFilter(rena)
    lo = np.array([cal.servos[i].limits[0] for i in cal.ids])
    hi = np.array([cal.servos[i].limits[1] for i in cal.ids])
    for _, g in vbus.goal_log:
        ticks = np.array([g[i] for i in cal.ids])
        assert np.all(ticks >= lo) and np.all(ticks <= hi)
        u = rena.normalise(cal.to_controls(g))
        # Ticks are whole numbers: allow their rounding in the strain prediction.
        assert check.envelope.predict(u) <= rena.strain_ceiling + 0.01


class LaggingCamera(threading.Thread):
    """A camera that sees the face ``lag_s`` late, as a plant behind real time or a
    buffering webcam does: each frame shows servo ``sid`` as it was then, as a grey level,
    stamped with that moment."""

    def __init__(self, vbus, path, sid: int, lag_s: float):
        super().__init__(daemon=True)
        self.vbus, self.path, self.sid, self.lag_s = vbus, path, sid, lag_s
        self.history = collections.deque(maxlen=1000)
        self.stop = threading.Event()

    def grey(self, ticks: int) -> int:
        lo, hi = self.vbus.servos[self.sid].limits
        return round(255 * (ticks - lo) / (hi - lo))

    def run(self):
        seq = 0
        while not self.stop.is_set():
            now = time.monotonic()
            self.history.append((now, self.vbus.present()[self.sid]))
            shown = [p for t, p in self.history if t <= now - self.lag_s]
            if shown:
                image = np.full((16, 16, 3), self.grey(shown[-1]), np.uint8)
                atomic_write(self.path, stamped_png(image, now - self.lag_s, seq))
                seq += 1
            time.sleep(0.01)


def test_observations_come_from_frames_captured_after_the_face_arrived(rena, vbus, tmp_path):
    sid = rena.control("jaw_open").servos[0]
    camera = LaggingCamera(vbus, tmp_path / "frame.png", sid, lag_s=0.4)
    camera.start()
    wait_until(camera.path.exists, what="the camera's first frame")
    backend = SerialBackend(rena, str(vbus.link), camera.path, 16,
                            journal=tmp_path / "j.jsonl", frame_wait_s=5.0)
    try:
        neutral_grey = camera.grey(vbus.present()[sid])
        stepped = backend.step(rena.vector({"jaw_open": 0.9}), "settle")
        image = backend.observe().image
        arrived = camera.grey(vbus.present()[sid])
        assert abs(arrived - neutral_grey) > 40  # the jaw moved a long way
        assert abs(int(image.mean()) - arrived) <= 1  # and the picture shows it there
        assert stepped.settle_s > camera.lag_s  # the backend waited for the lagging camera

        camera.stop.set()  # the camera dies: a step fails naming it, with no stale picture
        camera.join()
        backend.frame_wait_s = 0.3
        with pytest.raises(CameraError, match=str(camera.path)):
            backend.step(rena.neutral, "settle")
    finally:
        camera.stop.set()
        backend.close()
    wait_until(lambda: torque_states(vbus) == {False}, what="torque off after close")


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
