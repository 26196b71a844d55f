"""Answers as pairs of pool indices, what every preference model learns from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.agents.preference.answers import AnswerLogError
from facetwin.agents.preference.models import PreferenceError
from facetwin.agents.preference.pool import Pool

TARGETS = {"left": 1.0, "right": 0.0, "tie": 0.5}


@dataclass
class Pairs:
    """Answered pairs as pool indices: ``target`` is 1 when ``first`` was preferred."""
    first: np.ndarray
    second: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, rows) -> Pairs:
        return Pairs(self.first[rows], self.second[rows], self.target[rows])


def pairs_of(pool: Pool, answers: list[dict]) -> Pairs:
    index = {item: i for i, item in enumerate(pool.ids)}
    rows = []
    for n, r in enumerate(answers, 1):
        missing = [i for i in r["pair"] if i not in index]
        if missing:
            raise AnswerLogError(f"answer {n} compares {missing[0]!r}, which is not in pool "
                                 f"{pool.path}: the answers belong to another pool")
        rows.append((index[r["pair"][0]], index[r["pair"][1]], TARGETS[r["answer"]]))
    if not rows:
        raise PreferenceError("no answers to learn from")
    first, second, target = (np.array(c) for c in zip(*rows))
    return Pairs(first.astype(int), second.astype(int), target.astype(float))


def winners_first(pairs: Pairs) -> np.ndarray:
    """The decided pairs as (preferred, other) rows of pool indices: what a
    ``PairwiseGP`` learns from (it has no ties)."""
    decided = pairs.target != 0.5
    if not decided.any():
        raise PreferenceError("every answer is can't tell: nothing for PairwiseGP to learn")
    first, second = pairs.first[decided], pairs.second[decided]
    win = pairs.target[decided] == 1.0
    return np.stack([np.where(win, first, second), np.where(win, second, first)], 1)
