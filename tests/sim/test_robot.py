"""Robots as parameters: drawn from a randomisation or read from a robot file, the same
twin either way, and a file refused where its numbers mean nothing."""

import json

import numpy as np
import pytest

from facetwin import profile as profiles
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.envs.twin_backend import draw_robot
from facetwin.sim.randomization import Randomization
from facetwin.sim.robot import RobotFileError, load_robot, save_robot


def settled(twin, controls, robot):
    twin.reset(robot=robot)
    twin.command(controls)
    twin.settle()
    return twin.landmarks_3d()


def test_a_drawn_robot_written_and_read_back_is_the_same_twin(twins, tmp_path):
    twin = twins["emo11"]
    p = twin.profile
    robot, _ = draw_robot(twin, Randomization.realistic(), np.random.default_rng(4))
    path = save_robot(tmp_path / "lab.robot.json", p, twin.layout, robot, name="lab")
    again = load_robot(path, p, twin.layout)
    smile = p.expressions["happiness"]
    drawn, read = settled(twin, smile, robot), settled(twin, smile, again)
    nominal = settled(twin, smile, None)
    twin.reset()
    assert 1e3 * np.abs(drawn - nominal).max() > 1.0  # the robot is not the nominal twin
    assert 1e3 * np.abs(read - drawn).max() < 1e-3  # the file keeps it to a micrometre
    np.testing.assert_allclose(again.camera_tilt_deg, robot.camera_tilt_deg, atol=1e-5)


def test_a_robot_file_is_refused_by_another_profile_and_when_malformed(twins, tmp_path):
    emo, x2c = twins["emo11"], twins["x2c30"]
    robot, _ = draw_robot(emo, Randomization.realistic(), np.random.default_rng(1))
    path = save_robot(tmp_path / "emo.robot.json", emo.profile, emo.layout, robot)
    with pytest.raises(RobotFileError, match="made for profile 'emo11', not 'x2c30'"):
        load_robot(path, x2c.profile, x2c.layout)
    doc = json.loads(path.read_text())
    doc["profile_sha256"] = "0" * 64
    path.write_text(json.dumps(doc))
    with pytest.raises(RobotFileError, match="another version of profile 'emo11'"):
        load_robot(path, emo.profile, emo.layout)
    with pytest.raises(RobotFileError, match="another version"):
        FaceTwinEnv("emo11", robot=path)
    for key, value, message in (
            ("servo_offset", {"no_such_control": 0.1}, "no_such_control"),
            ("servo_travel", {"jaw": float("nan")}, r"servo_travel\['jaw'\]"),
            ("camera_tilt_deg", [1, 2], "camera_tilt_deg"),
            ("skin_colour", 1.0, "unknown parameters")):
        doc = json.loads(save_robot(tmp_path / "bad.robot.json", emo.profile, emo.layout,
                                    robot).read_text())
        doc["parameters"][key] = value
        (tmp_path / "bad.robot.json").write_text(json.dumps(doc))
        with pytest.raises(RobotFileError, match=message):
            load_robot(tmp_path / "bad.robot.json", emo.profile, emo.layout)


def test_the_env_builds_the_robot_of_a_file_and_sees_it_through_its_camera(twins, tmp_path):
    twin = twins["emo11"]
    p = profiles.load("emo11")
    r = Randomization.realistic()
    robot, _ = draw_robot(twin, r, np.random.default_rng(9))
    path = save_robot(tmp_path / "r.robot.json", p, twin.layout, robot)
    with pytest.raises(ValueError, match="robot= .* no randomization"):
        FaceTwinEnv(p, robot=path, randomization=r)
    # The hidden robot (drawn per reset) and its file's twin show the same face, but for
    # the lighting a file does not keep.
    hidden = FaceTwinEnv(p, image_size=64, randomization=r)
    known = FaceTwinEnv(p, image_size=64, robot=path)
    nominal = FaceTwinEnv(p, image_size=64)
    smile = p.expressions["happiness"].astype(np.float32)
    seen = {}
    for name, env in (("hidden", hidden), ("known", known), ("nominal", nominal)):
        env.reset(seed=9)
        obs, *_ = env.step(smile)
        seen[name] = obs
        env.close()
    assert np.abs(seen["known"]["landmarks"] - seen["hidden"]["landmarks"]).max() < 1e-3
    assert np.abs(seen["nominal"]["landmarks"] - seen["hidden"]["landmarks"]).max() > 0.5
    np.testing.assert_allclose(seen["known"]["achieved_goal"], seen["hidden"]["achieved_goal"],
                               atol=1e-3)
