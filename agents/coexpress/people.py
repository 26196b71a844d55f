"""Synthetic people: twin faces standing in for the people a lab would film.

They are not people. Each is the profile's twin face with an identity of its own (a
seeded draw of :data:`IDENTITY`: face shape as a smooth field over the skin's rest
shape, proportions of how far each of its linkages moves, skin stiffness, skin tone as
light and a tint of the colour channels, head placement as the camera's pose), and each
performs expressions from rest with human timing: onset durations drawn from Emo's
measured 0.841 +- 0.713 s (truncated to 0.25-2.5 s), a minimum-jerk rise, an apex held,
blends of two emotions, intensities from subtle to full, false starts that fade before
any apex, a head that drifts and nods, and a camera's sensor noise. Everything is a
pure function of (seed, person, expression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.profile import Profile
from facetwin.sim.randomization import Randomization

IDENTITY = Randomization(skin_stiffness=(0.75, 1.35), camera_offset_m=0.012,
                         camera_tilt_deg=4.0, light=0.3, texture_tint=0.15,
                         linkage_travel=(0.75, 1.25), linkage_anchor_mm=1.5,
                         skin_rest_mm=2.5)
ONSET_S = (0.841, 0.713, 0.25, 2.5)  # Emo's mean and spread; the plausible range
REST_S = (0.4, 0.8)  # before the onset: Emo's rest is the first five frames
HOLD_S = (0.3, 0.7)  # the apex held
INTENSITY = (0.4, 1.0)  # of the library expression's way from neutral
BLEND, FALSE_START = 0.4, 0.15  # probabilities
HEAD_DEG = (0.3, 0.3, 1.0)  # largest head drift in yaw, pitch and roll, degrees
NOISE = 2.0  # grey levels: a webcam's sensor noise, per pixel and frame


@dataclass(frozen=True)
class Performance:
    """One expression from rest, as scheduled (times in seconds from the first frame)."""

    emotion: str
    second: str | None  # blended in, with weight 1 - weight
    weight: float
    intensity: float
    rest_s: float
    onset_s: float
    hold_s: float
    false_start: bool  # rises a little and fades back: no apex, no expression
    head: tuple[float, ...]  # amplitude (deg) and phase of each head axis, then the rate

    @property
    def peak_s(self) -> float:
        """When the face is furthest from rest (a false start's top)."""
        return self.rest_s + self.onset_s

    @property
    def duration_s(self) -> float:
        extra = self.onset_s if self.false_start else 0.0
        return self.peak_s + extra + self.hold_s

    def progress(self, t: float) -> float:
        """How far along its way to the apex the face is at ``t`` (0 rest, 1 apex)."""
        tau = (t - self.rest_s) / self.onset_s
        if self.false_start and tau > 1:
            return _min_jerk(2 - tau)
        return _min_jerk(tau)


def _min_jerk(tau: float) -> float:
    tau = min(max(tau, 0.0), 1.0)
    return tau ** 3 * (10 - 15 * tau + 6 * tau ** 2)


def perform(rng: np.random.Generator, emotions: list[str]) -> Performance:
    """A performance drawn from ``rng``: which emotion, how and when."""
    mean, spread, low, high = ONSET_S
    onset = mean + spread * rng.standard_normal()
    while not low <= onset <= high:  # truncated: drawn again
        onset = mean + spread * rng.standard_normal()
    first, second = rng.choice(len(emotions), 2, replace=False)
    blend = rng.random() < BLEND
    false_start = rng.random() < FALSE_START
    intensity = rng.uniform(*INTENSITY) * (rng.uniform(0.15, 0.4) if false_start else 1.0)
    head = (*(rng.uniform(-1, 1, 3) * HEAD_DEG), *rng.uniform(0, 2 * np.pi, 3),
            rng.uniform(0.1, 0.3))
    return Performance(emotions[first], emotions[second] if blend else None,
                       float(rng.uniform(0.6, 0.9)) if blend else 1.0, float(intensity),
                       float(rng.uniform(*REST_S)), float(onset), float(rng.uniform(*HOLD_S)),
                       bool(false_start), tuple(float(h) for h in head))


class Choreography:
    """A performance as the profile's controls, moment by moment."""

    def __init__(self, profile: Profile, performance: Performance):
        self.performance = pf = performance
        lib, neutral = profile.expressions, profile.neutral
        way = pf.weight * (lib[pf.emotion] - neutral)
        if pf.second is not None:
            way = way + (1 - pf.weight) * (lib[pf.second] - neutral)
        self.neutral, self.way = neutral, pf.intensity * way
        self.low, self.high = profile.low, profile.high
        # The head drifts in degrees; a head control's twin joint says how many per unit.
        self.head = []
        for axis, name in enumerate(("head_yaw", "head_pitch", "head_roll")):
            if name in profile.names:
                c = profile.controls[profile.names.index(name)]
                degrees = c.twin.at_high - c.twin.at_low
                if c.twin.joints and degrees:
                    self.head.append((profile.names.index(name), axis,
                                      (c.high - c.low) / abs(degrees)))

    def controls(self, t: float) -> np.ndarray:
        pf = self.performance
        c = self.neutral + pf.progress(t) * self.way
        rate = pf.head[6]
        for index, axis, per_deg in self.head:
            c[index] += pf.head[axis] * per_deg * np.sin(2 * np.pi * rate * t + pf.head[3 + axis])
        return np.clip(c, self.low, self.high)
