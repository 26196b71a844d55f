"""Which pair an annotator sees next.

Sorting (HAPI, Sec. III-A): the pool's faces, shuffled per annotator, are merge-sorted
with the annotator as the comparison, O(n log n) comparisons for a complete, cycle-free
ranking; faces added to the pool later are placed in that ranking by binary insertion,
O(log n) each. Neither keeps state: the sort is replayed over the annotator's answers
until it needs a comparison it does not have, and that is the next pair. A restarted
server, a reloaded page and an undo all resume exactly where the answers leave off.

Active: a Bayesian Bradley-Terry model (a utility quadratic in the faces' embedding,
Laplace posterior) is fitted to every answer so far, and the next pair is the one whose
answer is expected to teach it most (BALD, Houlsby et al. 2011), among the pairs this
annotator has not answered.

Asked: only the pairs an optimiser asks for (preferential BO); between them, wait.
"""

from __future__ import annotations

import math
import zlib
from itertools import combinations

import numpy as np

from facetwin.agents.preference.answers import verdicts
from facetwin.agents.preference.embedding import Embedding

STRATEGIES = ("mergesort", "active", "asked")


class _Need(Exception):
    def __init__(self, pair: tuple[str, str]):
        self.pair = pair


def _comparer(v: dict):
    def cmp(a: str, b: str) -> int:
        if (a, b) not in v:
            raise _Need((a, b))
        return v[a, b]
    return cmp


def merge_sort(items: list, cmp) -> list:
    """``items`` most preferred first; a tie keeps the earlier one first (stable)."""
    if len(items) <= 1:
        return list(items)
    mid = len(items) // 2
    a, b = merge_sort(items[:mid], cmp), merge_sort(items[mid:], cmp)
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if cmp(a[i], b[j]) >= 0:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + a[i:] + b[j:]


def binary_insert(ranking: list, item, cmp) -> list:
    lo, hi = 0, len(ranking)
    while lo < hi:
        mid = (lo + hi) // 2
        if cmp(item, ranking[mid]) > 0:
            hi = mid
        else:
            lo = mid + 1
    return ranking[:lo] + [item] + ranking[lo:]


def shuffled(ids: list[str], annotator: str) -> list[str]:
    """The pool in this annotator's own order (the same on every replay)."""
    rng = np.random.default_rng(zlib.crc32(annotator.encode()))
    return [ids[i] for i in rng.permutation(len(ids))]


def sorting_state(pool_ids: list[str], added_ids: list[str], answers: list[dict],
                  annotator: str) -> tuple[tuple[str, str] | None, list[str] | None]:
    """(next pair, None) while the ranking needs comparisons, else (None, ranking)."""
    cmp = _comparer(verdicts(answers))
    try:
        ranking = merge_sort(shuffled(pool_ids, annotator), cmp)
        for item in added_ids:
            ranking = binary_insert(ranking, item, cmp)
    except _Need as need:
        return need.pair, None
    return None, ranking


def sorting_budget(n_pool: int, n_added: int = 0) -> int:
    """The most comparisons the sort and the insertions can take."""
    def worst(n: int) -> int:
        return 0 if n <= 1 else worst(n // 2) + worst(n - n // 2) + n - 1
    return worst(n_pool) + sum(math.ceil(math.log2(n_pool + i + 1)) for i in range(n_added))


def active_budget(n: int) -> int:
    """Comparisons the active strategy asks for by default: half the sort's."""
    return max(1, sorting_budget(n) // 2)


def side_of(pair: tuple[str, str], annotator: str) -> tuple[str, str]:
    """(left, right): which face shows on which side, fixed per annotator and pair, so a
    position bias does not line up with the sort's order."""
    a, b = sorted(pair)
    flip = zlib.crc32(f"{annotator}|{a}|{b}".encode()) & 1
    return (b, a) if flip else (a, b)


class BradleyTerry:
    """P(a preferred to b) = sigmoid(u(a) - u(b)), u = w . [z, z^2] on the embedding z,
    w ~ N(0, prior_var I); the MAP weights and a Laplace covariance."""

    def __init__(self, embedded: np.ndarray, prior_var: float = 1.0):
        self.phi = np.hstack([embedded, embedded ** 2 - 1.0])
        d = self.phi.shape[1]
        self.prior_var = prior_var
        self.w, self.cov = np.zeros(d), np.eye(d) * prior_var

    def fit(self, winners: np.ndarray, losers: np.ndarray, targets: np.ndarray,
            iterations: int = 25) -> BradleyTerry:
        """``targets``: 1 when the first of a pair was preferred, 0.5 for can't tell."""
        x = self.phi[winners] - self.phi[losers]
        precision0 = np.eye(x.shape[1]) / self.prior_var
        w = np.zeros(x.shape[1])
        for _ in range(iterations):  # Newton on the log posterior (concave)
            p = 1 / (1 + np.exp(-x @ w))
            grad = x.T @ (targets - p) - precision0 @ w
            hess = x.T @ (x * (p * (1 - p))[:, None]) + precision0
            step = np.linalg.solve(hess, grad)
            w = w + step
            if np.abs(step).max() < 1e-8:
                break
        p = 1 / (1 + np.exp(-x @ w))
        self.w = w
        self.cov = np.linalg.inv(x.T @ (x * (p * (1 - p))[:, None]) + precision0)
        return self

    def utility(self) -> np.ndarray:
        return self.phi @ self.w

    def bald(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Expected information about w from the answer to each pair (a[i], b[i])."""
        x = self.phi[a] - self.phi[b]
        mu, var = x @ self.w, np.einsum("ij,jk,ik->i", x, self.cov, x)
        c2 = math.pi * math.log(2) / 2  # the probit approximation of the logistic
        p = 1 / (1 + np.exp(-mu / np.sqrt(1 + math.pi * var / 8)))
        entropy = -(p * np.log2(p + 1e-12) + (1 - p) * np.log2(1 - p + 1e-12))
        expected = np.sqrt(c2 / (var + c2)) * np.exp(-mu ** 2 / (2 * (var + c2)))
        return entropy - expected


def fitted_bradley_terry(ids: list[str], embedded: np.ndarray,
                         answers: list[dict]) -> BradleyTerry:
    index = {item: i for i, item in enumerate(ids)}
    rows = [(index[r["pair"][0]], index[r["pair"][1]], r["answer"]) for r in answers
            if r["pair"][0] in index and r["pair"][1] in index]
    model = BradleyTerry(embedded)
    if rows:
        left, right, answer = zip(*rows)
        target = np.array([{"left": 1.0, "right": 0.0, "tie": 0.5}[a] for a in answer])
        model.fit(np.array(left), np.array(right), target)
    return model


def active_pair(ids: list[str], features: np.ndarray, all_answers: list[dict],
                annotator: str) -> tuple[str, str] | None:
    """The most informative pair ``annotator`` has not answered (None when none is left)."""
    asked = {frozenset(r["pair"]) for r in all_answers if r["annotator"] == annotator}
    pairs = [(i, j) for i, j in combinations(range(len(ids)), 2)
             if frozenset((ids[i], ids[j])) not in asked]
    if not pairs:
        return None
    model = fitted_bradley_terry(ids, Embedding.fit(features)(features), all_answers)
    a, b = np.array(pairs).T
    best = int(np.argmax(model.bald(a, b)))
    return ids[a[best]], ids[b[best]]
