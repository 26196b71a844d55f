"""An inverse model as an agent: a target in, controls out, in one step.

    agent = InverseModelAgent(Path("models/emo11-mlp"), env)
    controls = agent.propose("happiness")     # a library name, controls, features, a picture
    record = agent.evaluate("happiness")      # the optimisers' record: score, applied, ...

It talks to the env alone (the env works out the target's features on its nominal twin,
and applies the controls through its safety filter), so it runs on ``backend="serial"``
unchanged. A model reads what it was trained on: ground-truth features need an env with
``features="ground_truth"`` (the twin), MediaPipe features one with ``features="camera"``
(the twin or the robot), and the image model a picture of the face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facetwin.agents.evaluation import Evaluator
from facetwin.agents.protocol import Solution
from facetwin.agents.inverse.inputs import image_input
from facetwin.agents.inverse.store import ModelError, load_model
from facetwin.envs.expression import N_FEATURES, pack
from facetwin.envs.perception import check_picture
from facetwin.landmarks import N_LANDMARKS

ENV_FEATURES = {"ground_truth": "ground_truth", "mediapipe": "camera"}


class InverseModelAgent:
    """An inverse model (``facetwin train``) that turns a target into controls in one step.

    Args:
        model_dir: the model's folder (``model.safetensors`` and ``model.json``).
        env: the env it acts through; its features must be what the model reads.
    """

    def __init__(self, model_dir: Path, env):
        self.env = env
        self.base = env.unwrapped
        self.profile = self.base.profile
        self.module, self.config = load_model(model_dir, self.profile)
        self.inputs = self.config["inputs"]
        needed = ENV_FEATURES.get(self.inputs)
        if needed is not None and self.base.features != needed:
            raise ModelError(f"{model_dir} reads {self.inputs} features: make the env with "
                             f"features={needed!r}")

    def features_of(self, target) -> np.ndarray:
        """A target's expression features, as the env measures them."""
        if isinstance(target, str):
            if target not in self.base.expressions:
                raise ValueError(f"profile {self.profile.name!r} has no expression {target!r}")
            return self.base.features_of(self.base.expressions[target])
        a = np.asarray(target)
        if a.shape == (N_FEATURES,):
            return a.astype(np.float32)
        if a.shape == (N_LANDMARKS, 3):  # landmark displacements (mm), the head at rest
            return pack(a, np.zeros(3))
        if a.shape == (len(self.profile.controls),):
            return self.base.features_of(a)
        return self.base.human_features_of(a)

    def propose(self, target) -> np.ndarray:
        """The controls the model gives for ``target``."""
        if self.inputs == "image":
            picture = check_picture(target, "target picture")
            return self._controls(image_input(picture, self.config["architecture"]["image_size"]))
        return self._controls(self.features_of(target))

    def propose_features(self, features) -> np.ndarray:
        """The controls the model gives for expression features (the env's
        ``desired_goal``); a feature model's way to take any target the env takes."""
        if self.inputs == "image":
            raise ModelError("an image model needs the target's picture, not its features")
        return self._controls(np.asarray(features, np.float32))

    @torch.no_grad()
    def _controls(self, x) -> np.ndarray:
        y = self.module(torch.as_tensor(np.asarray(x)[None]))[0].numpy()
        return self.profile.from_box(y).astype(np.float32)

    def evaluate(self, target) -> dict:
        """Reset to ``target`` (what ``env.reset`` takes: a name, controls, a picture),
        apply the proposal once, and score it as the optimisers score an evaluation."""
        return Evaluator(self.env, {"target": target})(self.propose(target)[None])[0]

    def solve(self, target: dict) -> Solution:
        """The :class:`~facetwin.agents.protocol.ExpressionAgent` protocol: one proposal,
        evaluated once."""
        controls = self.propose(target["target"])
        return Solution(controls, Evaluator(self.env, target)(controls[None])[0], 1)
