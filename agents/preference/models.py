"""Preference models: a score that agrees with the annotators' comparisons.

    info = fit_preference(pool, read_answers(log), Path("out/pref"), kind="ranknet")
    model = load_preference(Path("out/pref"), profile)
    model.score_features(features)     # higher: preferred
    model(obs)                         # the optimisers' scorer hook (an observation)

Kinds:

- ``ranknet``: a Siamese RankNet (HAPI, Sec. III-B): one small network scores each face
  of a pair from its features' embedding (principal components, :mod:`embedding`);
  P(a preferred to b) = sigmoid(s(a) - s(b)), trained with the pairwise cross-entropy
  (can't tell is a target of 1/2);
- ``ranknet-image``: the same over the render (64 px, a small convolutional network);
- ``ranknet-fer``: the same over the face as an emotion recogniser sees it: the frozen
  FER2013 mini-Xception's 128 penultimate features (:mod:`facetwin.envs.emotion`), as
  HAPI's RankNet sits on a FER2013-trained backbone;
- ``pairwise-gp``: BoTorch's ``PairwiseGP`` on the embedding (Chu & Ghahramani's
  preference GP, Laplace approximation); the score is its posterior mean. Can't-tell
  answers carry no comparison for it and are left out.

Fitting reports k-fold cross-validated accuracy on held-out answered pairs (ties left
out of the count) and, against every annotator whose merge sort is complete, Kendall's
tau between the model's ranking of the pool and theirs. Saved as ``preference.safetensors``
(tensors only) and ``preference.json`` (kind, profile and its sha256, the pool, the
figures).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save
from scipy.stats import kendalltau
from torch import nn

from facetwin.agents.preference.answers import AnswerLogError
from facetwin.agents.preference.embedding import Embedding
from facetwin.agents.preference.pairing import sorting_state
from facetwin.agents.preference.pool import Pool
from facetwin.envs.emotion import WEIGHTS_SHA256
from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write, claim_output, read_document
from facetwin.profile import Profile
from facetwin.threads import single_threaded
from facetwin.weights import build, load_tensors

FORMAT = "facetwin-preference/1"
KINDS = ("ranknet", "ranknet-image", "ranknet-fer", "pairwise-gp")
IMAGE_KINDS = ("ranknet-image", "ranknet-fer")  # they score renders, not features
IMAGE_SIDE = 64
TARGETS = {"left": 1.0, "right": 0.0, "tie": 0.5}


class PreferenceError(FaceTwinError, ValueError):
    """A preference model that cannot be fitted or used; the message says why."""


@dataclass
class Pairs:
    """Answered pairs as pool indices: ``target`` is 1 when ``first`` was preferred."""
    first: np.ndarray
    second: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, rows) -> Pairs:
        return Pairs(self.first[rows], self.second[rows], self.target[rows])


def pairs_of(pool: Pool, answers: list[dict]) -> Pairs:
    index = {item: i for i, item in enumerate(pool.ids)}
    rows = []
    for n, r in enumerate(answers, 1):
        missing = [i for i in r["pair"] if i not in index]
        if missing:
            raise AnswerLogError(f"answer {n} compares {missing[0]!r}, which is not in pool "
                                 f"{pool.path}: the answers belong to another pool")
        rows.append((index[r["pair"][0]], index[r["pair"][1]], TARGETS[r["answer"]]))
    if not rows:
        raise PreferenceError("no answers to learn from")
    first, second, target = (np.array(c) for c in zip(*rows))
    return Pairs(first.astype(int), second.astype(int), target.astype(float))


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


def train_ranknet(net: nn.Module, inputs: torch.Tensor, pairs: Pairs, epochs: int,
                  seed: int, batch: int = 256, weight_decay: float = 1e-3) -> nn.Module:
    """Pairwise cross-entropy on sigmoid(s(first) - s(second))."""
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=weight_decay)
    first, second = torch.as_tensor(pairs.first), torch.as_tensor(pairs.second)
    target = torch.as_tensor(pairs.target, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(target), generator=gen).split(batch):
            used = torch.unique(torch.cat([first[rows], second[rows]]))
            scores = torch.zeros(len(inputs))
            scores[used] = net(inputs[used])
            loss = nn.functional.binary_cross_entropy_with_logits(
                scores[first[rows]] - scores[second[rows]], target[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def fit_pairwise_gp(z: np.ndarray, pairs: Pairs):
    from botorch.fit import fit_gpytorch_mll
    from botorch.models.pairwise_gp import PairwiseGP, PairwiseLaplaceMarginalLogLikelihood

    decided = pairs.target != 0.5
    if not decided.any():
        raise PreferenceError("every answer is can't tell: nothing for PairwiseGP to learn")
    first, second = pairs.first[decided], pairs.second[decided]
    win = pairs.target[decided] == 1.0
    comparisons = np.stack([np.where(win, first, second), np.where(win, second, first)], 1)
    gp = PairwiseGP(torch.as_tensor(z, dtype=torch.float64),
                    torch.as_tensor(comparisons, dtype=torch.long))
    fit_gpytorch_mll(PairwiseLaplaceMarginalLogLikelihood(gp.likelihood, gp))
    return gp.eval()


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


def pool_images(pool: Pool) -> list[np.ndarray]:
    return [pool.image(i) for i in pool.ids]


def _fit(kind: str, pool: Pool, pairs: Pairs, embedding: Embedding, epochs: int, seed: int,
         fer: FerFeatures | None):
    with single_threaded():
        if kind == "pairwise-gp":
            return fit_pairwise_gp(embedding(pool.features), pairs)
        if kind == "ranknet":
            inputs = torch.as_tensor(embedding(pool.features), dtype=torch.float32)
            return train_ranknet(RankNet(embedding.k), inputs, pairs, epochs, seed)
        if kind == "ranknet-fer":
            inputs = fer(pool_images(pool))
            return train_ranknet(RankNet(inputs.shape[1]), inputs, pairs, epochs, seed)
        images = image_batch(pool_images(pool))
        return train_ranknet(ImageRankNet(), images, pairs, epochs, seed, batch=64)


def fit_model(kind: str, pool: Pool, answers: list[dict], epochs: int = 300,
              seed: int = 0) -> PreferenceModel:
    if kind not in KINDS:
        raise PreferenceError(f"unknown preference model {kind!r}; available: "
                              f"{', '.join(KINDS)}")
    embedding = Embedding.fit(pool.features)
    fer = FerFeatures() if kind == "ranknet-fer" else None
    module = _fit(kind, pool, pairs_of(pool, answers), embedding, epochs, seed, fer)
    return PreferenceModel(kind, None if kind in IMAGE_KINDS else embedding, module, {}, fer)


def pool_scores(model: PreferenceModel, pool: Pool) -> np.ndarray:
    if model.kind in IMAGE_KINDS:
        return model.score_images(pool_images(pool))
    return model.score_features(pool.features)


def accuracy(scores: np.ndarray, pairs: Pairs) -> float:
    """Share of decided pairs whose preferred face the scores rank higher."""
    decided = pairs.target != 0.5
    if not decided.any():
        return float("nan")
    says_first = scores[pairs.first[decided]] > scores[pairs.second[decided]]
    return float(np.mean(says_first == (pairs.target[decided] == 1.0)))


def cross_validate(kind: str, pool: Pool, answers: list[dict], folds: int = 5,
                   epochs: int = 300, seed: int = 0) -> list[float]:
    """Accuracy on each fold's held-out answered pairs, the model fitted on the rest."""
    pairs = pairs_of(pool, answers)
    if len(pairs) < folds * 2:
        raise PreferenceError(f"{len(pairs)} answers are too few for {folds}-fold "
                              "cross-validation")
    order = np.random.default_rng(seed).permutation(len(pairs))
    out = []
    for held in np.array_split(order, folds):
        kept = np.setdiff1d(order, held)
        train = [answers[i] for i in kept]
        model = fit_model(kind, pool, train, epochs, seed)
        out.append(accuracy(pool_scores(model, pool), pairs.subset(held)))
    return out


