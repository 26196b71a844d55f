import re
from pathlib import Path

import numpy as np
import pytest

from facetwin import profile as profiles
from facetwin.profile import ProfileError


def test_shipped_profiles_load_with_their_expression_library():
    x2c = profiles.load("x2c30")
    assert len(x2c.controls) == 30
    jaw = x2c.control("jaw_pitch")
    assert (jaw.low, jaw.high, jaw.neutral) == (0.0, 1.0, 1.0)
    assert x2c.control("eyelid_upper_left").low == -1.0
    assert x2c.control("lip_corner_raise_left").mirror == "lip_corner_raise_right"
    emo = profiles.load("emo11")
    expression = [c for c in emo.controls if c.group not in ("neck", "gaze")]
    assert len(expression) == 11
    assert sum(len(c.servos) for c in emo.controls) == 26
    for p in (x2c, emo):
        assert set(p.expressions) == {"neutral", "happiness", "sadness", "surprise",
                                      "anger", "disgust", "fear"}
        for v in p.expressions.values():
            assert np.all(v >= p.low) and np.all(v <= p.high)


def test_mirror_of_realises_the_partner_as_its_mirror_image():
    p = profiles.load("x2c30")
    left, right = p.control("lip_corner_raise_left"), p.control("lip_corner_raise_right")
    assert right.twin.linkage.landmarks == left.twin.linkage.landmarks
    assert right.twin.linkage.mirrored and not left.twin.linkage.mirrored
    assert right.twin.linkage.parent == "lip_corner_stretch_right"
    assert p.control("eyelid_upper_right").twin.joints == ("lid_upper_right",)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    return path


def _mutated(old: str, new: str, count: int = 1) -> str:
    text = (profiles.ROBOTS_DIR / "emo11.toml").read_text()
    assert old in text
    return text.replace(old, new, count)


@pytest.mark.parametrize("old, new, control, field", [
    ('name = "brow_outer"\ngroup = "brows"\nrange = [0.0, 1.0]\n',
     'name = "brow_outer"\ngroup = "brows"\n', "brow_outer", "range"),
    ('name = "jaw"\ngroup = "jaw"\nrange = [0.0, 1.0]\nneutral = 0.0',
     'name = "jaw"\ngroup = "jaw"\nrange = [0.0, 1.0]\nneutral = 1.5', "jaw", "neutral"),
    ('name = "brow_outer"', 'name = "brow_inner"', "brow_inner", "name"),
    ('servos = [3, 4]', 'servos = [1, 4]', "brow_outer", "servos"),
    ('group = "lids"', 'group = "eyes"', "lid_upper", "group"),
    ('joints = ["jaw_pitch"]', 'joints = ["jaw_roll"]', "jaw", "twin.joints"),
    ('range = [0.0, 1.0]\nneutral = 0.5\nservos = [11]',
     'range = [1.0, 0.0]\nneutral = 0.5\nservos = [11]', "lip_upper_center", "range"),
    ('landmarks = [0, 11, 12, 13]', 'landmarks = [0, 11, 12, 900]', "lip_upper_center",
     "twin.landmarks"),
    ('neutral = 0.5\nservos = [1, 2]', 'neutral = 0.5\nmirror = "brow_left"\nservos = [1, 2]',
     "brow_inner", "mirror"),
])
def test_malformed_profile_names_file_control_and_field(tmp_path, old, new, control, field):
    path = _write(tmp_path, _mutated(old, new))
    with pytest.raises(ProfileError) as err:
        profiles.load(path)
    message = str(err.value)
    assert str(path) in message
    assert f"'{control}'" in message
    assert f"field '{field}'" in message


def test_expression_with_unknown_control_or_value_out_of_range(tmp_path):
    path = _write(tmp_path, _mutated("[expressions.happiness]\n",
                                     "[expressions.happiness]\nsmile = 1.0\n"))
    with pytest.raises(ProfileError, match=r"expression 'happiness'.*field 'smile'"):
        profiles.load(path)
    path = _write(tmp_path, _mutated("[expressions.happiness]\n",
                                     "[expressions.happiness]\nneck_roll = 3.0\n"))
    with pytest.raises(ProfileError, match=r"outside the range"):
        profiles.load(path)


def test_unknown_profile_and_invalid_toml(tmp_path):
    with pytest.raises(ProfileError, match="available: emo11, rena25, x2c30"):
        profiles.load("nonexistent")
    with pytest.raises(ProfileError, match=re.escape(str(tmp_path))):
        profiles.load(_write(tmp_path, "name = [unclosed"))


def test_mirror_partner_must_name_back(tmp_path):
    text = (profiles.ROBOTS_DIR / "x2c30.toml").read_text().replace(
        'mirror = "brow_inner_left"', 'mirror = "brow_outer_left"', 1)
    with pytest.raises(ProfileError,
                       match=r"control 'brow_inner_left'.*field 'mirror'.*does not name"):
        profiles.load(_write(tmp_path, text))


def test_normalise_is_piecewise_linear_about_neutral():
    p = profiles.load("x2c30")
    i = p.index("lip_corner_raise_right")  # neutral 0.62
    c = p.controls[i]
    u = [p.normalise(p.vector({c.name: v}))[i] for v in (0.0, 0.62, 1.0, 0.81)]
    assert np.allclose(u, [-1, 0, 1, 0.5])
    ends = [p.twin_targets(p.vector({c.name: v}))[i] for v in (0.0, 1.0)]
    assert np.allclose(ends, [c.twin.at_low, c.twin.at_high])
    v = p.expressions["happiness"]
    assert np.allclose(p.denormalise(p.normalise(v)), v)
