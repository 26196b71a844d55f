"""The newest commands under careless use (issue 37): each test is one finding, and
failed before its fix. Identification resumed or fitted into a twin that blows up,
damaged and useless videos for ``onsets``, embedded Ray after a SIGKILL, and
hand-edited robot files."""

import json
import os
import re
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from helpers import facetwin_command, wait_until

from facetwin import profile as profiles
from facetwin.agents.identify import identify
from facetwin.agents.identify.fit import IdentifyError
from facetwin.agents.identify.model import TwinModel
from facetwin.agents.identify.poses import Plan, design
from facetwin.agents.identify.session import JOURNAL, HiddenRobot, record_session
from facetwin.cli import main
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.envs.twin_backend import draw_robot
from facetwin.landmarks import N_LANDMARKS
from facetwin.sim.randomization import Randomization
from facetwin.sim.robot import Robot, RobotFileError, save_robot
from facetwin.sim.twin import Diverged, Twin


# -- 1. identification: a twin that blows up, a fit that finds nothing, a resume -------

def test_1_a_twin_whose_physics_blow_up_is_reset_and_says_so_and_mujoco_prints_nothing(
        twins, capfd):
    twin = twins["emo11"]
    p = twin.profile
    stiff = replace(Robot.nominal(twin.layout), skin_thickness=3.0)  # 3x the membrane
    twin.reset(robot=stiff)
    twin.command(p.expressions["surprise"])
    with pytest.raises(Diverged, match="diverged .* reset to rest"):
        twin.settle()
    assert np.isfinite(twin.landmarks_3d()).all() and twin.time == 0.0  # at rest again
    assert not twin.data.warning.number.any()
    assert "QACC" not in "".join(capfd.readouterr())  # MuJoCo's own line is kept off
    twin.reset()
    twin.command(p.expressions["surprise"])
    twin.settle()  # the same twin, nominal again, settles as ever


def _hidden_session(p, n: int, seed: int):
    full = design(p, 48)
    plan = Plan(full.profile, full.poses[:n], full.held_out[:n], full.kinds[:n])
    env = HiddenRobot(FaceTwinEnv(p, randomization=Randomization.realistic(),
                                  features="camera", image_size=128), seed)
    return plan, env


def test_1_a_resumed_session_shows_the_robot_what_an_uninterrupted_one_showed(tmp_path):
    """Killed after pose 9 (its journal cut there) and resumed: poses 9 to 11 as the
    uninterrupted session saw them. Before the fix the resumed poses arrived from
    neutral, and backlash put the face up to 0.3 px elsewhere."""
    p = profiles.load("emo11")
    plan, env = _hidden_session(p, 12, seed=3)
    try:
        whole = record_session(env, plan, tmp_path / "whole", progress=False)
        cut = tmp_path / "cut"
        (cut / "frames").mkdir(parents=True)
        lines = (tmp_path / "whole" / JOURNAL).read_text().splitlines(keepends=True)
        (cut / JOURNAL).write_text("".join(lines[:1 + 9]))
        resumed = record_session(env, plan, cut, progress=False)
    finally:
        env.close()
    assert [r["index"] for r in resumed] == list(range(12))
    for a, b in zip(whole[9:], resumed[9:]):
        moved = np.linalg.norm(np.subtract(a["landmarks"], b["landmarks"]), axis=1)
        assert np.median(moved) < 0.005, (a["index"], np.median(moved))


def test_1_a_fit_no_better_than_the_nominal_twin_writes_no_robot_file(tmp_path):
    """A fit that finds nothing (here: given a Jacobian of zeros, it never moves)."""
    p = profiles.load("emo11")
    plan = design(p, 48)
    size = TwinModel(p, 128).params.size
    nothing = np.zeros(((~plan.held_out).sum(), N_LANDMARKS, 2, size), np.float32)
    env = HiddenRobot(FaceTwinEnv(p, randomization=Randomization.realistic(),
                                  features="camera", image_size=128), seed=3)
    try:
        with pytest.raises(IdentifyError, match="no twin closer to the robot than the "
                                                "nominal one .* no robot file written"):
            identify(env, tmp_path, "lab", n_poses=48, blocks=["camera_offset"],
                     jacobian=nothing, progress=False)
    finally:
        env.close()
    assert not list(tmp_path.glob("*.robot.json"))
    assert (tmp_path / JOURNAL).exists()  # the session is kept


# -- 2., 3. videos for onsets: damaged, or nothing to learn ----------------------------

def _one_line(capsys) -> str:
    """What the command said on stderr, progress bars aside: one line."""
    said = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines()
            if line.strip() and not re.search(r"\d+%\|", line)]
    assert len(said) == 1, said
    return said[0]