def rankings_of(pool: Pool, answers: list[dict]) -> dict[str, list[str]]:
    """Each annotator's complete ranking (merge sort finished), most preferred first."""
    originals = [i for i, o in zip(pool.ids, pool.origins) if o == "pool"]
    added = [i for i, o in zip(pool.ids, pool.origins) if o != "pool"]
    out = {}
    for name in sorted({r["annotator"] for r in answers}):
        _, ranking = sorting_state(originals, added, [r for r in answers
                                                      if r["annotator"] == name], name)
        if ranking is not None:
            out[name] = ranking
    return out


def taus(pool: Pool, scores: np.ndarray, answers: list[dict]) -> dict[str, float]:
    """Kendall's tau between the model's ranking and each complete annotator ranking."""
    out = {}
    for name, ranking in rankings_of(pool, answers).items():
        position = {item: k for k, item in enumerate(ranking)}
        ranked = [i for i in pool.ids if i in position]
        model_order = [-scores[pool.index(i)] for i in ranked]
        out[name] = round(float(kendalltau([position[i] for i in ranked], model_order)[0]), 4)
    return out


def fit_preference(pool: Pool, answers: list[dict], out: Path, kind: str = "ranknet",
                   folds: int = 5, epochs: int = 300, seed: int = 0) -> dict:
    """Cross-validate, fit on every answer, and save the model in ``out``."""
    if folds < 1 or epochs < 1:
        raise PreferenceError(f"folds and epochs must be at least 1, got {folds} and {epochs}")
    decided = sum(r["answer"] != "tie" for r in answers)
    if not decided:
        raise PreferenceError(f"none of the {len(answers)} answers prefers a face (all "
                              "can't tell, or none yet): there is nothing to learn from")
    with claim_output(out):
        return _fit_and_save(pool, answers, out, kind, folds, epochs, seed)


