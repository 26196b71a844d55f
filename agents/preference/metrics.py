"""How well a preference model agrees with people: its scores of a pool, accuracy on
answered pairs, and Kendall's tau against each annotator's complete ranking."""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau

from facetwin.agents.preference.models import IMAGE_KINDS, PreferenceModel
from facetwin.agents.preference.pairing import sorting_state
from facetwin.agents.preference.pairs import Pairs
from facetwin.agents.preference.pool import Pool


def pool_images(pool: Pool) -> list[np.ndarray]:
    return [pool.image(i) for i in pool.ids]


def pool_scores(model: PreferenceModel, pool: Pool) -> np.ndarray:
    if model.kind in IMAGE_KINDS:
        return model.score_images(pool_images(pool))
    return model.score_features(pool.features)


def accuracy(scores: np.ndarray, pairs: Pairs) -> float:
    """Share of decided pairs whose preferred face the scores rank higher."""
    decided = pairs.target != 0.5
    if not decided.any():
        return float("nan")
    says_first = scores[pairs.first[decided]] > scores[pairs.second[decided]]
    return float(np.mean(says_first == (pairs.target[decided] == 1.0)))


def rankings_of(pool: Pool, answers: list[dict]) -> dict[str, list[str]]:
    """Each annotator's complete ranking (merge sort finished), most preferred first."""
    originals = [i for i, o in zip(pool.ids, pool.origins) if o == "pool"]
    added = [i for i, o in zip(pool.ids, pool.origins) if o != "pool"]
    out = {}
    for name in sorted({r["annotator"] for r in answers}):
        _, ranking = sorting_state(originals, added, [r for r in answers
                                                      if r["annotator"] == name], name)
        if ranking is not None:
            out[name] = ranking
    return out


def taus(pool: Pool, scores: np.ndarray, answers: list[dict]) -> dict[str, float]:
    """Kendall's tau between the model's ranking and each complete annotator ranking."""
    out = {}
    for name, ranking in rankings_of(pool, answers).items():
        position = {item: k for k, item in enumerate(ranking)}
        ranked = [i for i in pool.ids if i in position]
        model_order = [-scores[pool.index(i)] for i in ranked]
        out[name] = round(float(kendalltau([position[i] for i in ranked], model_order)[0]), 4)
    return out
