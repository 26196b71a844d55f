import mujoco
import numpy as np
import pytest

from facetwin.profile import CommandError
from facetwin.sim.randomization import Randomization
from facetwin.sim.twin import Twin

from helpers import settled_pixels
from settled_shapes import library_shapes, stored


def test_one_second_of_random_commands_at_servo_rate_is_clean(twin: Twin):
    """In the style of MuJoCo Menagerie's model tests: no warning, no NaN."""
    p = twin.profile
    twin.reset()
    rng = np.random.default_rng(0)
    period = round(1.0 / (p.control_rate_hz * twin.model.opt.timestep))
    for _ in range(int(p.control_rate_hz)):
        twin.command(rng.uniform(p.low, p.high))
        twin.step(period)
    assert twin.time == pytest.approx(1.0)
    warnings = {mujoco.mjtWarning(i).name: w.number
                for i, w in enumerate(twin.data.warning) if w.number}
    assert warnings == {}
    assert np.all(np.isfinite(twin.data.qpos)) and np.all(np.isfinite(twin.data.qvel))
    assert np.all(np.isfinite(twin.landmarks_3d()))


@pytest.mark.slow
def test_every_control_moves_the_face_by_a_pixel(twin: Twin):
    p = twin.profile
    rest = settled_pixels(twin, p.neutral)
    for i, c in enumerate(p.controls):
        for end in (c.low, c.high):
            if end == c.neutral:
                continue
            v = p.neutral.astype(float)
            v[i] = end
            moved = np.linalg.norm(settled_pixels(twin, v) - rest, axis=1).max()
            assert moved >= 1.0, f"{c.name} at {end} moves the landmarks {moved:.2f} px"


