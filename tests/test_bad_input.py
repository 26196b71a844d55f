"""Bad input never hangs, never deletes a file, never leaves the face powered: what a
careless or hostile user tries, and the clear error each gets."""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

import facetwin.envs  # noqa: F401
from helpers import virtual_bus, wait_until
from facetwin import profile as profiles
from facetwin.agents.runlog import RunLog, RunLogError, read_runlog
from facetwin.cli import main
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.envs.serial_backend import HardwareError, SerialBackend
from facetwin.files import atomic_write
from facetwin.hardware.bus import FeetechBus
from facetwin.hardware.camera import CameraError, stamped_png
from facetwin.hardware.journal import read_journal
from facetwin.hardware.virtual_bus import LinkError, VirtualBus
from facetwin.library import save_library
from facetwin.profile import ProfileError
from facetwin.envs.profile_fuzz import check, mutate

pytestmark = pytest.mark.filterwarnings("ignore::facetwin.envs.serial_backend."
                                        "NominalCalibrationWarning")


# -- 1. the virtual bus's link ---------------------------------------------------------
@pytest.mark.slow
@pytest.mark.subprocess
def test_the_virtual_bus_replaces_only_a_stale_link(tmp_path, capsys):
    emo = profiles.load("emo11")
    precious = tmp_path / "notes.txt"
    precious.write_text("x")
    assert main(["virtual-bus", "--profile", "emo11", "--link", str(precious)]) == 2
    assert "not a link" in capsys.readouterr().err and precious.read_text() == "x"
    elsewhere = tmp_path / "to-notes"
    elsewhere.symlink_to(precious)
    with pytest.raises(LinkError, match="a link to .*notes.txt"):
        VirtualBus.for_profile(emo, elsewhere).start()
    assert os.readlink(elsewhere) == str(precious)

    link = tmp_path / "face"
    with VirtualBus.for_profile(emo, link):
        port = os.readlink(link)
        with pytest.raises(LinkError, match=f"running process \\(pid {os.getpid()}\\)"):
            VirtualBus.for_profile(emo, link).start()
        assert os.readlink(link) == port  # the refused bus took nothing, removed nothing
        with FeetechBus.for_profile(str(link), emo) as bus:
            bus.ping(1)  # the first bus still answers on it
    assert not link.exists() and not link.is_symlink()  # removed with its own bus

    # A bus killed outright leaves its link behind: stale, so the next bus may take it.
    with virtual_bus("emo11", link) as (killed, _):
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
    assert link.is_symlink()
    with VirtualBus.for_profile(emo, link):
        with FeetechBus.for_profile(str(link), emo) as bus:
            bus.ping(1)


# -- 2. start-up is all or nothing -----------------------------------------------------
def _open_fds_to(path) -> int:
    """How many of this process's file descriptors are open on ``path``."""
    target = os.path.realpath(path)
    return sum(os.path.realpath(f"/proc/self/fd/{fd}") == target
               for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}"))


@pytest.fixture
def rena_bus(tmp_path):
    with VirtualBus.for_profile(profiles.load("rena25"), tmp_path / "face") as bus:
        yield bus


@pytest.fixture
def live_frames(tmp_path):
    """A camera that keeps publishing fresh (grey) frames, stamped as they are taken."""
    path, stop = tmp_path / "live.png", threading.Event()

    def publish():
        seq = 0
        while not stop.is_set():
            atomic_write(path, stamped_png(np.full((32, 32, 3), 90, np.uint8),
                                           time.monotonic(), seq))
            seq += 1
            time.sleep(0.01)

    producer = threading.Thread(target=publish, daemon=True)
    producer.start()
    wait_until(path.exists, what="the first frame")
    yield path
    stop.set()
    producer.join()


def test_a_camera_that_is_not_there_stops_start_up_before_any_servo_moves(rena_bus, tmp_path):
    with pytest.raises(CameraError, match="/nope.png"):
        gym.make("facetwin/FaceTwin-v0", profile="rena25", backend="serial",
                 port=str(rena_bus.link), camera="/nope.png", journal=tmp_path / "j.jsonl")
    assert rena_bus.packets_seen == 0 and not (tmp_path / "j.jsonl").exists()


