"""Tuned on the twin, used on the robot: scoring controls on perturbed twins, and the
levers that keep more of the way there (tuning over several, correcting on one).

    env = FaceTwinEnv("emo11", randomization=Randomization.realistic())
    kept = share_kept(env, {"target": "happiness"}, controls, seed=3)   # one robot
    robust = OnTwins(env, seeds=range(100, 104))   # BO's objective over 4 robots
    best = correct(env, {"target": "happiness"}, controls, seed=3, budget=12, log_path=...)
    J = twin_jacobian(env, {"target": "happiness"}, controls)   # on the nominal twin
    best = correct_linear(env, {"target": "happiness"}, controls, seed=3, jacobian=J)

A perturbed twin (:class:`~facetwin.sim.randomization.Randomization`, drawn from the
env's seed at each reset) stands for one physical copy of the face; its features are
measured from its own neutral, as a robot's camera measures them. The share of the way
kept is ``1 - distance / neutral distance``: 1 at the target, 0 no better than neutral.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from facetwin.agents.evaluation import Evaluator
from facetwin.agents.optimize.harness import run_search, target_id
from facetwin.agents.optimize.methods import make_search
from facetwin.envs.expression import distance, residual_weights
from facetwin.sim.randomization import Randomization

CORRECTION_SIDE = 0.25  # a correction searches a box a quarter of each range wide


def neutral_distance(desired_goal) -> float:
    """The expression distance of the neutral face (features zero) from a target."""
    return float(distance(np.zeros_like(desired_goal), desired_goal))


def share_kept(env, target: dict, controls, seed: int) -> float:
    """The share of the neutral-to-target way that ``controls`` go on the twin that
    ``env.reset(seed=seed)`` draws."""
    obs, _ = env.reset(seed=seed, options=target)
    _, reward, *_ = env.step(np.asarray(controls, dtype=np.float32))
    return 1.0 + reward / neutral_distance(obs["desired_goal"])


class OnTwins(gym.Wrapper):
    """An env whose step is the mean of one step on each of the twins ``seeds`` draw,
    from the same start: tuning against it tunes for every robot of the randomisation
    at once. Features, reward and its terms are averaged; strain is the worst."""

    def __init__(self, env: gym.Env, seeds):
        super().__init__(env)
        self.seeds = [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError("OnTwins needs at least one twin seed")
        self._options: dict | None = None

    def reset(self, *, seed=None, options=None):
        self._options = options  # every twin is reset with the caller's options
        return self.env.reset(seed=self.seeds[0], options=options)

    def step(self, action):
        steps = []
        for s in self.seeds:
            self.env.reset(seed=s, options=self._options)
            steps.append(self.env.step(action))
        obs = dict(steps[0][0])
        obs["achieved_goal"] = np.mean([o["achieved_goal"] for o, *_ in steps], axis=0)
        info = dict(steps[0][4])
        info["reward_terms"] = {k: float(np.mean([st[4]["reward_terms"][k] for st in steps]))
                                for k in info["reward_terms"]}
        if "strain_max" in info:
            info["strain_max"] = max(float(st[4]["strain_max"]) for st in steps)
        reward = float(np.mean([st[1] for st in steps]))
        return obs, reward, False, False, info


def tune(env, target: dict, budget: int, log_path: Path, seed: int = 0, x0=None,
         start_side: float | None = None, progress: bool = False) -> dict:
    """BO on ``env`` (resumable from ``log_path``); the best evaluation's record."""
    p = env.get_wrapper_attr("profile")
    search = make_search("bo", p.low, p.high, p.neutral if x0 is None else x0, seed,
                         strain_limit=p.strain_ceiling, start_side=start_side)
    run = run_search(env, target, search, budget, 2, log_path,
                     {"profile": p.name, "profile_sha256": p.sha256,
                      "target": target_id(target["target"])}, progress=progress)
    return run.best


def correct(env, target: dict, controls, seed: int, budget: int, log_path: Path) -> dict:
    """Closed-loop correction on one robot (the twin ``seed`` draws): a few evaluations
    of BO about ``controls``, the nominal result; the best evaluation's record (the first
    is ``controls`` themselves, so a correction never ends worse than where it began)."""
    return tune(OnTwins(env, [seed]), target, budget, log_path, seed=seed, x0=controls,
                start_side=CORRECTION_SIDE)


def twin_jacobian(env, target: dict, controls, step: float = 0.02,
                  seed: int | None = None) -> np.ndarray:
    """How the residual features move with each control about ``controls`` on the
    nominal twin (finite differences, ``step`` of each range): a local inverse model
    that costs the robot nothing. Rows are weighted as the distance weighs them. With
    ``seed``, on the twin the env's randomisation draws with it instead (a robot's
    own Jacobian, costing it ``controls + 1`` evaluations)."""
    p = env.get_wrapper_attr("profile")
    h = step * (p.high - p.low)
    x = np.asarray(controls, dtype=float)
    away = np.where(x + h <= p.high, h, -h)
    X = np.vstack([x, x + np.diag(away)])
    where = {**target, "randomization": Randomization()} if seed is None else target
    R = np.array([r["residual"] for r in Evaluator(env, where, seed=seed or 0)(X)])
    return residual_weights()[:, None] * (R[1:] - R[0]).T / away


def correct_linear(env, target: dict, controls, seed: int, jacobian: np.ndarray,
                   steps: int = 3, ridge: float = 1e-3) -> dict:
    """Closed-loop correction on one robot with the twin's Jacobian: each step moves the
    controls by the damped least-squares answer to the residual the robot showed
    (Gauss-Newton); ``steps + 1`` evaluations, the best one's record."""
    p = env.get_wrapper_attr("profile")
    evaluate = Evaluator(env, target, seed=seed)
    w = residual_weights()
    normal = jacobian.T @ jacobian
    damped = normal + ridge * np.trace(normal) / len(normal) * np.eye(len(normal))
    x = np.asarray(controls, dtype=float)
    best = None
    for i in range(steps + 1):
        record = evaluate(x[None])[0]
        if best is None or record["score"] > best["score"]:
            best = record
        if i < steps:
            r = w * np.asarray(record["residual"])
            x = np.clip(x - np.linalg.solve(damped, jacobian.T @ r), p.low, p.high)
    return best