def _image_mirror(displacement: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """The displacement field of the mirror-image motion, in pixel coordinates."""
    out = displacement[mirror].copy()
    out[:, 0] *= -1
    return out


def test_mirror_partners_move_mirror_image_landmarks(twins):
    twin = twins["x2c30"]
    p = twin.profile
    mirror = twin.face.mirror
    rest = settled_pixels(twin, p.neutral)[:468]
    pairs = {tuple(sorted((c.name, c.mirror))) for c in p.controls if c.mirror}
    assert len(pairs) == 8
    for a, b in sorted(pairs):
        for side in ("low", "high"):
            disp = {}
            for name in (a, b):
                v = p.neutral.astype(float)
                v[p.index(name)] = getattr(p.control(name), side)
                disp[name] = settled_pixels(twin, v)[:468] - rest
            err = np.abs(disp[a] - _image_mirror(disp[b], mirror)).max()
            assert err <= 1.0, f"{a}/{b} at {side}: mirror images differ by {err:.2f} px"


def test_symmetric_controls_move_both_sides_alike(twins):
    twin = twins["emo11"]
    p = twin.profile
    rest = settled_pixels(twin, p.neutral)[:468]
    for c in p.controls:
        if c.group in ("neck", "gaze"):
            continue
        v = p.neutral.astype(float)
        v[p.index(c.name)] = c.high
        disp = settled_pixels(twin, v)[:468] - rest
        err = np.abs(disp - _image_mirror(disp, twin.face.mirror)).max()
        assert err <= 1.0, f"{c.name}: left and right differ by {err:.2f} px"


def test_settling_stops_when_the_face_stops(twin: Twin):
    p = twin.profile
    twin.reset()
    twin.command(p.expressions["surprise"])
    assert not twin.arrived()
    ramp = 0
    while not twin.arrived():
        twin.step()
        ramp += 1
    assert twin.landmark_speed() > 0.005  # the ramps are done; the face still moves
    steps = ramp + twin.settle()
    assert 10 < ramp < steps < 1500
    assert twin.landmark_speed() < 0.005
    before = twin.landmarks_3d()
    twin.step(200)
    assert np.abs(twin.landmarks_3d() - before).max() < 2e-4  # 0.2 mm: it had settled


def test_library_expressions_settle_where_they_always_did(twin: Twin):
    """The stored shapes guard what agents see: the expression distance's landmark term
    (mean landmark distance) from each stored library shape stays under 0.1 mm."""
    reference = stored(twin.profile.name)
    shapes = library_shapes(twin)
    assert shapes.keys() == reference.keys()
    moved_mm = {name: 1e3 * np.linalg.norm(shapes[name] - reference[name], axis=1).mean()
                for name in shapes}
    assert max(moved_mm.values()) < 0.1, moved_mm


def test_a_settled_step_without_the_transient_rests_where_the_transient_ends(twin: Twin):
    """The quick way to rest (the settle model's start, then the same settle rule) gives
    each library expression within 0.05 mm mean landmark distance of the stored shapes
    that the simulated transient ends at."""
    reference = stored(twin.profile.name)
    quick = library_shapes(twin, quick=True)
    moved_mm = {name: 1e3 * np.linalg.norm(quick[name] - reference[name], axis=1).mean()
                for name in quick}
    assert max(moved_mm.values()) < 0.05, moved_mm


def test_present_positions_track_the_command(twin: Twin):
    p = twin.profile
    twin.reset()
    target = p.expressions["happiness"]
    twin.command(target)
    twin.settle()
    width = p.high - p.low
    assert np.abs(twin.present_controls() - target).max() < 0.15 * width.max()


def test_strain_is_zero_at_rest_and_grows_with_the_command(twin: Twin):
    p = twin.profile
    twin.reset()
    assert twin.strain().shape == (len(twin.face.triangles),)
    assert twin.strain().max() < 1e-3  # the XML stores 6 significant digits
    twin.command(p.expressions["surprise"])
    twin.settle()
    assert twin.strain().max() > 0.01


def test_same_seed_same_randomised_twin(twins):
    twin = twins["emo11"]
    r = Randomization.moderate()
    results = []
    for seed in (5, 5, 6):
        twin.reset(rng=np.random.default_rng(seed), randomization=r)
        twin.command(twin.profile.expressions["fear"])
        twin.settle()
        results.append(twin.landmarks_3d())
    twin.reset()
    assert np.array_equal(results[0], results[1])
    assert not np.allclose(results[0], results[2], atol=1e-5)


def test_command_rejects_wrong_shape_and_non_finite(twin: Twin):
    n = len(twin.profile.controls)
    with pytest.raises(CommandError, match=rf"shape \({n},\).*got shape \(3,\)"):
        twin.command(np.zeros(3))
    v = twin.profile.neutral.astype(float)
    v[1] = np.nan
    with pytest.raises(CommandError, match=twin.profile.controls[1].name):
        twin.command(v)


def test_realistic_knobs_bite_at_a_settled_pose_reproducibly(twins):
    """moderate() washes out at a settled pose; realistic()'s calibration, linkage and
    skin-shape knobs do not, and a seed draws the same perturbed twin every time."""
    twin = twins["emo11"]
    smile = twin.profile.expressions["happiness"]

    def settled(seed=None, r=None):
        twin.reset(rng=np.random.default_rng(seed), randomization=r)
        twin.command(smile)
        twin.settle()
        return twin.landmarks_3d(), twin.present_controls()

    nominal, nominal_reported = settled()
    first, reported = settled(7, Randomization.realistic())
    again, _ = settled(7, Randomization.realistic())
    other, _ = settled(8, Randomization.realistic())
    twin.reset()
    moved_mm = 1e3 * np.linalg.norm(first - nominal, axis=1)
    assert moved_mm.mean() > 0.5
    assert np.array_equal(first, again)
    assert not np.allclose(first, other, atol=1e-5)
    # The servos report through their (wrong) calibration what the nominal twin reports:
    # the command, less the same sag under the skin's pull (within backlash and gain).
    width = twin.profile.high - twin.profile.low
    assert np.all(np.abs(reported - nominal_reported) <= 0.03 * width)


def test_each_realistic_knob_can_be_switched_on_alone(twins):
    twin = twins["emo11"]
    r = Randomization.realistic()
    for knob in ("servo_offset", "linkage_anchor_mm", "skin_rest_mm"):
        twin.reset(rng=np.random.default_rng(1), randomization=r.only(knob))
        twin.settle()
        assert twin.strain().max() > 1e-3, knob  # neutral is no longer the rest shape
    twin.reset()
    assert np.allclose(twin.model.body_pos, twin._perturbation._body_pos)
    with pytest.raises(ValueError, match="unknown knobs"):
        r.only("skin_colour")
