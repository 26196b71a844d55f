"""When the robot made each expression, against when the person peaked.

A run's trace (per frame: time, the person's landmarks, the robot's present controls)
is cut into expressions where the person's face is clearly away from rest. For each:
the person's peak is the labelling's target (the first frame within 5 % of the
expression's largest deviation), and the robot's arrival is the first frame at which
it has come 80 % of its way from where it was at the person's onset to where it ends
the expression. Their difference is how late (positive) or early the robot was. The
person's own 80 % (of their way from rest to their largest deviation) is given too: a
face eases into its apex, so it is 80 % of its way well before it peaks.
"""

from __future__ import annotations

import numpy as np

from facetwin.agents.coexpress.labelling import ONSET_FRACTION, PLATEAU, smoothed
from facetwin.agents.coexpress.predictor import Face

AWAY = 0.008  # skull sizes from rest: the person is making an expression
GAP = 5  # frames: shorter dips below it do not end an expression
ARRIVED = 0.8  # of the robot's way
STILL = 0.05  # a robot that moves less than this (0-1 units, all controls) made nothing


def expression_timing(times, people, neutral: np.ndarray, robot_units) -> list[dict]:
    """Per expression in the trace: the person's onset and peak times, the robot's
    80 % time and their difference (s), or why there is none."""
    times = np.asarray(times, float)
    face = Face(neutral)
    d = np.array([np.nan if lm is None else
                  float(np.sqrt((face.displacement(lm) ** 2).sum(1).mean())) for lm in people])
    if len(d) < 3 or np.isnan(d).all():
        return []
    d = _filled(d)
    d = smoothed(d) if len(d) >= 5 else d
    units = np.asarray(robot_units, float)
    out = []
    for start, end in _segments(d > AWAY):
        top, level = d[start:end].max(), d[:max(start, 1)].min()
        rise = top - level
        peak = start + int(np.flatnonzero(d[start:end] >= top - PLATEAU * rise)[0])
        below = np.flatnonzero(d[:peak + 1] < level + ONSET_FRACTION * rise)
        onset = int(below[-1]) + 1 if len(below) else 0
        own = onset + int(np.flatnonzero(d[onset:end] >= level + ARRIVED * rise)[0])
        row = {"onset_s": round(times[onset], 4), "peak_s": round(times[peak], 4),
               "person_80_s": round(times[own], 4)}
        way = units[end - 1] - units[onset]
        length = float(np.linalg.norm(way))
        if length < STILL:
            out.append(row | {"robot_80_s": None, "late_s": None,
                              "why": f"the robot moved {length:.3f} (0-1 units)"})
            continue
        progress = (units[onset:end] - units[onset]) @ way / length ** 2
        arrived = onset + int(np.flatnonzero(progress >= ARRIVED)[0])
        out.append(row | {"robot_80_s": round(times[arrived], 4),
                          "late_s": round(times[arrived] - times[peak], 4)})
    return out


def _filled(d: np.ndarray) -> np.ndarray:
    """Frames without a face take the last deviation seen (the first seen before it)."""
    d = d.copy()
    first = np.flatnonzero(~np.isnan(d))[0]
    d[:first] = d[first]
    for i in range(first + 1, len(d)):
        if np.isnan(d[i]):
            d[i] = d[i - 1]
    return d


def _segments(away: np.ndarray) -> list[tuple[int, int]]:
    """Runs of ``away`` frames, dips shorter than GAP bridged."""
    runs, start, last = [], None, None
    for i, a in enumerate(away):
        if not a:
            continue
        if start is None:
            start = i
        elif i - last > GAP:
            runs.append((start, last + 1))
            start = i
        last = i
    if start is not None:
        runs.append((start, len(away) if last >= len(away) - GAP else last + 1))
    return runs
