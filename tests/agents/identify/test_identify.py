"""Identification against hidden robots: a twin env, or the virtual bus with a perturbed
twin behind it, stands in for a robot whose parameters the identifier never reads."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import virtual_bus, wait_until

from facetwin import profile as profiles
from facetwin.agents.identify import identify
from facetwin.agents.identify.model import TwinModel
from facetwin.agents.identify.poses import Plan, design
from facetwin.agents.identify.session import (JOURNAL, HiddenRobot, read_session,
                                              record_session, replayed_from)
from facetwin.cli import main
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.hardware.journal import read_journal
from facetwin.sim.randomization import Randomization
from facetwin.sim.robot import RobotFileError, load_robot


def test_the_plan_shows_each_control_alone_and_holds_combinations_out():
    p = profiles.load("emo11")
    plan = design(p)
    assert len(plan.poses) == 120 and plan.held_out.sum() == 20
    assert plan.kinds[0] == "neutral"
    for c in p.controls:  # every control moves alone, and nothing else with it
        alone = [x for x, k in zip(plan.poses, plan.kinds) if k == f"alone:{c.name}"]
        assert len(alone) >= 2
        moved = np.flatnonzero(alone[0] != p.neutral)
        assert list(moved) == [p.index(c.name)]
    assert all(k == "combined" for k, h in zip(plan.kinds, plan.held_out) if h)
    assert np.all((plan.poses >= p.low) & (plan.poses <= p.high))
    assert design(p).sha256 == plan.sha256 != design(p, seed=1).sha256
    with pytest.raises(ValueError, match="random combinations"):
        design(p, n_poses=40)


@pytest.mark.slow
def test_servo_offsets_alone_are_recovered_from_the_camera(tmp_path):
    p = profiles.load("emo11")
    r = Randomization.realistic().only("servo_offset")
    env = HiddenRobot(FaceTwinEnv(p, randomization=r, features="camera"), seed=3)
    try:
        found = identify(env, tmp_path, "hidden", blocks=["servo_offset"], workers=2,
                         progress=False)
    finally:
        env.close()
    hidden = TwinModel(p, 64).hidden(r, 3)
    width = p.high - p.low
    error = np.abs(found.robot.servo_offset - hidden.servo_offset) / width
    fitted = json.loads(found.path.read_text())
    sigma = np.array(fitted["uncertainty"]["servo_offset"])
    print("offset error, % of range:", dict(zip(p.names, np.round(100 * error, 2))))
    assert np.abs(hidden.servo_offset / width).max() > 0.02  # there was something to find
    assert np.median(error) < 0.005
    assert np.all(error < np.maximum(0.005, 4 * sigma))  # the file says how sure it is
    assert found.identified_px < found.nominal_px / 3
    assert (tmp_path / "hidden.before-after.png").stat().st_size > 10_000
    with pytest.raises(RobotFileError, match="made for profile 'emo11'"):
        x2c = profiles.load("x2c30")
        load_robot(found.path, x2c, TwinModel(x2c, 64).layout)


SESSION = """
import sys
from pathlib import Path
from facetwin import profile as profiles
from facetwin.agents.identify.poses import Plan, design
from facetwin.agents.identify.session import record_session
from facetwin.envs.face_env import FaceTwinEnv

port, camera, journal, out, n = sys.argv[1:]
p = profiles.load("emo11")
plan = design(p)
plan = Plan(plan.profile, plan.poses[:int(n)], plan.held_out[:int(n)], plan.kinds[:int(n)])
env = FaceTwinEnv(p, backend="serial", port=port, camera=camera, journal=journal)
record_session(env, plan, Path(out), progress=False)
env.close()
"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_session_on_the_virtual_bus_killed_half_way_resumes_and_journals_everything(
        tmp_path):
    p = profiles.load("emo11")
    n = 10
    full = design(p)
    plan = Plan(full.profile, full.poses[:n], full.held_out[:n], full.kinds[:n])
    out, link = tmp_path / "session", tmp_path / "face"
    with virtual_bus("emo11", link, plant=True,
                     args=("--randomization", "realistic", "--seed", "21")):
        def run(journal):
            return [sys.executable, "-c", SESSION, str(link), str(link) + ".png",
                    str(tmp_path / journal), str(out), str(n)]

        first = subprocess.Popen(run("first.jsonl"), stderr=subprocess.DEVNULL)
        wait_until(lambda: (out / JOURNAL).exists()
                   and len((out / JOURNAL).read_text().splitlines()) >= 5,
                   timeout_s=300, what="four poses recorded")
        first.send_signal(signal.SIGKILL)
        first.wait()
        _, before = read_session(out, plan)
        subprocess.run(run("second.jsonl"), check=True, timeout=600,
                       stderr=subprocess.DEVNULL)
    _, records = read_session(out, plan)
    assert sorted(r["index"] for r in records) == list(range(n))  # each pose once
    assert all(r["landmarks"] is not None for r in records)  # the camera saw the face
    # The second run sent the poses the first had not recorded, and before them again
    # those that set which way each control last moved (backlash), every one through
    # the safety filter and into the journal, inside the profile's limits.
    _, journal, torn = read_journal(tmp_path / "second.jsonl")
    steps = [r for r in journal if r.get("why") == "step"]
    asked = {tuple(np.round(r["requested"], 5)) for r in steps}
    pose = lambda i: tuple(np.round(plan.poses[i].astype(np.float32), 5))  # noqa: E731
    done = {r["index"] for r in before}
    first_missing = min(set(range(n)) - done)
    missing = {pose(i) for i in range(n) if i not in done}
    again = {pose(i) for i in range(replayed_from(plan.poses, first_missing), first_missing)}
    assert torn == 0 and asked == missing | again and len(missing) < n
    for r in (r for r in journal if r["kind"] == "command"):
        applied = np.array(r["applied"])
        assert np.all(np.isfinite(applied))
        assert np.all((applied >= p.low - 1e-6) & (applied <= p.high + 1e-6))


