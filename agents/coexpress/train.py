"""Training Emo's predictive model on an onset dataset (:mod:`.onsets`).

Emo's augmentation, with a decision frame (:mod:`.predictor`): each sample decides at
one of the nine frames about the sequence's peak activation, reads four of the nine
frames up to it (the latest included), and is labelled with one of the target frame and
the three after it.
MSE, Adam (Emo: learning rate 1e-5, batch 128; here 1e-3 decaying to 1e-5, which
reaches Emo's loss in minutes on a CPU rather than hours), the weights with the best
validation error kept.

    train_predictor(Path("data/onsets"), Path("models/predictor"))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facetwin.agents.coexpress.onsets import (
    OnsetDataError, Sequences, load_sequences, read_meta,
)
from facetwin.agents.coexpress.predictor import (
    DECISIONS, FRAMES, LABEL_FRAMES, SPAN, Face, OnsetPredictor, inputs, save_predictor,
)
from facetwin.files import claim_output
from facetwin.threads import torch_single_threaded


@dataclass
class Prepared:
    """One labelled sequence, read relative to its rest."""

    face: Face
    displacements: np.ndarray  # (frames, points, 2) skull sizes
    activation: int
    target: int
    fps: float
    emotion: str
    false_start: bool

    @property
    def frames(self) -> int:
        return len(self.displacements)

    def frames_at(self, index) -> np.ndarray:
        """The frames at ``index`` (held at the ends)."""
        return self.displacements[np.clip(np.asarray(index), 0, self.frames - 1)]

    def before(self, decision: int) -> np.ndarray:
        """The nine frames up to ``decision``: what the model reads when deciding there."""
        return self.frames_at(np.arange(decision - SPAN, decision + 1))

    def time_to_target(self, decision: int) -> float:
        return (self.target - decision) / self.fps


def prepare(seqs: Sequences) -> list[Prepared]:
    out = []
    for i in range(len(seqs)):
        lm = seqs.landmarks[i]
        face = Face(lm[:5].mean(axis=0))
        out.append(Prepared(face, np.stack([face.displacement(f) for f in lm]).astype(
            np.float32), int(seqs.activation[i]), int(seqs.target[i]), float(seqs.fps[i]),
            seqs.emotion[i], bool(seqs.false_start[i])))
    return out


def sample(prepared: list[Prepared], rng: np.random.Generator, n: int):
    """``n`` augmented pairs: inputs, target displacements, times to target."""
    x, y, t = [], [], []
    for k in rng.integers(len(prepared), size=n):
        s = prepared[k]
        decision = s.activation + int(rng.choice(DECISIONS))
        offsets = np.append(np.sort(rng.choice(np.arange(-SPAN, 0), FRAMES - 1,
                                               replace=False)), 0)
        x.append(inputs(s.frames_at(decision + offsets), offsets, s.fps))
        label = min(s.target + int(rng.integers(LABEL_FRAMES)), s.frames - 1)
        y.append(s.displacements[label].ravel())
        t.append(s.time_to_target(decision))
    return (torch.as_tensor(np.array(x)), torch.as_tensor(np.array(y)),
            torch.as_tensor(np.array(t, np.float32)))


@torch_single_threaded()
def train_predictor(data: Path, out: Path, steps: int = 4000, hidden: int = 512,
                    batch: int = 128, seed: int = 0, by: str = "person",
                    progress: bool = True) -> dict:
    """Train on ``data``'s train split (people, or sequences with ``by="sequence"``),
    keep the weights best on its validation split (deciding at the peak activation),
    save to ``out``; returns the training record written into ``predictor.json``."""
    with claim_output(out):  # a file or a busy folder as --out is named before training
        return _train(data, out, steps, hidden, batch, seed, by, progress)


def _train(data, out, steps, hidden, batch, seed, by, progress) -> dict:
    meta = read_meta(data)
    train = prepare(load_sequences(data, "train", by))
    val = prepare(load_sequences(data, "val", by))
    if not train or not val:
        raise OnsetDataError(f"{data}: {len(train)} training and {len(val)} validation "
                             "sequences with a clear onset; training needs both")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    module = OnsetPredictor(hidden=hidden)
    x, y, t = sample(train, rng, 4096)
    module.x_scale.fill_(float(x[:, :-FRAMES].std()))
    module.y_scale.fill_(float(y.std()))
    module.t_scale.fill_(float(t.abs().mean()) or 1.0)
    every_other = np.array([-6, -4, -2, 0])  # one of the fours, for a quick check
    val_x = torch.as_tensor(np.array([
        inputs(s.frames_at(s.activation + every_other), every_other, s.fps) for s in val]))
    val_y = torch.as_tensor(np.array([s.displacements[s.target].ravel() for s in val]))
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-5)
    best, best_state, history = np.inf, None, []
    for step in tqdm(range(steps), desc="train predictor", unit="step", disable=not progress):
        x, y, t = sample(train, rng, batch)
        module.train()
        target = torch.cat([y / module.y_scale, (t / module.t_scale)[:, None]], dim=1)
        loss = torch.nn.functional.mse_loss(module(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 200 == 0 or step + 1 == steps:
            module.eval()
            with torch.no_grad():
                d, _ = module.predict(val_x)
            error = float((d.reshape(len(val), -1) - val_y).abs().mean())
            history.append({"step": step + 1, "loss": loss.item(), "val_mae": error})
            if error < best:
                best = error
                best_state = {k: v.clone() for k, v in module.state_dict().items()}
    module.load_state_dict(best_state)
    record = {"steps": steps, "batch": batch, "seed": seed, "split_by": by,
              "train_sequences": len(train), "val_sequences": len(val),
              "val_mae_skull": best, "history": history}
    save_predictor(out, module.eval(), meta, record)
    return record
