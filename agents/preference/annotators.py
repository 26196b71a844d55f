"""Simulated annotators, for CI and benchmarks.

``SimulatedAnnotator`` prefers the face whose expression is closer to a hidden target
(the env's expression distance, mm), with Bradley-Terry noise and a band inside which it
can't tell; ``EmotionAnnotator`` prefers the face an emotion recogniser finds more NAME
(its log-odds, the same noise and band in log-odds).

    person = SimulatedAnnotator(hidden_target(profile, "happiness"), noise_mm=0.1)
    person.answer(features_left, features_right)        # "left", "right" or "tie"
    answer_over_http(server.url, "pool", "sim", person, pool)   # as a person would
    judge = EmotionAnnotator("happy", noise=0.3)
    judge.answer(image_left, image_right)

P(left) = sigmoid((d_right - d_left) / noise); |d_left - d_right| < tie is a tie.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from facetwin.envs.expression import distance
from facetwin.profile import Profile

# The hidden target: 0.3 of the library's way from neutral. The library's expressions go
# as far as the recogniser reads them best, most controls near the ends of their ranges,
# so a stronger face is the same face clipped; a subtler one is a taste of its own.
TARGET_GAIN = 0.3


def hidden_target(profile: Profile, expression: str, gain: float = TARGET_GAIN) -> np.ndarray:
    """Controls of ``expression`` at ``gain`` times the library's way from neutral: the
    face the simulated annotator has in mind (kept inside the ranges; the safety filter
    has the last word)."""
    neutral, expr = profile.neutral, np.asarray(profile.expressions[expression], float)
    return np.clip(neutral + gain * (expr - neutral), profile.low, profile.high)


@dataclass
class SimulatedAnnotator:
    target: np.ndarray  # expression features of the face it has in mind
    noise_mm: float = 0.1
    tie_mm: float = 0.02
    seed: int = 0
    rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self):
        if self.noise_mm < 0 or self.tie_mm < 0:
            raise ValueError(f"noise_mm and tie_mm must be >= 0, got {self.noise_mm}, "
                             f"{self.tie_mm}")
        self.rng = np.random.default_rng(self.seed)

    def distance(self, features) -> np.ndarray:
        return distance(features, self.target)

    def answer(self, left, right) -> str:
        return _choose(self.distance(left), self.distance(right), self.noise_mm, self.tie_mm,
                       self.rng)

    def prefers(self, a, b) -> bool:
        """Without noise: is ``a`` closer to the target than ``b``?"""
        return bool(self.distance(a) < self.distance(b))


class EmotionAnnotator:
    """Prefers the face (an RGB picture, or (picture, landmarks in pixels)) that the
    FER2013 recogniser finds more ``emotion``; ``noise`` and ``tie`` in log-odds."""

    def __init__(self, emotion: str, noise: float = 0.3, tie: float = 0.05, seed: int = 0):
        from facetwin.agents.emotion_objective import EmotionObjective

        if noise < 0 or tie < 0:
            raise ValueError(f"noise and tie must be >= 0, got {noise}, {tie}")
        self.objective = EmotionObjective(emotion)
        self.noise, self.tie = noise, tie
        self.rng = np.random.default_rng(seed)

    def distance(self, face) -> float:
        """Minus the log-odds of the emotion: lower is preferred."""
        image, landmarks = face if isinstance(face, tuple) else (face, None)
        if landmarks is None:
            landmarks = self.objective.reader.find_face(np.asarray(image))
            if landmarks is None:
                return np.inf  # no face: nothing of the emotion
        return -self.objective({"image": image, "landmarks": landmarks})["score"]

    def answer(self, left, right) -> str:
        return _choose(self.distance(left), self.distance(right), self.noise, self.tie,
                       self.rng)

    def prefers(self, a, b) -> bool:
        return bool(self.distance(a) < self.distance(b))


def _choose(d_left: float, d_right: float, noise: float, tie: float,
            rng: np.random.Generator) -> str:
    """Bradley-Terry: the nearer face wins with probability sigmoid(gap / noise)."""
    if d_left == d_right or abs(d_left - d_right) < tie:
        return "tie"
    if noise == 0:
        return "left" if d_left < d_right else "right"
    p_left = 1 / (1 + np.exp(-(d_right - d_left) / noise))
    return "left" if rng.random() < p_left else "right"


def answer_over_http(url: str, pool_name: str, annotator: str, person: SimulatedAnnotator,
                     features_of, limit: int | None = None, timeout: float = 60) -> int:
    """Answer ``pool_name``'s pairs on the server at ``url`` until it has none for
    ``annotator`` now (done, or waiting for an optimiser) or ``limit`` answers are given;
    ``features_of(item id)`` is what the person sees. Returns the number given."""
    api = f"{url}/api/{pool_name}"
    reply = _request(f"{api}/next?annotator={urllib.request.quote(annotator)}", None, timeout)
    given = 0
    while "pair" in reply and (limit is None or given < limit):
        left, right = reply["pair"]
        choice = person.answer(features_of(left), features_of(right))
        reply = _request(f"{api}/answer", {"annotator": annotator, "pair": [left, right],
                                           "answer": choice}, timeout)
        given += 1
    return given


def _request(url: str, data: dict | None, timeout: float) -> dict:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url}: {exc.code} {json.loads(exc.read()).get('error')}") from None