def _fit_and_save(pool, answers, out, kind, folds, epochs, seed) -> dict:
    started = time.perf_counter()
    fold_accuracy = cross_validate(kind, pool, answers, folds, epochs, seed) if folds > 1 \
        else []
    model = fit_model(kind, pool, answers, epochs, seed)
    scores = pool_scores(model, pool)
    info = {
        "kind": kind, "answers": len(answers),
        "annotators": sorted({r["annotator"] for r in answers}),
        "cv_folds": folds, "cv_accuracy": [round(a, 4) for a in fold_accuracy],
        "cv_accuracy_mean": round(float(np.mean(fold_accuracy)), 4) if fold_accuracy
        else None,
        "train_accuracy": round(accuracy(scores, pairs_of(pool, answers)), 4),
        "kendall_tau": taus(pool, scores, answers),
        "epochs": epochs, "seed": seed,
        "seconds": round(time.perf_counter() - started, 1),
    }
    save_preference(out, model, pool, scores, info)
    return info


def save_preference(out: Path, model: PreferenceModel, pool: Pool, scores: np.ndarray,
                    info: dict) -> Path:
    """``scores``: the model's scores of the pool's faces."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if model.kind == "pairwise-gp":
        # The GP's hyperparameters and its data; the rest it recomputes from them.
        gp = model.module
        tensors = {f"module.{k}": v for k, v in gp.named_parameters()}
        tensors["gp.datapoints"] = gp.unconsolidated_datapoints
        tensors["gp.comparisons"] = gp.unconsolidated_comparisons
    else:
        tensors = {f"module.{k}": v for k, v in model.module.state_dict().items()}
    if model.embedding is not None:
        tensors["embedding.mean"] = torch.as_tensor(model.embedding.mean)
        tensors["embedding.components"] = torch.as_tensor(model.embedding.components)
    if model.fer is not None:
        tensors["fer.mean"] = torch.as_tensor(model.fer.mean)
        tensors["fer.std"] = torch.as_tensor(model.fer.std)
    tensors = {k: v.detach().clone().contiguous() for k, v in tensors.items()}
    weights = save(tensors)
    atomic_write(out / "preference.safetensors", weights)
    config = {"format": FORMAT, "kind": model.kind,
              "weights_sha256": hashlib.sha256(weights).hexdigest(),
              "architecture": getattr(model.module, "config", {}),
              "profile": pool.profile, "profile_sha256": pool.profile_sha256,
              **({"backbone_sha256": WEIGHTS_SHA256} if model.fer is not None else {}),
              "expression": pool.expression, "question": pool.question,
              "pool": str(pool.path), "fit": info,
              # Where an optimiser of this score starts (the pool's best-scored face) and
              # the box it searches (the pool's): the score is unknown far from the pool.
              "best_in_pool": _named(pool, pool.controls[
                  int(np.argmax(scores))]),
              "pool_low": _named(pool, pool.controls.min(axis=0)),
              "pool_high": _named(pool, pool.controls.max(axis=0))}
    atomic_write(out / "preference.json", json.dumps(config, indent=1) + "\n")
    return out


def _named(pool: Pool, controls: np.ndarray) -> dict[str, float]:
    return dict(zip(pool.control_names, np.round(controls, 6).tolist()))


def load_preference(model_dir: Path, profile: Profile) -> PreferenceModel:
    """A saved preference model, refused unless made for ``profile`` as it is now."""
    model_dir = Path(model_dir)
    config = read_document(model_dir / "preference.json", FORMAT, "a FaceTwin preference "
                           "model", PreferenceError)
    profile.require_same(config.get("profile"), config.get("profile_sha256"),
                         f"preference model {model_dir}", PreferenceError, "fit it again")
    kind = config.get("kind")
    if kind not in KINDS:
        raise PreferenceError(f"{model_dir}: unknown preference model {kind!r}")
    for key in ("best_in_pool", "pool_low", "pool_high"):
        box = config.get(key)
        if not (isinstance(box, dict) and all(
                isinstance(box.get(n), (int, float)) and np.isfinite(box[n])
                for n in profile.names)):
            raise PreferenceError(f"{model_dir}/preference.json: {key!r} must give each "
                                  f"control of {profile.name} a number")
    if not isinstance(config.get("expression"), str):
        raise PreferenceError(f"{model_dir}/preference.json has no 'expression'")
    weights = model_dir / "preference.safetensors"
    tensors = load_tensors(weights, PreferenceError, config.get("weights_sha256"))
    try:
        embedding = None
        if "embedding.mean" in tensors:
            embedding = Embedding(tensors["embedding.mean"].numpy(),
                                  tensors["embedding.components"].numpy())
        fer = None
        if kind == "ranknet-fer":
            if config.get("backbone_sha256") != WEIGHTS_SHA256:
                raise PreferenceError(f"{model_dir} was fitted on another emotion recogniser "
                                      "than the one installed; fit it again")
            fer = FerFeatures(tensors["fer.mean"].numpy(), tensors["fer.std"].numpy())
        if kind == "pairwise-gp":
            from botorch.models.pairwise_gp import PairwiseGP

            state = {k[len("module."):]: v for k, v in tensors.items()
                     if k.startswith("module.")}
            module = PairwiseGP(tensors["gp.datapoints"], tensors["gp.comparisons"])
            module.load_state_dict(state, strict=False)
        else:
            module = build(RankNet if kind in ("ranknet", "ranknet-fer") else ImageRankNet,
                           config.get("architecture"), tensors, PreferenceError, weights,
                           "module.")
    except PreferenceError:
        raise
    except (KeyError, RuntimeError, ValueError, IndexError) as exc:
        raise PreferenceError(f"{weights} does not make a {kind}: {exc!r}") from None
    return PreferenceModel(kind, embedding, module.eval(), config, fer)
