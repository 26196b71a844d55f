"""The same agent loop on the twin and on the serial backend, whose servos are the
virtual bus (a separate `facetwin virtual-bus` process) with the twin as plant."""

import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

import facetwin.envs  # noqa: F401
from facetwin.cli import main
from facetwin.envs.backends import HardwareError
from facetwin.hardware.journal import read_journal


@pytest.fixture
def virtual_bus(tmp_path):
    link = tmp_path / "face"
    proc = subprocess.Popen(
        [sys.executable, "-m", "facetwin.cli", "virtual-bus", "--profile", "rena25",
         "--link", str(link), "--plant", "twin"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready = proc.stdout.readline()
    assert ready.startswith(f"virtual bus ready: {link}"), ready
    assert "25 servos of profile rena25" in ready
    yield proc, link, tmp_path / "face.png"
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def agent(env, steps: int, seed: int):
    """A plain agent loop: the code an operator moves from the twin to the robot."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed, options={"target": "happiness"})
    reports, observations = [], [obs]
    for _ in range(steps):
        action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        obs, reward, *_, info = env.step(action)
        reports.append(info["safety"])
        observations.append(obs)
    return reports, observations


def test_same_agent_same_spaces_same_safety_on_twin_and_serial(virtual_bus, tmp_path):
    _, link, frame = virtual_bus
    journal = tmp_path / "session.jsonl"
    serial = gym.make("facetwin/FaceTwin-v0", profile="rena25", backend="serial",
                      port=str(link), camera=str(frame), journal=journal)
    twin = gym.make("facetwin/FaceTwin-v0", profile="rena25")
    assert serial.action_space == twin.action_space
    assert serial.observation_space == twin.observation_space
    try:
        on_serial, seen_serial = agent(serial, 4, seed=7)
    finally:
        serial.close()
    on_twin, seen_twin = agent(twin, 4, seed=7)
    twin.close()
    assert on_serial == on_twin
    assert any(r["reasons"] for r in on_twin)  # random commands do get filtered
    for a, b in zip(seen_serial[1:], seen_twin[1:]):
        assert serial.observation_space.contains(a)
        # MediaPipe on the virtual bus's camera vs the twin's ground truth, in pixels.
        assert np.median(np.linalg.norm(a["landmarks"] - b["landmarks"], axis=1)) < 6.0
    header, records, torn = read_journal(journal)
    steps = [r for r in records if r.get("why") == "step"]
    assert header["profile"] == "rena25" and torn == 0 and len(steps) >= 4
    # What the env applied is what went on the wire: the backend's second filter agrees.
    assert all(r["requested"] == r["applied"] for r in steps)

    # The journal replays through the safety filter on another backend.
    assert main(["replay", str(journal), "--backend", "twin"]) == 0


def test_killing_the_bus_mid_episode_is_a_clear_error_not_a_hang(virtual_bus, tmp_path):
    proc, link, frame = virtual_bus
    env = gym.make("facetwin/FaceTwin-v0", profile="rena25", backend="serial", port=str(link),
                   camera=str(frame), journal=tmp_path / "j.jsonl", step_mode="period")
    env.reset(seed=0)
    env.step(env.unwrapped.profile.expressions["surprise"])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)
    start = time.perf_counter()
    with pytest.raises(HardwareError, match="PortGone"):
        for _ in range(3):
            env.step(env.unwrapped.profile.neutral)
    elapsed = time.perf_counter() - start
    assert elapsed < env.unwrapped.profile.control_period_s
    env.close()
    _, records, _ = read_journal(tmp_path / "j.jsonl")
    assert records[-1]["kind"] == "fault" and records[-1]["error"] == "PortGone"
