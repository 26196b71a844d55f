import imageio.v3 as iio
import pytest
from PIL import Image

from facetwin.cli import main


@pytest.mark.slow
def test_expressions_writes_a_video_and_a_contact_sheet(tmp_path, capsys):
    rc = main(["expressions", "--profile", "emo11", "--out", str(tmp_path), "--size", "128",
               "--transition", "0.12", "--hold", "0.04"])
    assert rc == 0
    video = tmp_path / "emo11_expressions.mp4"
    frames = iio.imread(video)
    assert frames.shape[1:] == (128, 128, 3)
    assert len(frames) >= 7 * 4
    assert frames[0].std() > 10  # a picture, not a blank frame
    sheet = Image.open(tmp_path / "emo11_contact_sheet.png")
    assert sheet.size == (4 * 128, 2 * 128)


def test_profiles_lists_both_and_bad_profile_is_a_clear_error(capsys):
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert "x2c30" in out and "emo11" in out
    assert main(["demo", "--profile", "nope"]) == 2
    assert "no robot profile 'nope'" in capsys.readouterr().err
