"""Fitting preference models to people's answers: RankNets by the pairwise
cross-entropy, the preference GP by its Laplace marginal likelihood; k-fold
cross-validation; ``facetwin fit-preference``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facetwin.agents.preference.embedding import Embedding
from facetwin.agents.preference.metrics import accuracy, pool_images, pool_scores, taus
from facetwin.agents.preference.models import (
    IMAGE_KINDS, KINDS, FerFeatures, ImageRankNet, PreferenceError, PreferenceModel, RankNet,
    image_batch,
)
from facetwin.agents.preference.pairs import Pairs, pairs_of, winners_first
from facetwin.agents.preference.pairwise_gp import fit_pairwise_gp
from facetwin.agents.preference.pool import Pool
from facetwin.agents.preference.store import save_preference
from facetwin.files import claim_output
from facetwin.threads import single_threaded


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


def _fit(kind: str, pool: Pool, pairs: Pairs, embedding: Embedding, epochs: int, seed: int,
         fer: FerFeatures | None):
    with single_threaded():
        if kind == "pairwise-gp":
            return fit_pairwise_gp(embedding(pool.features), winners_first(pairs))
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
