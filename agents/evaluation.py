"""Evaluating control vectors on a face, through the Gymnasium API only.

An evaluation resets the env with the target (so every evaluation starts from the
same neutral face and depends on its controls alone), steps once with the controls
(the env's safety filter decides what is applied; ``step_mode="settle"`` waits until
the face is still) and reads the score. The same code drives one env (the robot) or
a vector env (several twins evaluating a batch in parallel).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np


RESIDUAL_DECIMALS = 4  # 0.1 µm: far below what any camera sees, and a compact log


class Evaluator:
    """Scores batches of control vectors against one target.

    ``target`` is what ``env.reset(options=...)`` takes (``{"target": name}``, a control
    vector, or a picture). Without ``scorer`` the score is the env's reward (minus the
    expression distance) and each evaluation keeps the residual features (achieved
    minus desired) that the Bayesian optimiser models; with ``scorer`` (any function of
    one face's observation: its ``image``, its ``achieved_goal`` features; higher is
    better, e.g. a learned preference model) the score is its value, or, where it
    returns a dict, the dict's ``"score"``, its other entries kept in the record.
    """

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, target: dict,
                 scorer: Callable[[dict], float] | None = None, seed: int = 0):
        self.env, self.target, self.scorer, self.seed = env, target, scorer, seed
        self.vector = isinstance(env, gym.vector.VectorEnv)
        self.parallel = env.num_envs if self.vector else 1

    def __call__(self, controls: np.ndarray) -> list[dict]:
        controls = np.atleast_2d(np.asarray(controls, dtype=float))
        out = []
        for start in range(0, len(controls), self.parallel):
            chunk = controls[start:start + self.parallel]
            out += self._run(chunk)
        return out

    def _run(self, chunk: np.ndarray) -> list[dict]:
        n = len(chunk)
        self.env.reset(seed=self.seed, options=self.target)
        if self.vector:
            # Idle workers repeat the last command; their results are dropped.
            padded = np.vstack([chunk, np.repeat(chunk[-1:], self.parallel - n, axis=0)])
            obs, reward, _, _, info = self.env.step(padded.astype(np.float32))
        else:
            obs, reward, _, _, info = self.env.step(chunk[0].astype(np.float32))
            obs = {k: v[None] for k, v in obs.items()}
            reward, info = np.array([reward]), _batched(info)
        records = []
        for i in range(n):
            terms = info["reward_terms"]
            rec = {
                "controls": chunk[i].tolist(),
                "applied": np.asarray(info["applied"][i], dtype=float).round(6).tolist(),
                "distance_mm": -float(terms["landmark_mm"][i]) - float(terms["head"][i]),
                "strain": float(info["strain_max"][i]) if "strain_max" in info else None,
            }
            if self.scorer is None:
                rec["score"] = float(reward[i])
                residual = obs["achieved_goal"][i].astype(float) - obs["desired_goal"][i]
                rec["residual"] = residual.round(RESIDUAL_DECIMALS).tolist()
            else:
                value = self.scorer({k: v[i] for k, v in obs.items()})
                rec.update(value if isinstance(value, dict) else {"score": float(value)})
            records.append(rec)
        return records


def _batched(info: dict) -> dict:
    """A single env's info laid out like a vector env's (a batch of one)."""
    return {k: _batched(v) if isinstance(v, dict) else [v] for k, v in info.items()}
