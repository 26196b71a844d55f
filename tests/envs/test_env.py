import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import facetwin.envs  # noqa: F401  (registers the env)
from facetwin.envs.face_env import FaceTwinEnv


@pytest.fixture(scope="module")
def env():
    e = gym.make("facetwin/FaceTwin-v0", profile="emo11", render_mode="rgb_array")
    yield e
    e.close()


def test_passes_gymnasium_env_checker():
    env = FaceTwinEnv("emo11", render_mode="rgb_array")
    check_env(env)


def test_spaces_come_from_the_profile(env):
    p = env.unwrapped.profile
    assert np.array_equal(env.action_space.low, p.low)
    assert np.array_equal(env.action_space.high, p.high)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (256, 256, 3) and obs["image"].dtype == np.uint8
    assert obs["landmarks"].shape == (478, 2)
    assert env.observation_space.contains(obs)


def test_reward_is_zero_at_the_target_and_negative_elsewhere(env):
    obs, info = env.reset(seed=0, options={"target": "surprise"})
    assert info["target"] == "surprise"
    p = env.unwrapped.profile
    _, r_neutral, *_ = env.step(p.expressions["neutral"])
    obs, r_target, _, _, info = env.step(p.expressions["surprise"])
    assert r_target > -0.05 > r_neutral
    assert set(info["reward_terms"]) == {"landmark_mm", "head"}
    assert env.unwrapped.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == \
        pytest.approx(r_target)


def test_target_as_a_control_vector(env):
    p = env.unwrapped.profile
    target = p.neutral.copy()
    target[p.index("jaw")] = 0.8
    env.reset(seed=0, options={"target": target})
    _, r, *_ = env.step(target)
    assert r > -0.05


def test_same_seed_same_observations():
    a = FaceTwinEnv("x2c30", randomization=None)
    results = []
    for _ in range(2):
        obs, _ = a.reset(seed=3)
        step = a.step(a.action_space.sample())[0]
        results.append((obs, step))
    for key in ("image", "landmarks", "controls", "achieved_goal"):
        assert np.array_equal(results[0][0][key], results[1][0][key])
    a.close()


def test_bad_actions_are_refused_with_the_control_named(env):
    env.reset(seed=0)
    p = env.unwrapped.profile
    bad = p.neutral.copy()
    bad[p.index("jaw")] = np.nan
    with pytest.raises(ValueError, match="'jaw'"):
        env.step(bad)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="dtype"):
        env.step(np.array(["a"] * len(p.controls)))
    with pytest.raises(ValueError, match="no expression 'smirk'"):
        env.reset(options={"target": "smirk"})
    with pytest.raises(ValueError, match="unknown backend"):
        FaceTwinEnv("emo11", backend="carrier-pigeon")


def test_vector_env_steps_in_lockstep():
    vec = gym.make_vec("facetwin/FaceTwin-v0", num_envs=2, vectorization_mode="sync",
                       profile="emo11")
    obs, _ = vec.reset(seed=1)
    obs, reward, *_ = vec.step(vec.action_space.sample())
    assert obs["image"].shape == (2, 256, 256, 3)
    assert reward.shape == (2,)
    vec.close()


def test_depth_render_and_period_stepping():
    env = FaceTwinEnv("emo11", render_mode="depth_array", step_mode="period", image_size=128)
    env.reset(seed=0)
    env.step(env.unwrapped.profile.expressions["happiness"])
    depth = env.render()
    face = depth[depth > 0]
    assert depth.shape == (128, 128)
    assert 0.25 < face.min() < face.max() < 0.6  # the face, some 0.3-0.5 m from the camera
    env.close()


def test_randomised_env_is_reproducible():
    from facetwin.sim.randomization import Randomization
    env = FaceTwinEnv("emo11", randomization=Randomization.moderate())
    a, _ = env.reset(seed=11)
    b, _ = env.reset(seed=11)
    c, _ = env.reset(seed=12)
    assert np.array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], c["image"])
    env.close()


