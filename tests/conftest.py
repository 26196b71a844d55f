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