@pytest.mark.parametrize("damage", ["empty", "random bytes", "truncated"])
def test_2_a_damaged_video_is_one_line_not_ffmpegs_banner(tmp_path, damage, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    good = tmp_path / "good.mp4"
    iio.imwrite(good, np.random.default_rng(0).integers(0, 255, (12, 64, 64, 3), np.uint8),
                fps=10)
    data = {"empty": b"", "random bytes": np.random.default_rng(1).bytes(4000),
            "truncated": good.read_bytes()[:len(good.read_bytes()) // 2]}[damage]
    (videos / "ada.mp4").write_bytes(data)
    assert main(["onsets", "--videos", str(videos), "--out", str(tmp_path / "o")]) == 2
    err = _one_line(capsys)
    assert "ada.mp4: not a readable video" in err and "ffmpeg version" not in err


@pytest.mark.slow
def test_3_videos_with_nothing_to_learn_are_an_error_naming_why_each_was_skipped(
        tmp_path, capsys):
    from skimage.data import astronaut

    videos = tmp_path / "videos"
    videos.mkdir()
    face = astronaut()[:448, 32:480]
    iio.imwrite(videos / "still.mp4", np.repeat(face[None], 30, axis=0), fps=30)
    iio.imwrite(videos / "faceless.mp4", np.random.default_rng(0).integers(
        0, 255, (30, 96, 96, 3), np.uint8), fps=30)
    iio.imwrite(videos / "short.mp4", face[None], fps=30)
    out = tmp_path / "o"
    assert main(["onsets", "--videos", str(videos), "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert "none of its 3 sequences has a clear onset, so there is nothing to learn" in err
    for why in ("faceless.mp4: no face in", "short.mp4: 1 frames: too short",
                "still.mp4: no clear rise"):
        assert why in err
    assert json.loads((out / "meta.json").read_text())["sequences"] == 3  # nothing lost


# -- 4. a killed command's embedded Ray -------------------------------------------------

def _raylet_of(pid: int) -> int | None:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if name.endswith("(raylet") and int(rest.split()[1]) == pid:
            return int(stat.parent.name)
    return None


def _started_by(raylet: int) -> list[int]:
    """Ray's processes below a raylet (its agents and workers), wherever they are now:
    each was started with the raylet's pid in its environment."""
    mark = f"RAY_RAYLET_PID={raylet}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return [k for k in found if _alive(k)] + ([raylet] if _alive(raylet) else [])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.subprocess
def test_4_nothing_of_embedded_ray_outlives_a_command_killed_with_sigkill(tmp_path):
    """Before the fix Ray's dashboard and runtime-env agents (~190 MB) stayed a minute
    or two after the command's SIGKILL; now a few seconds at most."""
    child = subprocess.Popen(facetwin_command(
        "collect", "--profile", "emo11", "--samples", "4096", "--workers", "2",
        "--no-images", "--out", str(tmp_path / "out")),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raylet = []

    def ray_working() -> bool:
        raylet[:] = [r for r in [_raylet_of(child.pid)] if r is not None]
        return bool(raylet) and len(_started_by(raylet[0])) >= 3  # agents, raylet, workers

    try:
        wait_until(ray_working, timeout_s=300, what="Ray's agents and workers")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    wait_until(lambda: not _started_by(raylet[0]), timeout_s=20,
               what="the end of every process of the killed command's Ray")


# -- 6. hand-edited robot files ---------------------------------------------------------

def _robot_files(tmp_path) -> dict[str, tuple[Path, str]]:
    """A robot file edited by hand four ways, each with what its refusal must say."""
    twin = Twin(profiles.load("emo11"))
    robot, _ = draw_robot(twin, Randomization.realistic(), np.random.default_rng(2))
    doc = json.loads(save_robot(tmp_path / "good.robot.json", twin.profile, twin.layout,
                                robot).read_text())
    edits = {
        "nan": (lambda d: d["parameters"]["servo_travel"].update(jaw=float("nan")),
                r"servo_travel\['jaw'\] = nan is not a finite number"),
        "offset": (lambda d: d["parameters"]["servo_offset"].update(jaw=1e4),
                   r"servo_offset\['jaw'\] is 1e\+06 % of the control's range, outside"),
        "block": (lambda d: d["parameters"].pop("linkage_anchor_mm"),
                  "no 'linkage_anchor_mm' in 'parameters'"),
        "profile": (lambda d: d.update(profile="x2c30"),
                    "made for profile 'x2c30', not 'emo11'"),
    }
    files = {}
    for name, (edit, message) in edits.items():
        d = json.loads(json.dumps(doc))
        edit(d)
        (tmp_path / f"{name}.robot.json").write_text(json.dumps(d))
        files[name] = tmp_path / f"{name}.robot.json", message
    return files


def test_6_a_hand_edited_robot_file_is_refused_naming_the_field_before_any_twin(
        tmp_path, monkeypatch, capsys):
    files = _robot_files(tmp_path)

    def built(*_, **__):
        raise AssertionError("a twin was built before the robot file was checked")

    monkeypatch.setattr(Twin, "__init__", built)
    for name, (path, message) in files.items():
        with pytest.raises(RobotFileError, match=message):
            FaceTwinEnv("emo11", robot=path)
        for argv in (["optimize", "--profile", "emo11", "--target", "happiness", "--budget",
                      "2", "--robot", str(path), "--out", str(tmp_path / f"o-{name}")],
                     ["virtual-bus", "--profile", "emo11", "--plant", "twin", "--robot",
                      str(path), "--link", str(tmp_path / f"link-{name}")]):
            assert main(argv) == 2, (name, argv[0])
            err = _one_line(capsys)
            assert err.startswith("facetwin: ") and path.name in err, err