def test_a_start_up_that_fails_half_way_leaves_nothing_powered_open_or_running(rena_bus,
                                                                              tmp_path):
    still = tmp_path / "still.png"  # a frame file nobody updates: no fresh frame will come
    iio.imwrite(still, np.full((64, 64, 3), 128, np.uint8))
    journal = tmp_path / "j.jsonl"
    threads, fds = {t.name for t in threading.enumerate()}, _open_fds_to(rena_bus.link)
    with pytest.raises(CameraError, match=str(still)):
        SerialBackend(profiles.load("rena25"), str(rena_bus.link), still, 64, journal=journal,
                      frame_wait_s=0.2)
    wait_until(lambda: not any(s.torque_on for s in rena_bus.servos.values()),
               what="torque off on every servo")
    assert _open_fds_to(rena_bus.link) == fds  # the port is closed
    assert {t.name for t in threading.enumerate()} <= threads  # no watchdog left behind
    _, records, _ = read_journal(journal)
    kinds = [r.get("why", r["kind"]) for r in records]
    assert kinds[0] == "torque" and records[0]["on"] and "start-up" in kinds
    fault = kinds.index("fault")
    assert records[fault]["error"] == "CameraError"
    assert "shut-down" in kinds[fault:] and records[-1] == {**records[-1], "kind": "torque",
                                                            "on": False}


def test_closing_after_a_bus_fault_closes_the_port(rena_bus, live_frames, tmp_path):
    fds = _open_fds_to(rena_bus.link)  # the virtual bus's own end
    env = gym.make("facetwin/FaceTwin-v0", profile="rena25", backend="serial", step_mode="period",
                   port=str(rena_bus.link), camera=str(live_frames), image_size=32,
                   journal=tmp_path / "j.jsonl")
    rena_bus.faults.error_bits[4] = 0x08
    with pytest.raises(HardwareError, match="OvercurrentError"):
        env.reset(seed=0)
    env.close()
    env.close()  # twice is fine
    assert _open_fds_to(rena_bus.link) == fds


# -- 3. pictures -----------------------------------------------------------------------
@pytest.mark.slow
def test_a_bad_picture_gets_a_clear_error_and_leaves_the_env_working():
    from skimage.data import astronaut

    env = FaceTwinEnv("emo11", features="camera", image_size=64)
    for bad, why in [(np.zeros((0, 5, 3), np.uint8), "target picture is 5 x 0 pixels"),
                     (np.zeros((64, 64, 3), np.float64),
                      "target picture must have 8- or 16-bit pixels"),
                     (np.zeros((64, 64, 7), np.uint8), "target picture must be")]:
        with pytest.raises(ValueError, match=why):
            env.reset(options={"target": bad})
    with pytest.raises(ValueError, match="target_neutral picture is 3 x 3"):
        env.reset(options={"target": astronaut(), "target_neutral": np.zeros((3, 3), np.uint8)})
    obs, info = env.reset(options={"target": astronaut()[..., 1]})  # grey: still a picture
    assert info["target"] == "picture" and info["face_detected"]
    obs, *_ = env.step(env.profile.expressions["happiness"])
    assert env.observation_space.contains(obs)
    env.close()
    env.close()


# -- 4. profile numbers ----------------------------------------------------------------
def _mutant(tmp_path, *changes: tuple[str, str]) -> Path:
    text = (profiles.ROBOTS_DIR / "emo11.toml").read_text()
    for old, new in changes:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "emo11_copy.toml"
    path.write_text(text)
    return path


SAFETY_TABLE = "[safety]\nwatchdog_s = 0.5\nstrain_ceiling = 1.4"


@pytest.mark.parametrize("changes, field", [
    ([("control_rate_hz = 50", "control_rate_hz = 1e12")], "control_rate_hz"),
    ([("full_range_s = 0.08", "full_range_s = 1e300")], "full_range_s"),
    ([("at_high = 6.0", "at_high = 1e300")], "at_high"),
    ([("size = 256", "size = 0.5")], "size"),
    ([("size = 256", "size = 100000")], "size"),
    ([("[camera]\ndistance = 0.42\nheight = -0.02\nfovy_deg = 32\nsize = 256\n",
       "camera = 5\n")], "camera"),
    ([(SAFETY_TABLE, "#"), ("control_rate_hz = 50", 'control_rate_hz = 50\nsafety = "x"')],
     "safety"),
    ([("watchdog_s = 0.5", "watchdog_s = 0.5\nwatchdgo_s = 2")], "watchdgo_s"),
])
def test_profile_numbers_and_tables_are_checked_and_named(tmp_path, changes, field):
    path = _mutant(tmp_path, *changes)
    with pytest.raises(ProfileError, match=f"{re.escape(str(path))}.*field '{field}'"):
        profiles.load(path)


