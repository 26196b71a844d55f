"""The same agent loop on the twin and on the serial backend, whose servos are the
virtual bus (a separate `facetwin virtual-bus` process) with the twin as plant."""

import os
import signal

import gymnasium as gym
import numpy as np
import pytest

import facetwin.envs  # noqa: F401
from facetwin import profile as profiles
from facetwin.cli import main
from facetwin.envs.serial_backend import HardwareError
from facetwin.envs.twin_plant import TwinPlant
from facetwin.hardware.camera import FrameFileCamera
from facetwin.hardware.journal import read_journal


def agent(env, steps: int, seed: int):
    """A plain agent loop: the code an operator moves from the twin to the robot."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed, options={"target": "happiness"})
    actions, infos, observations = [], [], [obs]
    for _ in range(steps):
        action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        obs, reward, *_, info = env.step(action)
        actions.append(action)
        infos.append(info)
        observations.append(obs)
    return actions, infos, observations


@pytest.mark.slow
@pytest.mark.subprocess
def test_same_agent_same_spaces_same_safety_on_twin_and_serial(rena25_bus, tmp_path):
    _, link, frame = rena25_bus
    journal = tmp_path / "session.jsonl"
    serial = gym.make("facetwin/FaceTwin-v0", profile="rena25", backend="serial",
                      port=str(link), camera=str(frame), journal=journal)
    twin = gym.make("facetwin/FaceTwin-v0", profile="rena25")
    assert serial.action_space == twin.action_space
    assert serial.observation_space == twin.observation_space
    try:
        actions, on_serial, seen_serial = agent(serial, 4, seed=7)
    finally:
        serial.close()
    _, on_twin, seen_twin = agent(twin, 4, seed=7)
    twin.close()
    assert [i["safety"] for i in on_serial] == [i["safety"] for i in on_twin]
    assert any(i["safety"]["reasons"] for i in on_twin)  # random commands do get filtered
    for a, b in zip(seen_serial[1:], seen_twin[1:]):
        assert serial.observation_space.contains(a)
        # MediaPipe on the virtual bus's camera vs the twin's ground truth, in pixels:
        # the frame shows the face where the step left it, not where it was before.
        assert np.median(np.linalg.norm(a["landmarks"] - b["landmarks"], axis=1)) < 6.0
    header, records, torn = read_journal(journal)
    assert header["profile"] == "rena25" and torn == 0
    steps = [r for r in records if r.get("why") == "step"]
    # Every step's commands went through the one filter: the journal holds what the agent
    # asked, and the wire got what the env reported as applied.
    assert {tuple(r["requested"]) for r in steps} == {tuple(map(float, a)) for a in actions}
    last_of_each = [r for r, nxt in zip(steps, steps[1:] + [None])
                    if nxt is None or nxt["requested"] != r["requested"]]
    assert len(last_of_each) == len(actions)
    for r, info in zip(last_of_each, on_serial):
        np.testing.assert_allclose(r["applied"], info["applied"], atol=1e-6)

    # The journal replays through the safety filter on another backend.
    assert main(["replay", str(journal), "--backend", "twin"]) == 0


@pytest.mark.slow
@pytest.mark.subprocess
def test_killing_the_bus_mid_episode_is_a_clear_error_not_a_hang(rena25_bus, tmp_path):
    proc, link, frame = rena25_bus
    env = gym.make("facetwin/FaceTwin-v0", profile="rena25", backend="serial", port=str(link),
                   camera=str(frame), journal=tmp_path / "j.jsonl", step_mode="period")
    env.reset(seed=0)
    env.step(env.unwrapped.profile.expressions["surprise"])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with pytest.raises(HardwareError, match="PortGone"):  # the first step after it fails
        env.step(env.unwrapped.profile.neutral)
    env.close()
    _, records, _ = read_journal(tmp_path / "j.jsonl")
    assert records[-1]["kind"] == "fault" and records[-1]["error"] == "PortGone"


def test_the_twin_plant_integrates_every_moment_and_stamps_what_it_shows(tmp_path):
    rena = profiles.load("rena25")
    plant = TwinPlant(rena, tmp_path / "frame.png", size=64)
    plant.start(at=100.0)
    camera = FrameFileCamera(tmp_path / "frame.png", 64)
    assert camera.read().time == 100.0
    jaw = plant.calibration.to_ticks(rena.vector({"jaw_open": 1.0}))
    for until in (100.013, 100.1, 100.37, 100.5):  # late and irregular, as under load
        plant.advance(jaw, until)
        if plant.clock >= plant.next_frame:
            plant.publish()
    plant.close()
    assert plant.twin.time == pytest.approx(0.5)  # no time skipped, whatever the calls
    assert plant.clock == pytest.approx(100.5)
    frame = camera.read()
    assert frame.time == pytest.approx(100.5) and frame.seq == plant.frames - 1 == 3
    assert plant.twin.present_controls()[rena.index("jaw_open")] > 0.5
