"""Where a command comes to rest, predicted: the twin's settled steps start there.

A settled step returns the face at rest, and what takes a dynamic settle its ~160-190
physics steps is the skin's slow modes on the way, not the servos (jumping them to
their goals shortens nothing). :class:`SettleModel` predicts the whole state at rest,
every joint and skin vertex, as a piecewise-linear function of the command (a slope on
each side of each control's neutral), fitted to dynamic settles of random commands;
:meth:`Twin.rest_at` starts there and settles by the unchanged rule, in about a third of
the steps. It also carries how long the dynamic settle's tail took (after the servos'
ramps), so that a settled step can still say how long the robot takes.

A model is fitted once per profile and face (a few seconds), on the nominal twin, and
kept in the user's cache (``~/.cache/facetwin/settle``) as safetensors, named by the
hashes of the profile and the face it was measured on. A perturbed robot starts from
the nominal prediction: a millimetre or two off, which the settle then takes up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.files import atomic_write, user_cache

VERSION = 1  # of the fit: a model of another version is fitted again
FIT_COMMANDS = 150  # random commands settled for the fit
SEED = 0x5E771E


@dataclass(frozen=True)
class SettleModel:
    """The state at rest of one profile's nominal twin, as a function of the command."""

    profile_sha256: str
    face_sha256: str
    neutral: np.ndarray  # (controls,): the slopes' hinge
    weights: np.ndarray  # (1 + 2 * controls, nq): qpos = features @ weights
    tail_s: float  # median time the dynamic settle took after the servos' ramps

    def rest(self, controls: np.ndarray) -> np.ndarray:
        """The predicted qpos at rest at ``controls``."""
        return _features(controls, self.neutral) @ self.weights

    # -- storage -----------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        from safetensors.numpy import save

        meta = {"format": f"facetwin-settle/{VERSION}", "profile_sha256": self.profile_sha256,
                "face_sha256": self.face_sha256, "tail_s": repr(self.tail_s)}
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
        return cls(profile_sha256, face_sha256, tensors["neutral"],
                   tensors["weights"].astype(np.float64), float(meta["tail_s"]))


def _features(controls: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    d = np.atleast_2d(np.asarray(controls, dtype=float)) - neutral
    out = np.hstack([np.ones((len(d), 1)), np.maximum(d, 0.0), np.minimum(d, 0.0)])
    return out[0] if np.ndim(controls) == 1 else out


def cache_path(profile_sha256: str, face_sha256: str) -> Path:
    return user_cache() / "settle" / f"{profile_sha256[:16]}-{face_sha256[:16]}-v{VERSION}.safetensors"


def fit(twin, n: int = FIT_COMMANDS, seed: int = SEED) -> SettleModel:
    """Settle the nominal ``twin`` dynamically at ``n`` random in-range commands, one
    after another as an env sends them, and fit the state at rest to them."""
    p = twin.profile
    rng = np.random.default_rng(seed)
    dt = twin.model.opt.timestep
    twin.reset()
    commands, states, tails = [], [], []
    for _ in range(n):
        before = twin.servos.goal.copy()
        c = rng.uniform(p.low, p.high)
        twin.command(c)
        steps = twin.settle(strict=False)
        ramp = np.ceil(np.max(np.abs(twin.servos.goal - before) / twin.servos.speed) / dt)
        commands.append(twin.servos.goal.copy())
        states.append(twin.data.qpos.copy())
        tails.append(max(steps - ramp, 0.0) * dt)
    features = _features(np.array(commands), p.neutral)
    weights = np.linalg.lstsq(features, np.array(states), rcond=None)[0]
    twin.reset()
    return SettleModel(p.sha256, twin.face.sha256, p.neutral.astype(float), weights,
                       float(np.median(tails)))
