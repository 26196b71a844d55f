"""Where a command comes to rest, predicted: the twin's settled steps start there.

A settled step returns the face at rest, and what takes a dynamic settle its ~160-190
physics steps is the skin's slow modes on the way, not the servos (jumping them to
their goals shortens nothing). :class:`SettleModel` predicts the whole state at rest,
every joint and skin vertex, as a piecewise-linear function of the command (a slope on
each side of each control's neutral), fitted to dynamic settles of random commands;
:meth:`Twin.rest_at` starts there and settles by the unchanged rule, in about a third of
the steps. It also carries how long the face takes to come to rest after its ramp, so
that a settled step can still say how long the robot takes.

A model is fitted once per profile and face (a few seconds: ``envs/settle_model.py``
settles the nominal twin as an env does) and kept in the user's cache
(``~/.cache/facetwin/settle``) as safetensors, named by the hashes of the profile and
the face it was measured on. A perturbed robot starts from the nominal prediction: a
millimetre or two off, which the settle then takes up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.files import atomic_write, user_cache

VERSION = 3  # of the fit: a model of another version is fitted again
TAIL = ("tail_s", "tail_per_ramp_s", "tail_min_s")


@dataclass(frozen=True)
class SettleModel:
    """The state at rest of one profile's nominal twin, as a function of the command."""

    profile_sha256: str
    face_sha256: str
    neutral: np.ndarray  # (controls,): the slopes' hinge
    weights: np.ndarray  # (1 + 2 * controls, nq): qpos = features @ weights
    # How long the face takes to come to rest once its ramp has ended: the longer the
    # ramp, the closer the skin has followed it (a line fitted to the fit's settles).
    tail_s: float
    tail_per_ramp_s: float
    tail_min_s: float

    def rest(self, controls: np.ndarray) -> np.ndarray:
        """The predicted qpos at rest at ``controls``."""
        return _features(controls, self.neutral) @ self.weights

    def settle_s(self, ramp_s: float) -> float:
        """How long a face takes from a command to rest, after a ramp of ``ramp_s``."""
        return ramp_s + max(self.tail_s + self.tail_per_ramp_s * ramp_s, self.tail_min_s)

    # -- storage -----------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        from safetensors.numpy import save

        meta = {"format": f"facetwin-settle/{VERSION}", "profile_sha256": self.profile_sha256,
                "face_sha256": self.face_sha256,
                **{k: repr(getattr(self, k)) for k in TAIL}}
        data = save({"neutral": self.neutral.astype(np.float64),
                     "weights": self.weights.astype(np.float32)}, metadata=meta)
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, data)

    @classmethod
    def load(cls, path: Path, profile_sha256: str, face_sha256: str) -> "SettleModel | None":
        """The model in ``path``, or None where there is none for this profile and face
        (or it is damaged: a cache is made again, never trusted)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load

        try:
            raw = Path(path).read_bytes()
            tensors = load(raw)
            meta = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
        except (OSError, ValueError, KeyError, SafetensorError):
            return None
        if (meta.get("format") != f"facetwin-settle/{VERSION}"
                or meta.get("profile_sha256") != profile_sha256
                or meta.get("face_sha256") != face_sha256):
            return None
        try:
            return cls(profile_sha256, face_sha256, tensors["neutral"],
                       tensors["weights"].astype(np.float64), *(float(meta[k]) for k in TAIL))
        except (KeyError, ValueError):
            return None


def _features(controls: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    d = np.atleast_2d(np.asarray(controls, dtype=float)) - neutral
    out = np.hstack([np.ones((len(d), 1)), np.maximum(d, 0.0), np.minimum(d, 0.0)])
    return out[0] if np.ndim(controls) == 1 else out


def cache_path(profile_sha256: str, face_sha256: str) -> Path:
    return user_cache() / "settle" / f"{profile_sha256[:16]}-{face_sha256[:16]}-v{VERSION}.safetensors"


def fitted(profile, face_sha256: str, commands, states, ramps_s, tails_s) -> SettleModel:
    """The model of dynamic settles: the commands they came to rest at, the state at
    rest (qpos) of each, how long each one's ramp took and how long the face then took
    to come to rest."""
    commands, ramps_s, tails_s = np.array(commands), np.array(ramps_s), np.array(tails_s)
    weights = np.linalg.lstsq(_features(commands, profile.neutral), np.array(states),
                              rcond=None)[0]
    # Rounded as the cache stores them: the run that fits a model starts its settles
    # where every later run, loading it, does (else its first dataset differs).
    weights = weights.astype(np.float32).astype(np.float64)
    slope, intercept = np.polyfit(ramps_s, tails_s, 1)
    return SettleModel(profile.sha256, face_sha256, profile.neutral.astype(float), weights,
                       float(intercept), float(slope), float(tails_s.min()))
