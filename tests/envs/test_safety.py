import dataclasses

import numpy as np
import pytest

from facetwin import profile as profiles
from facetwin.envs.envelope import EnvelopeError, StrainEnvelope, envelope_path, load_envelope
from facetwin.envs.safety import CommandError, SafetyFilter
from facetwin.profile import Exclusive, Forbidden, Tie

ALL = ["x2c30", "emo11", "rena25"]


@pytest.fixture(scope="module")
def rena():
    return profiles.load("rena25")


def violations(f: SafetyFilter, v: np.ndarray) -> list[str]:
    """Every rule of the profile that ``v`` breaks."""
    p, u = f.profile, f.profile.normalise(v)
    out = []
    if np.any(v < p.low - 1e-9) or np.any(v > p.high + 1e-9):
        out.append("range")
    for c in p.couplings:
        if isinstance(c, Tie):
            vals = [u[p.index(n)] for n in c.controls]
            if max(vals) - min(vals) > 1e-6:
                out.append(f"tie {c.controls}")
        elif isinstance(c, Exclusive):
            active = [g for g in c.groups if max(abs(u[p.index(n)]) for n in g) > c.active_above]
            if len(active) > 1:
                out.append(f"exclusive {active}")
        elif isinstance(c, Forbidden):
            if all((v[p.index(w.control)] > w.above) if w.above is not None
                   else (v[p.index(w.control)] < w.below) for w in c.when):
                out.append("forbidden")
    if f.envelope.predict(u) > f.envelope.ceiling + 1e-6:
        out.append("strain")
    return out


@pytest.mark.parametrize("name", ALL)
def test_library_expressions_pass_unchanged_and_envelopes_fit_their_profiles(name):
    p = profiles.load(name)
    f = SafetyFilter(p)
    for expr, v in p.expressions.items():
        applied, report = f.target(v)
        assert not report.modified, (expr, report.reasons())
        np.testing.assert_array_equal(applied, v)


def test_bad_commands_are_refused_naming_control_and_value(rena):
    f = SafetyFilter(rena)
    f.reset(rena.neutral)
    v = rena.neutral.astype(float)
    v[rena.index("jaw_open")] = np.nan
    with pytest.raises(CommandError, match="'jaw_open' is nan"):
        f(v)
    v[rena.index("jaw_open")] = np.inf
    with pytest.raises(CommandError, match="'jaw_open' is inf"):
        f(v)
    with pytest.raises(CommandError, match=r"shape \(25,\).*got shape \(24,\)"):
        f(rena.neutral[:-1])
    for wrong in (rena.neutral.astype(bool), rena.neutral.astype(complex),
                  np.array(["0.5"] * 25), [[0.1, 0.2], [0.3]], {"jaw_open": 1.0}):
        with pytest.raises(CommandError):
            f(wrong)
    np.testing.assert_array_equal(f.last, rena.neutral)  # nothing was applied


def test_clamps_ties_exclusive_groups_and_forbidden_combinations(rena):
    f = SafetyFilter(rena)
    v = rena.vector({"eye_yaw_left": 0.9, "eye_yaw_right": 0.5, "smile_left": 0.5,
                     "smile_right": 0.5, "sad_left": 0.3, "sad_right": 0.3,
                     "brow_raise_left": 0.2, "brow_frown_left": 0.9,
                     "jaw_open": 0.95, "head_pitch": 0.05})
    v[rena.index("blink_left")] = 1.7
    applied, report = f.target(v)
    got = dict(zip(rena.names, applied))
    assert report.clamped == ["blink_left"]
    assert got["blink_left"] == got["blink_right"] == pytest.approx(0.5)  # clamped, then tied
    assert got["eye_yaw_left"] == got["eye_yaw_right"] == pytest.approx(0.7)
    assert got["sad_left"] == got["sad_right"] == 0.0
    assert got["smile_left"] == pytest.approx(0.5)
    assert report.strain_scale == 1.0  # within the skin's ceiling: nothing else scaled it
    assert got["brow_raise_left"] == 0.0
    assert got["brow_frown_left"] == pytest.approx(0.9)
    assert {"sad_left", "brow_raise_left"} <= set(report.released)
    assert not (got["jaw_open"] > 0.8 and got["head_pitch"] < 0.2)
    assert report.forbidden == ["jaw_open", "head_pitch"]
    assert violations(f, applied) == []


