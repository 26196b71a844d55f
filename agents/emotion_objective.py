"""HAPI's baseline objective: how sure an emotion recogniser is that the face shows one
emotion (hapi-preference-bo.txt optimised a FER2013-trained recogniser's score on the
real android before it learnt people's preferences).

    objective = EmotionObjective("fear")
    tune("x2c30", None, out, objective=objective)   # facetwin optimize --objective emotion:fear

The optimiser models the log-odds of the emotion's probability (a probability near 0
or 1 is flat; its log-odds is not); each evaluation's record keeps the probability and
all seven.
"""

from __future__ import annotations

import numpy as np

from facetwin.envs.emotion import EMOTIONS, LIBRARY_NAMES, EmotionReader, emotion_index
from facetwin.profile import Profile

CLIP = 1e-6  # probabilities are clipped this far from 0 and 1 before the log-odds


class EmotionObjective:
    """``from_library``: start from the profile's own expression of the emotion (where it
    has one), else from neutral."""

    def __init__(self, emotion: str, from_library: bool = True):
        self.from_library = from_library
        self.index = emotion_index(emotion)
        self.emotion = EMOTIONS[self.index]
        # The library's name for it (happiness, ...): the entry the result is kept under.
        self.name = {v: k for k, v in LIBRARY_NAMES.items()}[self.emotion]
        self.reader = EmotionReader()

    @classmethod
    def parse(cls, spec: str) -> "EmotionObjective":
        """``emotion:NAME`` (NAME a FER2013 class or a library name)."""
        kind, _, name = spec.partition(":")
        if kind != "emotion" or not name:
            raise ValueError(f"unknown objective {spec!r}; give emotion:NAME, NAME one of "
                             f"{', '.join(EMOTIONS)}")
        return cls(name)

    @property
    def spec(self) -> str:
        return f"emotion:{self.emotion}"

    def start(self, profile: Profile) -> np.ndarray:
        """The profile's own expression of the emotion, or neutral."""
        if self.from_library and self.name in profile.expressions:
            return profile.expressions[self.name].astype(float)
        return profile.neutral.astype(float)

    def box(self, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
        return profile.low, profile.high

    def __call__(self, obs: dict) -> dict:
        p = self.reader(obs["image"], obs["landmarks"])
        if p is None:  # no face found (a camera's landmarks): nothing recognised
            p = np.zeros(len(EMOTIONS))
        q = float(np.clip(p[self.index], CLIP, 1 - CLIP))
        return {"score": float(np.log(q) - np.log1p(-q)), "probability": float(p[self.index]),
                "emotion": self.index, "emotions": p.astype(float).round(6).tolist()}
