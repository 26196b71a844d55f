"""Preference models on disk: ``preference.safetensors`` (tensors only) and
``preference.json`` (kind, profile and its sha256, the pool, the fit's figures, where an
optimiser of the score starts and the box it searches)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from facetwin.agents.preference.embedding import Embedding
from facetwin.agents.preference.models import (
    KINDS, FerFeatures, ImageRankNet, PreferenceError, PreferenceModel, RankNet,
)
from facetwin.agents.preference.pairwise_gp import load_pairwise_gp
from facetwin.agents.preference.pool import Pool
from facetwin.envs.emotion import WEIGHTS_SHA256
from facetwin.files import atomic_write, read_document, write_document
from facetwin.profile import Profile
from facetwin.weights import build, load_tensors

FORMAT = "facetwin-preference/1"


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
    config = {"kind": model.kind,
              "weights_sha256": hashlib.sha256(weights).hexdigest(),
              "architecture": getattr(model.module, "config", {}),
              **({"backbone_sha256": WEIGHTS_SHA256} if model.fer is not None else {}),
              "expression": pool.expression, "question": pool.question,
              "pool": str(pool.path), "fit": info,
              # Where an optimiser of this score starts (the pool's best-scored face) and
              # the box it searches (the pool's): the score is unknown far from the pool.
              "best_in_pool": _named(pool, pool.controls[
                  int(np.argmax(scores))]),
              "pool_low": _named(pool, pool.controls.min(axis=0)),
              "pool_high": _named(pool, pool.controls.max(axis=0))}
    write_document(out / "preference.json", FORMAT, (pool.profile, pool.profile_sha256), config,
                   indent=1)
    return out


def _named(pool: Pool, controls: np.ndarray) -> dict[str, float]:
    return dict(zip(pool.control_names, np.round(controls, 6).tolist()))


def load_preference(model_dir: Path, profile: Profile) -> PreferenceModel:
    """A saved preference model, refused unless made for ``profile`` as it is now."""
    model_dir = Path(model_dir)
    config = read_document(model_dir / "preference.json", FORMAT, "a FaceTwin preference "
                           "model", PreferenceError, profile, "fit it again")
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
            state = {k[len("module."):]: v for k, v in tensors.items()
                     if k.startswith("module.")}
            module = load_pairwise_gp(tensors["gp.datapoints"], tensors["gp.comparisons"],
                                      state)
        else:
            module = build(RankNet if kind in ("ranknet", "ranknet-fer") else ImageRankNet,
                           config.get("architecture"), tensors, PreferenceError, weights,
                           "module.")
    except PreferenceError:
        raise
    except (KeyError, RuntimeError, ValueError, IndexError) as exc:
        raise PreferenceError(f"{weights} does not make a {kind}: {exc!r}") from None
    return PreferenceModel(kind, embedding, module.eval(), config, fer)