def test_identify_and_the_hidden_plant_refuse_what_they_cannot_use(tmp_path, capsys):
    assert main(["identify", "--profile", "emo11", "--simulate", "realistic", "--out",
                 str(tmp_path / "a"), "--fit", "servo_offset,colour"]) == 2
    assert "unknown blocks ['colour']" in capsys.readouterr().err
    assert main(["identify", "--profile", "emo11", "--simulate", "lucky", "--out",
                 str(tmp_path / "b")]) == 2
    assert "unknown randomization 'lucky'" in capsys.readouterr().err
    assert main(["identify", "--profile", "emo11", "--port", "/dev/null", "--out",
                 str(tmp_path / "c")]) == 2
    assert "--port needs --camera" in capsys.readouterr().err
    assert main(["identify", "--profile", "x2c30", "--simulate", "realistic", "--poses", "60",
                 "--out", str(tmp_path / "e")]) == 2
    assert "--poses: 60 poses leave 0 random combinations" in capsys.readouterr().err
    assert main(["virtual-bus", "--profile", "emo11", "--link", str(tmp_path / "l"),
                 "--randomization", "realistic"]) == 2
    assert "add --plant twin" in capsys.readouterr().err
    assert main(["virtual-bus", "--profile", "emo11", "--link", str(tmp_path / "l"),
                 "--plant", "twin", "--randomization", "realistic:gremlins"]) == 2
    assert "unknown knobs ['gremlins']" in capsys.readouterr().err
    ground_truth = FaceTwinEnv("emo11", image_size=64)
    with pytest.raises(ValueError, match="features='camera'"):
        record_session(ground_truth, design(profiles.load("emo11")), tmp_path / "d")
    ground_truth.close()


@pytest.mark.slow
def test_identify_from_the_command_line_finds_where_the_camera_stands(tmp_path, capsys):
    out = tmp_path / "hidden"
    knobs = "realistic:camera_offset_m,camera_tilt_deg"
    assert main(["identify", "--profile", "emo11", "--simulate", knobs, "--seed", "5",
                 "--out", str(out), "--fit", "camera_offset,camera_tilt"]) == 0
    printed = capsys.readouterr().out
    assert "held-out landmark error: nominal twin" in printed
    p = profiles.load("emo11")
    model = TwinModel(p, 64)
    hidden = model.hidden(Randomization.realistic().only("camera_offset_m",
                                                        "camera_tilt_deg"), 5)
    found = load_robot(out / "emo11.robot.json", p, model.layout)
    assert np.abs(hidden.camera_tilt_deg).max() > 0.5  # there was something to find
    np.testing.assert_allclose(found.camera_tilt_deg, hidden.camera_tilt_deg, atol=0.1)
    np.testing.assert_allclose(found.camera_offset_m, hidden.camera_offset_m, atol=1e-3)
    doc = json.loads((out / "emo11.robot.json").read_text())
    assert doc["fitted"] == ["camera_offset", "camera_tilt"]
    assert doc["residuals"]["held_out_identified_px"] < doc["residuals"]["held_out_nominal_px"] / 3
    # Run again: the session is complete, so no pose is shown again, and the fit repeats.
    before = (out / "session.jsonl").read_text()
    assert main(["identify", "--profile", "emo11", "--simulate", knobs, "--seed", "5",
                 "--out", str(out), "--fit", "camera_offset,camera_tilt"]) == 0
    assert (out / "session.jsonl").read_text() == before
