"""Preference models: a score that agrees with the annotators' comparisons.

    info = fit_preference(pool, read_answers(log), Path("out/pref"), kind="ranknet")  # fit.py
    model = load_preference(Path("out/pref"), profile)                               # store.py
    model.score_features(features)     # higher: preferred
    model(obs)                         # the optimisers' scorer hook (an observation)

Kinds:

- ``ranknet``: a Siamese RankNet (HAPI, Sec. III-B): one small network scores each face
  of a pair from its features' embedding (principal components, :mod:`.embedding`);
  P(a preferred to b) = sigmoid(s(a) - s(b)), trained with the pairwise cross-entropy
  (can't tell is a target of 1/2);
- ``ranknet-image``: the same over the render (64 px, a small convolutional network);
- ``ranknet-fer``: the same over the face as an emotion recogniser sees it: the frozen
  FER2013 mini-Xception's 128 penultimate features (:mod:`facetwin.envs.emotion`), as
  HAPI's RankNet sits on a FER2013-trained backbone;
- ``pairwise-gp``: BoTorch's ``PairwiseGP`` on the embedding (Chu & Ghahramani's
  preference GP, Laplace approximation); the score is its posterior mean. Can't-tell
  answers carry no comparison for it and are left out.

This module holds the models; fitting them is :mod:`.fit`, the figures they are judged
by :mod:`.metrics`, their files :mod:`.store`. Fitting reports k-fold cross-validated
accuracy on held-out answered pairs (ties left out of the count) and, against every
annotator whose merge sort is complete, Kendall's tau between the model's ranking of the
pool and theirs. Saved as ``preference.safetensors`` (tensors only) and
``preference.json`` (kind, profile and its sha256, the pool, the figures).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from facetwin.agents.preference.embedding import Embedding
from facetwin.errors import FaceTwinError
from facetwin.profile import Profile
from facetwin.threads import single_threaded

KINDS = ("ranknet", "ranknet-image", "ranknet-fer", "pairwise-gp")
IMAGE_KINDS = ("ranknet-image", "ranknet-fer")  # they score renders, not features
IMAGE_SIDE = 64


class PreferenceError(FaceTwinError, ValueError):
    """A preference model that cannot be fitted or used; the message says why."""


class RankNet(nn.Module):
    def __init__(self, n_inputs: int, hidden: int = 32):
        super().__init__()
        self.config = {"n_inputs": n_inputs, "hidden": hidden}
        self.net = nn.Sequential(nn.Linear(n_inputs, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class ImageRankNet(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.config = {"width": width}
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 5, 2, 2), nn.SiLU(), nn.Conv2d(w, 2 * w, 3, 2, 1), nn.SiLU(),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.SiLU(), nn.Conv2d(4 * w, 4 * w, 3, 2, 1),
            nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float() / 127.5 - 1.0).squeeze(-1)


class FerFeatures:
    """The frozen recogniser's penultimate features of faces, standardised."""

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None):
        from facetwin.envs.emotion import EmotionReader

        self.reader, self.mean, self.std = EmotionReader(), mean, std

    def __call__(self, images, landmarks=None) -> torch.Tensor:
        """``landmarks`` place each crop; without them MediaPipe finds each face."""
        images = list(images)
        marks = list(landmarks) if landmarks is not None else [None] * len(images)
        crops = []
        for image, lm in zip(images, marks):
            crop = self.reader.crop(np.asarray(image)[..., :3], lm)
            if crop is None:
                raise PreferenceError("the recogniser found no face in a render to score")
            crops.append(crop)
        f = self.reader.features(np.stack(crops))
        if self.mean is None:
            self.mean, self.std = f.mean(axis=0), f.std(axis=0) + 1e-6
        return torch.as_tensor((f - self.mean) / self.std, dtype=torch.float32)


class PreferenceModel:
    """A fitted preference model: scores for faces, higher is preferred."""

    def __init__(self, kind: str, embedding: Embedding | None, module, config: dict,
                 fer: FerFeatures | None = None):
        self.kind, self.embedding, self.module, self.config = kind, embedding, module, config
        self.fer = fer

    def score_features(self, features: np.ndarray) -> np.ndarray:
        if self.kind in IMAGE_KINDS:
            raise PreferenceError("this model scores renders: use score_images")
        z = torch.as_tensor(self.embedding(np.atleast_2d(features)))
        with torch.no_grad(), single_threaded():
            if self.kind == "pairwise-gp":
                return self.module.posterior(z.double()).mean.squeeze(-1).numpy()
            return self.module(z.float()).numpy()

    def score_images(self, images, landmarks=None) -> np.ndarray:
        """Scores of renders; ``landmarks`` (pixels) place a ranknet-fer model's crops."""
        if self.kind not in IMAGE_KINDS:
            raise PreferenceError(f"a {self.kind} model scores features: use score_features")
        with torch.no_grad(), single_threaded():
            if self.kind == "ranknet-fer":
                return self.module(self.fer(images, landmarks)).numpy()
            return self.module(image_batch(images)).numpy()

    def start(self, profile: Profile) -> np.ndarray:
        """The pool's best-scored face: where an optimiser of this score starts."""
        return np.array([self.config["best_in_pool"][n] for n in profile.names])

    def box(self, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
        """The controls' box the pool spans: where the score has been learnt."""
        return tuple(np.array([self.config[k][n] for n in profile.names])
                     for k in ("pool_low", "pool_high"))

    def __call__(self, obs: dict) -> float:
        if self.kind in IMAGE_KINDS:
            return float(self.score_images([obs["image"]], [obs["landmarks"]])[0])
        return float(self.score_features(obs["achieved_goal"])[0])


def image_batch(images) -> torch.Tensor:
    small = [np.asarray(Image.fromarray(np.asarray(i)[..., :3]).resize((IMAGE_SIDE,) * 2))
             for i in images]
    return torch.as_tensor(np.stack(small)).permute(0, 3, 1, 2).contiguous()
