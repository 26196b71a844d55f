"""``facetwin train``: an inverse model (or a baseline) fitted to a dataset's train split.

    train("mlp", data=Path("data/emo11"), out=Path("models/emo11-mlp"))

Each learned model trains with its paper's recipe: Emo's MLP and Rena's network with a
mean squared error and Adam (Rena adds its consistency loss, here on the profile's tied
controls, lambda 0.01), X2C's image network with a Huber loss (delta 0.01), AdamW
(weight decay 0.05) and a cosine schedule after a warm-up. The weights kept are those
of the epoch with the lowest validation error. ``out`` gets the model, its config and
``loss.png``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from facetwin import profile as profiles
from facetwin.agents.inverse.dataset import DatasetError, read_meta
from facetwin.agents.inverse.inputs import FEATURE_KINDS, load_split, region_columns
from facetwin.agents.inverse.store import ModelError, save_model
from facetwin.agents.inverse.models import ARCHITECTURES, BASELINES
from facetwin.envs.expression import N_FEATURES
from facetwin.files import claim_output
from facetwin.figures import log_lines
from facetwin.profile import Tie
from facetwin.threads import torch_single_threaded


@dataclass(frozen=True)
class Recipe:
    loss: str  # "mse" or "huber"
    optimizer: str  # "adam" or "adamw"
    lr: float
    epochs: int
    batch: int = 128
    weight_decay: float = 0.0
    warmup_epochs: int = 0
    tie_weight: float = 0.0  # Rena's consistency loss
    max_steps: int | None = None  # fewer epochs on large datasets: at most this many updates

    def epochs_for(self, samples: int) -> int:
        if self.max_steps is None:
            return self.epochs
        per_epoch = max(1, math.ceil(samples / self.batch))
        return max(1, min(self.epochs, math.ceil(self.max_steps / per_epoch)))


RECIPES = {
    "mlp": Recipe("mse", "adam", 1e-3, epochs=200),
    # The KAN's spline layers cost 20x the MLP's per update: 4,000 updates is 200 epochs
    # of 2,500 samples, 36 of 14,000 (where its validation error has long levelled off).
    "kan": Recipe("mse", "adam", 1e-3, epochs=200, tie_weight=0.01, max_steps=4000),
    "cnn": Recipe("huber", "adamw", 1e-3, epochs=40, weight_decay=0.05, warmup_epochs=2),
}


def dataset_profile(data: Path) -> tuple[profiles.Profile, dict]:
    """The profile a dataset was collected on, as it is now; refused if it changed."""
    meta = read_meta(data)
    p = profiles.load(meta["profile"])
    p.require_same(meta["profile"], meta["profile_sha256"], f"dataset {data}", DatasetError,
                   "collect it again")
    return p, meta


def build(name: str, profile: profiles.Profile, inputs: str, image_size: int = 64):
    n = len(profile.controls)
    if name == "cnn":
        return ARCHITECTURES[name](n, image_size=image_size)
    if name == "kan":
        return ARCHITECTURES[name](N_FEATURES, n, regions=region_columns())
    return ARCHITECTURES[name](N_FEATURES, n)


def train(name: str, data: Path, out: Path, epochs: int | None = None,
          features: str = "ground_truth", image_size: int = 64, seed: int = 0,
          progress: bool = True) -> dict:
    """Fit ``name`` on ``data``'s train split and save it in ``out``; returns its config."""
    if epochs is not None and epochs < 1:
        raise ModelError(f"epochs must be at least 1, got {epochs}")
    if name not in ARCHITECTURES:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(ARCHITECTURES)}")
    if features not in FEATURE_KINDS:
        raise ModelError(f"unknown features {features!r}; available: {', '.join(FEATURE_KINDS)}")
    with claim_output(out):
        return _train_and_save(name, data, out, epochs, features, image_size, seed, progress)