@pytest.mark.slow
def test_targets_computed_mid_episode_leave_the_live_face_alone():
    from skimage.data import astronaut

    from facetwin.sim.randomization import Randomization

    def episode(look_at_targets: bool):
        env = FaceTwinEnv("emo11", features="camera", image_size=128, step_mode="period",
                          randomization=Randomization.moderate())
        p = env.profile
        env.reset(seed=3, options={"target": "happiness"})
        env.step(p.expressions["surprise"])  # mid-motion: the face is still moving
        twin = env.backend._twin  # white-box: the live face's own state
        d = twin.data
        before = (d.qpos.copy(), d.qvel.copy(), d.ctrl.copy(), twin.time)
        if look_at_targets:
            target = env.features_of(p.vector({"jaw": 0.7}))
            env.human_features_of(astronaut())
            env.perceived_reach()
            after = (d.qpos.copy(), d.qvel.copy(), d.ctrl.copy(), twin.time)
            for a, b in zip(before, after):
                np.testing.assert_array_equal(a, b)
        else:
            target = None
        obs, *_ = env.step(p.expressions["surprise"])
        env.close()
        return obs, target

    looked, target = episode(look_at_targets=True)
    plain, _ = episode(look_at_targets=False)
    for key in ("image", "controls", "achieved_goal"):  # the episode went on as if untouched
        np.testing.assert_array_equal(looked[key], plain[key])
    # Targets are seen through the nominal camera, whatever this episode's camera was.
    nominal = FaceTwinEnv("emo11", features="camera", image_size=128)
    np.testing.assert_array_equal(target, nominal.features_of(nominal.profile.vector({"jaw": 0.7})))
    nominal.close()


def test_settle_time_is_reported_in_seconds(env):
    env.reset(seed=0)
    p = env.unwrapped.profile
    _, _, _, _, info = env.step(p.expressions["surprise"])
    assert 0.05 < info["settle_s"] < 1.5  # simulated seconds for a ramp and a settle
    assert "settle_steps" not in info


@pytest.mark.slow
def test_library_expressions_stay_safe_on_realistic_twins():
    """The shipped library passes the safety filter unchanged and stays under the
    strain ceiling on perturbed copies of the face."""
    from facetwin.sim.randomization import Randomization

    env = FaceTwinEnv("emo11", image_size=64, randomization=Randomization.realistic())
    p = env.profile
    for seed in (0, 1):
        for name, controls in p.expressions.items():
            env.reset(seed=seed)
            _, _, _, _, info = env.step(controls)
            assert info["safety"]["reasons"] == [], (seed, name)
            assert info["strain_max"] <= p.strain_ceiling, (seed, name)
    env.close()


@pytest.mark.slow
def test_the_env_moves_without_looking_and_says_when_the_face_is_at_rest():
    from facetwin.sim.randomization import Randomization

    env = FaceTwinEnv("emo11", image_size=64, step_mode="period")
    p = env.profile
    env.reset(seed=0, options={"target": "happiness"})
    happy = p.expressions["happiness"]
    assert not env.act(happy).still  # one period: the servos are still on their way
    for _ in range(env.settle_periods):
        *_, info = env.step(happy)
        if info["still"]:
            break
    assert info["still"] and info["safety"]["reasons"] == []
    assert env.act(p.expressions["surprise"], "settle").still
    with pytest.raises(ValueError, match="mode"):
        env.act(happy, "forever")
    # One perturbed episode, asked for through reset: measured from its own neutral.
    obs, _ = env.reset(seed=4, options={"target": "happiness",
                                        "randomization": Randomization.realistic()})
    assert np.abs(obs["achieved_goal"]).max() == 0.0 and env.randomization == Randomization()
    with pytest.raises(ValueError, match="randomization"):
        env.reset(options={"randomization": "realistic"})
    env.close()
