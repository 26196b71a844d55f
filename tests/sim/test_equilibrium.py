"""The settle model's cache: a fitted model and the one read back from it are the same
model, so the run that fits it settles exactly as every later run does."""

import numpy as np

from facetwin import profile as profiles
from facetwin.sim.equilibrium import SettleModel, fitted


def _fit(p, rng):
    commands = rng.uniform(p.low, p.high, (60, len(p.controls)))
    states = commands @ rng.normal(size=(len(p.controls), 25)) + rng.normal(size=25)
    ramps = rng.uniform(0.02, 0.2, 60)
    return fitted(p, "f" * 64, commands, states, ramps, 0.1 + 0.3 * ramps)


def test_a_fitted_model_is_the_one_its_cache_gives_back(tmp_path):
    p, rng = profiles.load("emo11"), np.random.default_rng(0)
    model = _fit(p, rng)
    again = SettleModel.load(model.save(tmp_path / "m.safetensors"), p.sha256, "f" * 64)
    command = rng.uniform(p.low, p.high)
    assert np.array_equal(again.weights, model.weights)
    assert np.array_equal(again.rest(command), model.rest(command))
    assert again.settle_s(0.07) == model.settle_s(0.07)


def test_a_cache_of_another_face_or_a_damaged_one_is_fitted_again(tmp_path):
    p = profiles.load("emo11")
    path = _fit(p, np.random.default_rng(1)).save(tmp_path / "m.safetensors")
    assert SettleModel.load(path, p.sha256, "e" * 64) is None
    path.write_bytes(path.read_bytes()[:100])
    assert SettleModel.load(path, p.sha256, "f" * 64) is None
