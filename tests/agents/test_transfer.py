import numpy as np
import pytest

from facetwin.agents.runlog import read_runlog
from facetwin.agents.transfer import (OnTwins, correct, correct_linear, neutral_distance,
                                      share_kept, twin_jacobian)
from facetwin.envs.expression import N_FEATURES, twin_features, unpack
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.sim.randomization import Randomization

TARGET = {"target": "happiness"}


@pytest.fixture(scope="module")
def env():
    e = FaceTwinEnv("emo11", image_size=64)
    yield e
    e.close()


@pytest.fixture
def realistic(env):
    env.randomization = Randomization.realistic()
    yield env
    env.randomization = Randomization()


def test_a_perturbed_face_is_measured_from_its_own_neutral(realistic):
    env = realistic
    obs, _ = env.reset(seed=2, options=TARGET)
    assert np.abs(obs["achieved_goal"]).max() == 0.0
    # Against the nominal twin's neutral the same resting face would look like an
    # expression: what own-neutral measurement takes out.
    nominal = unpack(twin_features(env.backend._twin, env.targets.neutral_landmarks))[0]
    assert np.linalg.norm(nominal, axis=1).mean() > 0.1
    obs, *_ = env.step(env.profile.neutral)
    assert np.linalg.norm(unpack(obs["achieved_goal"])[0], axis=1).mean() < 0.05


def test_share_kept_is_one_at_the_target_and_zero_at_neutral(env, realistic):
    library = env.profile.expressions["happiness"]
    env.randomization = Randomization()
    assert share_kept(env, TARGET, library, seed=0) > 0.99
    assert abs(share_kept(env, TARGET, env.profile.neutral, seed=0)) < 0.01
    env.randomization = Randomization.realistic()
    perturbed = [share_kept(env, TARGET, library, seed=s) for s in (0, 1)]
    assert all(0 < s < 0.99 for s in perturbed)
    assert perturbed[0] != perturbed[1]


def test_on_twins_scores_the_mean_of_the_twins(realistic):
    env = realistic
    action = env.profile.expressions["surprise"]
    alone = []
    for s in (4, 5):
        env.reset(seed=s, options=TARGET)
        alone.append(env.step(action)[1])
    assert alone[0] != alone[1]
    both = OnTwins(env, [4, 5])
    both.reset(options=TARGET)
    _, reward, _, _, info = both.step(action)
    assert reward == pytest.approx(np.mean(alone))
    assert sum(info["reward_terms"].values()) == pytest.approx(reward)


def test_correction_starts_from_the_nominal_result_and_never_ends_worse(realistic, tmp_path):
    env = realistic
    start = env.profile.expressions["happiness"]
    best = correct(env, TARGET, start, seed=3, budget=6, log_path=tmp_path / "c.jsonl")
    _, records = read_runlog(tmp_path / "c.jsonl")
    assert len(records) == 6
    assert np.allclose(records[0]["controls"], start, atol=1e-6)
    assert best["distance_mm"] == min(r["distance_mm"] for r in records)


@pytest.mark.slow
def test_the_twins_jacobian_corrects_a_perturbed_face(realistic):
    env = realistic
    start = env.profile.expressions["happiness"]
    jacobian = twin_jacobian(env, TARGET, start)
    assert env.randomization == Randomization.realistic()  # given back after the twin's
    assert jacobian.shape == (N_FEATURES, len(start))
    before = share_kept(env, TARGET, start, seed=0)
    best = correct_linear(env, TARGET, start, seed=0, jacobian=jacobian, steps=2)
    obs, _ = env.reset(seed=0, options=TARGET)
    after = 1 - best["distance_mm"] / neutral_distance(obs["desired_goal"])
    assert after > before + 0.02
