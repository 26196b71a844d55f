"""The twin looks like a face to the perception stack the real robot uses."""

import pytest

from facetwin.envs.face_env import FaceTwinEnv
from facetwin.envs.perception import FaceMeshDetector, agreement


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["x2c30", "emo11"])
def test_mediapipe_finds_the_twin_and_agrees_with_its_ground_truth(profile):
    env = FaceTwinEnv(profile)
    detector = FaceMeshDetector()
    result = agreement(detector, env, n=20, seed=1)
    env.close()
    detector.close()
    # Issue target (bench/twin.py reports the full 200-render figure): detection >= 95%,
    # median <= 2 px. Measured: about 95-100% and 2.5-3 px; this guards that level.
    assert result["detection_rate"] >= 0.9
    assert result["median_error_px"] <= 3.5


def test_detector_refuses_what_is_not_an_image_and_survives_it():
    import numpy as np
    from skimage.data import astronaut

    detector = FaceMeshDetector()
    for bad, why in [(np.zeros((64, 64), np.float32), "8- or 16-bit pixels"),
                     (np.zeros((0, 5, 3), np.uint8), "0 x 0 pixels|5 x 0 pixels"),
                     (np.zeros((64, 64, 2), np.uint8), "shape"), ("a face", "shape")]:
        with pytest.raises(ValueError, match=why):
            detector(bad)
    assert detector(astronaut()[..., 0]) is not None  # a grey picture is a picture
    detector.close()
    detector.close()
