"""Emo's labelling of an expression onset, from a face's landmarks frame by frame.

Rest is the mean of the first five frames; each frame's deviation is its landmarks'
RMS distance from rest once the head's motion is aligned away, in skull sizes (so a
face far from the camera deviates as much as a near one); a Savitzky-Golay filter
smooths it. The **target** is the frame of largest deviation (on an apex held still,
its first frame: the first within 5 % of the rise of the largest, so that a plateau's
jitter does not pick its end); the **peak activation** is the frame where the smoothed
deviation's acceleration is largest before it; the **onset** is the first frame 10 % of
the way from rest to the target.

A sequence without a clear onset (no face in some frames, a rise lost in the rest's
jitter, an expression already under way in the first frames) is not labelled:
:func:`label_onset` raises :class:`NoOnset` saying which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from facetwin.envs.perception import align_face, skull_size
from facetwin.errors import FaceTwinError

REST_FRAMES = 5  # Emo: the mean of the first five frames is the face at rest
WINDOW = 9  # frames the Savitzky-Golay filter fits (0.3 s at 30 frames/s)
ORDER = 3
ONSET_FRACTION = 0.1
PLATEAU = 0.05  # of the rise: a target this close to the largest deviation is the apex
MIN_RISE = 0.01  # skull sizes: a rise below this is the rest's jitter (about 0.4 mm)
NOISE_FACTOR = 6.0  # and so is one within this many of the rest frames' spread


class NoOnset(FaceTwinError, ValueError):
    """A sequence without a clear onset; the message says what was missing."""


@dataclass(frozen=True)
class Onset:
    rest: np.ndarray  # (478, 2) the face at rest: the mean of the first frames
    deviation: np.ndarray  # per frame, skull sizes, smoothed
    onset: int  # frame indices
    activation: int
    target: int
    rise: float  # the target's deviation above rest, skull sizes


def deviations(landmarks: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Each frame's distance from ``rest`` (Emo's Euclidean distance between the two
    landmark sets, over the square root of their number: the landmarks' RMS distance),
    head motion aligned away, in skull sizes of the face at rest."""
    size = skull_size(rest)
    return np.array([np.sqrt(((align_face(frame, rest)[0] - rest) ** 2).sum(1).mean())
                     for frame in landmarks]) / size


def smoothed(values: np.ndarray, deriv: int = 0) -> np.ndarray:
    """The Savitzky-Golay filter of the labelling (its ``deriv``-th derivative, per frame)."""
    window = min(WINDOW, len(values) - (1 - len(values) % 2))
    return savgol_filter(values, window, min(ORDER, window - 1), deriv=deriv, mode="interp")


def label_onset(landmarks: np.ndarray, rest_frames: int = REST_FRAMES) -> Onset:
    """Label one sequence of (T, 478, 2) landmarks (NaN rows: no face found)."""
    landmarks = np.asarray(landmarks, dtype=float)
    if landmarks.ndim != 3 or landmarks.shape[2] != 2:
        raise NoOnset(f"landmarks must be (frames, points, 2), got {landmarks.shape}")
    if len(landmarks) < rest_frames + WINDOW:
        raise NoOnset(f"{len(landmarks)} frames: too short for {rest_frames} rest frames "
                      f"and the {WINDOW}-frame smoothing")
    missing = np.flatnonzero(~np.isfinite(landmarks).all(axis=(1, 2)))
    if len(missing):
        raise NoOnset(f"no face in {len(missing)} frames (first {missing[0]})")
    rest = landmarks[:rest_frames].mean(axis=0)
    raw = deviations(landmarks, rest)
    d = smoothed(raw)
    jitter = raw[:rest_frames].std()
    start = d[:rest_frames].mean()
    top = start + max(d[rest_frames:].max() - start, 0.0)
    rise = top - start
    if rise < max(MIN_RISE, NOISE_FACTOR * jitter):
        raise NoOnset(f"no clear rise: the face deviates at most {rise:.4f} skull sizes "
                      f"from rest (jitter {jitter:.4f})")
    target = rest_frames + int(np.flatnonzero(d[rest_frames:] >= top - PLATEAU * rise)[0])
    onset = int(np.flatnonzero(d[:target + 1] < start + ONSET_FRACTION * rise)[-1]) + 1
    if onset <= rest_frames // 2:
        raise NoOnset(f"the face is already moving in the rest frames (onset at frame "
                      f"{onset})")
    acceleration = smoothed(raw, deriv=2)
    first = max(0, onset - WINDOW // 2)
    activation = first + int(np.argmax(acceleration[first:target + 1]))
    return Onset(rest, d, onset, activation, target, float(rise))