def _train_and_save(name, data, out, epochs, features, image_size, seed, progress) -> dict:
    p, meta = dataset_profile(data)
    inputs = "image" if name == "cnn" else features
    train_split = load_split(data, "train", p, inputs, image_size)
    val_split = load_split(data, "val", p, inputs, image_size)
    if len(train_split.y) == 0:
        raise DatasetError(f"{data} has no training samples yet")
    torch.manual_seed(seed)
    module = build(name, p, inputs, image_size)
    started = time.perf_counter()
    with torch_single_threaded():  # the same data gives the same weights
        history = _train(module, name, p, train_split, val_split, epochs, seed, progress)
    if history:
        log_lines(Path(out) / "loss.png", [(history[k], label) for k, label in
                                           (("train_l1", "train"), ("val_l1", "validation"))
                                           if history[k]],
                  f"{name} on {p.name} ({inputs})", "epoch", "command L1 (0-1 per control)")
    training = {"seconds": round(time.perf_counter() - started, 1),
                "train_samples": len(train_split.y), "val_samples": len(val_split.y),
                "recipe": RECIPES[name].__dict__ if name in RECIPES else None,
                **{k: v[-1] for k, v in history.items() if v}}
    save_model(out, name, module.eval(), p, inputs, meta, training)
    return training


def _train(module, name, p, train_split, val_split, epochs, seed, progress) -> dict:
    if name in BASELINES:
        module.fit(train_split.x, train_split.y, neutral=p.to_box(p.neutral),
                   **({"val": (val_split.x, val_split.y)} if name == "ridge" else {}))
        return {}
    if hasattr(module, "standardize"):
        module.standardize.fit(train_split.x)
    return _fit(module, RECIPES[name], train_split, val_split, epochs, _ties(p), seed,
                progress, desc=f"train {name} on {p.name}")


def _ties(p: profiles.Profile) -> list[tuple[int, int]]:
    pairs = []
    for c in p.couplings:
        if isinstance(c, Tie):
            ids = [p.index(n) for n in c.controls]
            pairs += [(ids[0], j) for j in ids[1:]]
    return pairs


def _fit(module, recipe: Recipe, train_split, val_split, epochs, ties, seed, progress,
         desc: str) -> dict:
    x, y = torch.tensor(train_split.x), torch.tensor(train_split.y)
    epochs = recipe.epochs_for(len(x)) if epochs is None else epochs
    opt_class = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_class(module.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(x) / recipe.batch))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(
        recipe.warmup_epochs * steps_per_epoch, epochs * steps_per_epoch))
    generator = torch.Generator().manual_seed(seed)
    history = {"train_l1": [], "val_l1": []}
    best = (math.inf, None)
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    for _ in bar:
        module.train()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for k in range(0, len(x), recipe.batch):
            batch = order[k:k + recipe.batch]
            if len(batch) < 2:
                continue  # batch norm needs two
            pred = module(x[batch])
            loss = _loss(recipe, pred, y[batch], ties)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float((pred.detach() - y[batch]).abs().mean()) * len(batch)
        history["train_l1"].append(total / len(x))
        bar.set_postfix(train=f"{history['train_l1'][-1]:.4f}")
        if not len(val_split.y):
            continue  # nothing held out to choose an epoch by: the last one is kept
        val = _l1(module, val_split)
        history["val_l1"].append(val)
        if val < best[0]:
            best = (val, {k: v.clone() for k, v in module.state_dict().items()})
        bar.set_postfix(train=f"{history['train_l1'][-1]:.4f}", val=f"{val:.4f}")
    if best[1] is not None:
        module.load_state_dict(best[1])
    return history


def _loss(recipe: Recipe, pred, target, ties) -> torch.Tensor:
    loss = F.huber_loss(pred, target, delta=0.01) if recipe.loss == "huber" else \
        F.mse_loss(pred, target)
    if recipe.tie_weight and ties:
        i, j = zip(*ties)
        loss = loss + recipe.tie_weight * (pred[:, list(i)] - pred[:, list(j)]).abs().mean()
    return loss


def _cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return factor


@torch.no_grad()
def _l1(module, split, batch: int = 512) -> float:
    module.eval()
    x = torch.tensor(split.x)
    pred = torch.cat([module(x[k:k + batch]) for k in range(0, len(x), batch)])
    return float((pred - torch.as_tensor(split.y)).abs().mean())