@pytest.mark.slow
def test_fuzzed_profiles_load_and_step_or_name_a_field(tmp_path):
    rng = np.random.default_rng(7)
    outcomes = collections.Counter()
    for name in profiles.available():
        text = (profiles.ROBOTS_DIR / f"{name}.toml").read_text()
        for _ in range(20):  # bench/profile_fuzz.py runs 600
            mutant, what = mutate(text, rng)
            outcomes[check(mutant, name, tmp_path, rng).split(":")[0]] += 1
    # Both sides of the contract happen: most mutations break a field (the expression
    # tables alone are a third of the assignments), a few leave a profile that steps.
    assert outcomes["loaded"] >= 3 and outcomes["refused"] > 20


# -- 5. the run log --------------------------------------------------------------------
def _log(path) -> RunLog:
    header = {"method": "bo", "seed": 0, "batch": 2, "profile": "emo11",
              "profile_sha256": "abc", "target": "expression:happiness"}
    log = RunLog(path, header)
    for k in range(4):
        log.append({"batch": k // 2, "batch_size": 2, "index": k, "controls": [0.1, 0.2],
                    "applied": [0.1, 0.2], "score": -1.0 + 0.1 * k})
    return header


def test_an_edited_run_log_record_is_refused_and_named_by_its_line(tmp_path):
    path = tmp_path / "bo-s0.jsonl"
    header = _log(path)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"score":-0.9', '"score":99')  # a flattering edit
    path.write_text("\n".join(lines) + "\n")
    for read in (lambda: RunLog(path, header), lambda: read_runlog(path)):
        with pytest.raises(RunLogError, match=f"{path}:3: .*edited or damaged"):
            read()
    path.write_text("[1, 2]\n")
    with pytest.raises(RunLogError, match="not a run log"):
        read_runlog(path)


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_runs_on_one_output_folder_the_second_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "facetwin.cli", "optimize", "--profile",
                              "emo11", "--target", "surprise", "--budget", "40", "--workers", "1",
                              "--out", str(out)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_until((out / "runs" / "bo-s0.jsonl").exists, timeout_s=300,
                   what="the first run's log")
        assert main(["optimize", "--profile", "emo11", "--target", "surprise", "--budget", "4",
                     "--out", str(out)]) == 2
        assert f"pid {first.pid}" in capsys.readouterr().err
    finally:
        first.kill()
        first.wait()


def test_a_library_of_another_profile_is_refused_before_any_evaluation(tmp_path, capsys):
    x2c = profiles.load("x2c30")
    save_library(tmp_path / "library.json", x2c, {"smile": x2c.neutral})
    assert main(["optimize", "--profile", "emo11", "--target", "surprise", "--budget", "4",
                 "--out", str(tmp_path)]) == 2
    assert "made for profile 'x2c30'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


# -- 6. messages, not tracebacks -------------------------------------------------------
def _journal(path, header: dict, *records) -> Path:
    lines = [json.dumps({"kind": "header", **header})] + [json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path, capsys):
    emo, x2c = profiles.load("emo11"), profiles.load("x2c30")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    header = {"profile": "x2c30", "profile_sha256": x2c.sha256}
    command = {"kind": "command", "requested": [0.5] * len(emo.controls)}
    cases = [
        (["optimize", "--profile", "emo11", "--target", "surprise", "--budget", "0",
          "--out", str(tmp_path / "o")], r"--budget: 0 is outside 1\.\."),
        (["optimize", "--profile", "emo11", "--target", "surprise", "--out", str(a_file)],
         "cannot use .*a_file as the output folder"),
        (["optimize", "--profile", "emo11", "--target", "surprise",
          "--out", str(a_file / "sub")], "cannot use .*sub as the output folder"),
        (["replay", str(_journal(tmp_path / "a.jsonl", header, command))],
         r"a\.jsonl:2: 'requested' must be 30 finite numbers"),
        (["replay", str(_journal(tmp_path / "b.jsonl", {"profile": "x2c30"}))],
         r"b\.jsonl:1: the header has no 'profile_sha256'"),
        (["replay", str(_journal(tmp_path / "c.jsonl", header, {"kind": "command"}))],
         r"c\.jsonl:2: 'requested' must be"),
        (["replay", str(_journal(tmp_path / "d.jsonl", header, [1, 2]))],
         r"d\.jsonl:2: not a journal record"),
        (["replay", str(tmp_path / "a.jsonl"), "--backend", "serial"], "needs --port"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert re.search(message, err) and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": 0}, "image_size must be a whole number from 32"),
    ({"image_size": 2.7}, "image_size must be a whole number"),
    ({"control_rate_hz": 1e12}, "control_rate_hz must be from 1 to 1000 Hz"),
])
def test_env_arguments_out_of_range_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaceTwinEnv("emo11", **kwargs)
