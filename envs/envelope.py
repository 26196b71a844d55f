"""The skin-strain envelope: how much a command would stretch the skin, predicted
without running the twin, so the same check runs in front of the physical face.

The twin measures each skin triangle's strain with every control alone at each end of
its range. A command's predicted strain on a triangle is the sum of the controls'
contributions, each scaled by how far the control is from neutral (in normalised
units); the prediction is the largest over triangles, times a margin fitted so that no
sampled command, alone or combined, strains more than predicted. The prediction is
convex and grows linearly when a command is scaled toward neutral, which is what lets
the safety filter scale a command back by exactly the amount needed.

The envelope is stored beside its profile as ``NAME.envelope.json`` with the hashes of
the profile and of the face asset it was measured on; ``facetwin envelope --profile
NAME`` recomputes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write
from facetwin.profile import Profile
from facetwin.sim.face import load_face
from facetwin.threads import single_threaded

MIN_CONTRIBUTION = 0.01  # strain below this is dropped from the stored table
N_CHECK_SAMPLES = 60


class EnvelopeError(FaceTwinError, ValueError):
    """A missing envelope, or one computed for another profile or another version of it."""


@dataclass(frozen=True)
class StrainEnvelope:
    profile: str
    profile_sha256: str
    face_sha256: str
    ceiling: float
    margin: float
    rise: np.ndarray  # (triangles, controls): strain with the control at its high end
    fall: np.ndarray  # (triangles, controls): strain with the control at its low end

    @single_threaded()
    def predict(self, u: np.ndarray) -> float:
        """Predicted peak strain for normalised command ``u`` (0 at neutral)."""
        up, down = np.maximum(u, 0.0), np.maximum(-u, 0.0)
        return float((self.rise @ up + self.fall @ down).max(initial=0.0)) * self.margin

    @property
    def weight(self) -> np.ndarray:
        """How much each control can strain the skin at all (0: never)."""
        return np.maximum(self.rise.max(axis=0, initial=0), self.fall.max(axis=0, initial=0))

    # -- storage -----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        def sparse(table: np.ndarray) -> list[list[float]]:
            rows, cols = np.nonzero(table)
            return [[int(r), int(c), round(float(table[r, c]), 4)] for r, c in zip(rows, cols)]

        atomic_write(path, json.dumps({
            "profile": self.profile, "profile_sha256": self.profile_sha256,
            "face_sha256": self.face_sha256, "ceiling": self.ceiling,
            "margin": round(self.margin, 4),
            "shape": list(self.rise.shape), "rise": sparse(self.rise), "fall": sparse(self.fall),
        }, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: Path, profile: Profile) -> StrainEnvelope:
        if not path.exists():
            raise EnvelopeError(f"no strain envelope for profile {profile.name!r} at {path}; "
                                f"compute it on the twin: facetwin envelope --profile "
                                f"{profile.path}")
        try:
            raw = json.loads(path.read_text())
            shape = tuple(raw["shape"])
            tables = []
            for key in ("rise", "fall"):
                table = np.zeros(shape)
                for r, c, v in raw[key]:
                    table[r, c] = v
                tables.append(table)
            envelope = cls(raw["profile"], raw["profile_sha256"],
                           raw.get("face_sha256", ""), float(raw["ceiling"]),
                           float(raw["margin"]), *tables)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise EnvelopeError(f"{path}: not a strain envelope ({exc})") from None
        if envelope.profile_sha256 != profile.sha256 or shape[1] != len(profile.controls):
            raise EnvelopeError(f"{path} was computed for another version of profile "
                                f"{envelope.profile!r}; recompute it: facetwin envelope "
                                f"--profile {profile.path}")
        if envelope.face_sha256 != load_face().sha256:
            raise EnvelopeError(f"{path} was measured on another face asset than "
                                f"assets/face/face.json; recompute it: facetwin envelope "
                                f"--profile {profile.path}")
        return envelope


def envelope_path(profile: Profile) -> Path:
    return profile.companion("envelope.json")


def load_envelope(profile: Profile) -> StrainEnvelope:
    return StrainEnvelope.load(envelope_path(profile), profile)


def fit_envelope(profile: Profile, seed: int = 0, progress=None) -> StrainEnvelope:
    """Measure the envelope on the nominal twin (a few seconds)."""
    from facetwin.sim.twin import Twin

    twin = Twin(profile)
    twin.reset(controls=profile.neutral)
    base = twin.strain()
    n = len(profile.controls)
    rise, fall = np.zeros((base.size, n)), np.zeros((base.size, n))
    for i, c in enumerate(profile.controls):
        for table, sign in ((rise, 1.0), (fall, -1.0)):
            # Strain is not linear in the command (folds form and release), so each
            # contribution is the steepest secant from neutral: to half and to full range.
            for fraction in (0.5, 1.0):
                u = np.zeros(n)
                u[i] = sign * fraction
                command = profile.denormalise(u)
                if command[i] == c.neutral:
                    break
                twin.reset(controls=command)
                table[:, i] = np.maximum(table[:, i], (twin.strain() - base) / fraction)
        if progress:
            progress(i + 1, n + N_CHECK_SAMPLES)
    rise[rise < MIN_CONTRIBUTION] = 0.0
    fall[fall < MIN_CONTRIBUTION] = 0.0
    face = twin.face.sha256
    envelope = StrainEnvelope(profile.name, profile.sha256, face, profile.strain_ceiling, 1.0,
                              rise, fall)

    # Combined commands strain less than the sum of their parts almost everywhere, but
    # not quite: fit the margin on random commands of every sparsity.
    rng = np.random.default_rng(seed)
    ratios = []
    for k in range(N_CHECK_SAMPLES):
        u = rng.uniform(-1, 1, n) * (rng.random(n) < rng.uniform(0.1, 1.0))
        # Commands far past the ceiling (the filter never sends them) may leave the
        # skin fluttering at a torn corner: their strain after the settle time counts.
        twin.reset(controls=profile.denormalise(u), strict=False)
        measured = twin.strain().max() - base.max()
        # Only commands that come near the ceiling decide the margin; a fold's few
        # per cent on an almost neutral face does not.
        if measured > 0.5 * profile.strain_ceiling:
            ratios.append(measured / envelope.predict(u))
        if progress:
            progress(n + k + 1, n + N_CHECK_SAMPLES)
    margin = max(1.0, max(ratios, default=1.0))
    return StrainEnvelope(profile.name, profile.sha256, face, profile.strain_ceiling, margin,
                          rise, fall)
