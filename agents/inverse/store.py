"""Inverse models on disk: ``model.safetensors`` (weights and normalisation, tensors only:
nothing in it runs when loaded) and ``model.json`` (the architecture, the profile and its
sha256, the inputs, the dataset it was trained on).

    save_model(out, "mlp", module, profile, inputs="ground_truth", dataset=meta)
    module, config = load_model(out, profile)     # another profile's model is refused
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import save

from facetwin.agents.inverse.models import ARCHITECTURES
from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write, read_document, write_document
from facetwin.profile import Profile
from facetwin.weights import build, load_tensors

FORMAT = "facetwin-model/1"


class ModelError(FaceTwinError, ValueError):
    """A model folder that cannot be used here; the message says why."""


def save_model(out: Path, name: str, module: torch.nn.Module, profile: Profile, inputs: str,
               dataset: dict, training: dict | None = None) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    weights = save(tensors)
    atomic_write(out / "model.safetensors", weights)
    config = {
        "model": name, "architecture": module.config, "inputs": inputs,
        "weights_sha256": hashlib.sha256(weights).hexdigest(), "controls": profile.names,
        "outputs": "each control from its low (0) to its high (1) end",
        "normalisation": "inputs standardised with the training split's mean and spread "
                         "(the tensors standardize.mean and standardize.std)",
        "dataset": {k: dataset[k] for k in ("profile", "plan", "rows", "sequences")} | {
            "splits": {k: len(v) for k, v in dataset["splits"].items()}},
        "training": training or {},
    }
    write_document(out / "model.json", FORMAT, (profile.name, profile.sha256), config, indent=1)
    return out


def read_config(model_dir: Path, profile: Profile | None = None) -> dict:
    """``model.json``; with ``profile``, refused unless the model was made for it as it
    is now."""
    path = Path(model_dir) / "model.json"
    config = read_document(path, FORMAT, "a FaceTwin model", ModelError, profile,
                           "train it again")
    if config.get("model") not in ARCHITECTURES:
        raise ModelError(f"{path}: unknown model {config.get('model')!r}")
    return config


def config_for(model_dir: Path, profile: Profile) -> dict:
    """``model.json`` of a model made for ``profile`` (as it is now), else ModelError."""
    return read_config(model_dir, profile)


def load_model(model_dir: Path, profile: Profile) -> tuple[torch.nn.Module, dict]:
    """The model in ``model_dir``, for ``profile`` only, in evaluation mode."""
    config = config_for(model_dir, profile)
    weights = Path(model_dir) / "model.safetensors"
    module = build(ARCHITECTURES[config["model"]], config.get("architecture"),
                   load_tensors(weights, ModelError, config.get("weights_sha256")),
                   ModelError, weights)
    return module.eval(), config