def test_strain_envelope_scales_back_and_the_twin_agrees(rena, twins):
    f = SafetyFilter(rena)
    twin = twins["rena25"]
    rng = np.random.default_rng(3)
    extreme = rena.vector({"smile_left": 1, "smile_right": 1, "jaw_open": 1, "blink_left": 1,
                           "blink_right": 1, "lip_upper_left": 1, "lip_upper_right": 1,
                           "brow_raise_left": 1, "brow_raise_right": 1})
    scaled = 0
    for command in [extreme, *rng.uniform(rena.low, rena.high, (10, 25))]:
        applied, report = f.target(command)
        scaled += report.strain_scale < 1
        assert f.envelope.predict(rena.normalise(applied)) <= rena.strain_ceiling + 1e-6
        twin.reset(controls=applied)
        assert twin.strain().max() <= rena.strain_ceiling
    assert scaled >= 1


def test_rate_limit_ramps_at_profile_speed_and_groups_yield_before_rising(rena):
    f = SafetyFilter(rena)
    f.reset(rena.vector({"smile_left": 1.0, "smile_right": 1.0}))
    goal = rena.vector({"sad_left": 1.0, "sad_right": 1.0, "head_yaw": 1.0})
    speed = np.array([c.max_speed for c in rena.controls]) * rena.control_period_s
    previous, periods = f.last.copy(), 0
    for applied, report in f.ramp(goal):
        periods += 1
        assert np.all(np.abs(applied - previous) <= speed + 1e-9)
        assert violations(f, applied) == []  # never smile and sadness at once
        previous = applied
    np.testing.assert_allclose(previous, goal)
    # Smile must fall (4 periods at 0.25/period) before sadness rises (4 more).
    assert periods == 8


@pytest.mark.slow
def test_fuzzed_commands_never_escape_the_envelope(rena):
    f = SafetyFilter(rena)
    rng = np.random.default_rng(0)
    refused = 0
    speed = np.array([c.max_speed for c in rena.controls]) * rena.control_period_s
    for _ in range(10_000):
        kind = rng.integers(6)
        v = rng.uniform(-2, 3, 25)
        if kind == 0:
            v[rng.integers(25)] = rng.choice([np.nan, np.inf, -np.inf])
        elif kind == 1:
            v = rng.uniform(0, 1, rng.integers(0, 40))
        elif kind == 2:
            v = v.astype(rng.choice([np.float16, np.int64, np.uint8, bool, complex, object]))
        elif kind == 3:
            v = rng.uniform(0, 1, 25) * (rng.random(25) < 0.3)
        before = f.last.copy()
        try:
            applied, _ = f(v)
        except CommandError:
            refused += 1
            np.testing.assert_array_equal(f.last, before)
            continue
        assert violations(f, applied) == []
        assert np.all(np.abs(applied - before) <= speed + 1e-9)
    assert 2_000 < refused < 6_000


def test_profile_couplings_are_validated(tmp_path):
    text = profiles.load("rena25").path.read_text()
    bad = text.replace('when = [{ control = "jaw_open", above = 0.8 }',
                       'when = [{ control = "jaw_open", above = -0.1 }')
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    with pytest.raises(profiles.ProfileError, match="coupling #8: field 'when': 'jaw_open' above"):
        profiles.load(path)
    path.write_text(text.replace('controls = ["sad_left", "sad_right"]',
                                 'controls = ["sad_left", "frown"]'))
    with pytest.raises(profiles.ProfileError, match=r"unknown controls \['frown'\]"):
        profiles.load(path)


def test_an_envelope_refuses_another_profile_version(tmp_path):
    p = profiles.load("rena25")
    envelope = load_envelope(p)
    edited = dataclasses.replace(p, sha256="0" * 64)
    with pytest.raises(EnvelopeError,
                       match="another version of profile 'rena25'.*facetwin envelope"):
        StrainEnvelope.load(envelope_path(p), edited)
    with pytest.raises(EnvelopeError, match="no strain envelope"):
        StrainEnvelope.load(tmp_path / "missing.json", p)
    assert envelope.margin >= 1.0
