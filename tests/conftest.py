"""Fixtures many test files share; plain helpers are in ``helpers.py``."""

import os
import signal
import subprocess

import pytest

from helpers import DATASET_SAMPLES, PROFILES, facetwin_command, virtual_bus, wait_until
from facetwin import profile as profiles
from facetwin.agents.inverse.evaluate import evaluate
from facetwin.agents.inverse.train import train
from facetwin.sim.twin import Twin


@pytest.fixture(scope="session", params=PROFILES)
def twin(request) -> Twin:
    return Twin(profiles.load(request.param))


@pytest.fixture(scope="session")
def twins() -> dict[str, Twin]:
    return {name: Twin(profiles.load(name)) for name in PROFILES}


@pytest.fixture
def rena25_bus(tmp_path):
    """rena25's servos on a virtual bus with the twin as plant, in a process of its own:
    (the process, the link to open as the port, the twin camera's frame file)."""
    link = tmp_path / "face"
    with virtual_bus("rena25", link, plant=True) as (proc, ready):
        assert "25 servos of profile rena25" in ready
        yield proc, link, tmp_path / "face.png"


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """A babbling dataset of emo11, collected by the command line, killed with SIGKILL
    after its first shard and collected again."""
    out = tmp_path_factory.mktemp("data") / "emo11"
    command = facetwin_command("collect", "--profile", "emo11", "--strategy", "babble",
                               "--samples", str(DATASET_SAMPLES), "--out", str(out))
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(list((out / "shards").glob("seq-*.parquet"))) >= 1, timeout_s=600,
               what="the first shard")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    shards_at_kill = len(list((out / "shards").glob("seq-*.parquet")))
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return out, shards_at_kill


@pytest.fixture(scope="session")
def model(dataset, tmp_path_factory):
    """emo11's landmark MLP on MediaPipe features, and its command L1 on the test split."""
    out = tmp_path_factory.mktemp("models") / "emo11-mlp-mediapipe"
    train("mlp", dataset[0], out, features="mediapipe", progress=False)
    return out, evaluate(out, dataset[0], closed_loop=0, progress=False)
