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
