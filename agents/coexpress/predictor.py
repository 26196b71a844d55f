"""Emo's predictive model: four frames of a face early in an expression in, the face it
is about to make out (emo-coexpression, Methods, Fig. 7B).

Eight fully connected layers, tanh after the first six, a skip connection from the
fourth layer's output to the sixth's. Each face is read relative to its own rest (the
mean of its first frames): a frame's landmarks are aligned onto rest by the skull
(head motion away) and divided by the skull's size, so one model reads any face at
any distance.

What the model reads is what a live robot has when it decides: the four frames are
drawn from the nine up to the decision frame, the latest included, and in training the
decision frame is drawn from Emo's nine frames about the peak activation and the eight
after them, where a live robot aims again (Emo draws the four from those nine; a robot
that has seen frame a + 4 is deciding at a + 4, and its mimicry baseline would then be
frame a + 4, which is near the apex for a quick face).
Two additions to Emo's: each input frame comes with its offset from the decision frame
(without them a fast face and a slow one look alike), and a second output says how long
after the decision the target comes, so the robot can arrive with the person rather than
as early as its servos allow.

Saved as ``predictor.safetensors`` (tensors only) and ``predictor.json`` (architecture,
scales, the dataset); :func:`load_predictor` checks both before anything is built.
"""

from __future__ import annotations

import hashlib
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save
from torch import nn

from facetwin.envs.perception import align_face, skull_size
from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write, read_document, write_document
from facetwin.landmarks import N_LANDMARKS
from facetwin.weights import build, load_tensors

FORMAT = "facetwin-predictor/1"
FRAMES = 4  # input frames, of the nine up to the decision frame
SPAN = 8  # frames before the decision frame they are drawn from
DECISIONS = range(-4, 13)  # decision frames in training, from the peak activation's
# nine (Emo's) on to eight frames later, where a live robot aims its plan again
LABEL_FRAMES = 4  # the label: one of the target and the three frames after it


class PredictorError(FaceTwinError, ValueError):
    """A predictor folder that cannot be used; the message says why."""


class OnsetPredictor(nn.Module):
    def __init__(self, n_points: int = N_LANDMARKS, hidden: int = 512):
        super().__init__()
        self.config = {"n_points": n_points, "hidden": hidden}
        n_in, n_out = FRAMES * (2 * n_points + 1), 2 * n_points + 1
        sizes = [n_in] + [hidden] * 7 + [n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        # Displacements are a few hundredths of a skull: scaled to about one for training.
        self.register_buffer("x_scale", torch.ones(()))
        self.register_buffer("y_scale", torch.ones(()))
        self.register_buffer("t_scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x / self.x_scale
        kept = None
        for i, layer in enumerate(self.layers[:6], start=1):
            h = torch.tanh(layer(h))
            if i == 4:
                kept = h
            elif i == 6:
                h = h + kept
        return self.layers[7](self.layers[6](h))

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unscaled: the target's displacement (skull sizes, (B, points, 2)) and seconds
        from the decision frame to the target (B,)."""
        out = self(x)
        n = self.config["n_points"]
        return (out[:, :2 * n] * self.y_scale).reshape(-1, n, 2), out[:, 2 * n] * self.t_scale


class Face:
    """A face's frames read relative to its rest: aligned, in skull sizes."""

    def __init__(self, rest: np.ndarray):
        self.rest = np.asarray(rest, dtype=float)
        self.size = skull_size(self.rest)

    def displacement(self, landmarks: np.ndarray) -> np.ndarray:
        return (align_face(np.asarray(landmarks, float), self.rest)[0] - self.rest) / self.size

    def landmarks(self, displacement: np.ndarray) -> np.ndarray:
        """Pixels in the rest's frame of a displacement."""
        return self.rest + np.asarray(displacement).reshape(-1, 2) * self.size


def averaged(module: OnsetPredictor, frames: np.ndarray, fps: float):
    """The prediction from the nine frames up to a decision ((9, points, 2), the decision
    last), averaged over every four of them that include the decision frame, as the model
    was trained to read them: (target displacement (points, 2), seconds to the target)."""
    x = np.array([inputs(frames[np.array(o) + SPAN], o, fps) for o in _SUBSETS])
    with torch.no_grad():
        d, after = module.predict(torch.as_tensor(x))
    return d.mean(0).numpy(), float(after.mean())


_SUBSETS = [(*c, 0) for c in combinations(range(-SPAN, 0), FRAMES - 1)]


def inputs(displacements: np.ndarray, offsets, fps: float) -> np.ndarray:
    """One model input: four frames' displacements ((4, points, 2)) and their offsets from
    the decision frame (<= 0), in seconds."""
    d = np.asarray(displacements, np.float32).reshape(FRAMES, -1)
    t = (np.asarray(offsets, np.float32) / fps)[:, None]
    return np.concatenate([d, t], axis=1).ravel()


def save_predictor(out: Path, module: OnsetPredictor, dataset: dict, training: dict) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = save({k: v.detach().contiguous() for k, v in module.state_dict().items()})
    atomic_write(out / "predictor.safetensors", weights)
    body = {"architecture": module.config, "weights_sha256": hashlib.sha256(weights).hexdigest(),
            "inputs": f"{FRAMES} frames of the {SPAN + 1} up to the decision frame: "
                      "landmarks aligned onto the face's rest by the skull, minus rest, over "
                      "the skull's size; each with its offset from the decision frame (s)",
            "outputs": "the target's landmarks likewise, then seconds from the decision "
                       "frame to the target",
            "dataset": {k: dataset[k] for k in ("plan", "sequences", "labelled")},
            "training": training}
    write_document(out / "predictor.json", FORMAT, (dataset["profile"],
                                                     dataset["profile_sha256"]), body, indent=1)
    return out


def load_predictor(model_dir: Path) -> tuple[OnsetPredictor, dict]:
    """The predictor in ``model_dir`` in evaluation mode, and its ``predictor.json``. It
    reads people, so it serves any robot profile."""
    model_dir = Path(model_dir)
    config = read_document(model_dir / "predictor.json", FORMAT, "a FaceTwin onset predictor",
                           PredictorError, remedy="train it again")
    if not isinstance(config.get("architecture"), dict):
        raise PredictorError(f"{model_dir / 'predictor.json'} has no architecture")
    weights = model_dir / "predictor.safetensors"
    module = build(OnsetPredictor, config["architecture"],
                   load_tensors(weights, PredictorError, config.get("weights_sha256")),
                   PredictorError, weights)
    return module.eval(), config
