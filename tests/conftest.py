import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from facetwin import profile as profiles
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.twin import Twin

PROFILES = ["x2c30", "emo11", "rena25"]


@pytest.fixture(scope="session", params=PROFILES)
def twin(request) -> Twin:
    return Twin(profiles.load(request.param))


@pytest.fixture(scope="session")
def twins() -> dict[str, Twin]:
    return {name: Twin(profiles.load(name)) for name in PROFILES}


def settled_pixels(twin: Twin, controls, size: int = 256) -> np.ndarray:
    """Landmarks in pixels after the face settles at ``controls`` from rest."""
    twin.reset(controls=np.asarray(controls, dtype=float))
    camera = PinholeCamera.from_profile(twin.profile.camera, size)
    return camera.project(twin.landmarks_3d())


@pytest.fixture(scope="session")
def twins_all(twins) -> dict[str, Twin]:
    return {**twins, "rena25": Twin(profiles.load("rena25"))}


def wait_until(condition, timeout_s: float = 20.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds. The deadline only bounds a hang: tests assert
    what happened, never how fast."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.005)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


DATASET_SAMPLES = 256  # two shards of 16 sequences of 8 samples


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """A babbling dataset of emo11, collected by the command line, killed with SIGKILL
    after its first shard and collected again."""
    out = tmp_path_factory.mktemp("data") / "emo11"
    command = [sys.executable, "-m", "facetwin.cli", "collect", "--profile", "emo11",
               "--strategy", "babble", "--samples", str(DATASET_SAMPLES), "--out", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(list((out / "shards").glob("seq-*.parquet"))) >= 1, timeout_s=600,
               what="the first shard")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    shards_at_kill = len(list((out / "shards").glob("seq-*.parquet")))
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return out, shards_at_kill
