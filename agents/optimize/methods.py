"""The search methods by name: ``make_search("bo", ...)``, ``"random"``, ``"cmaes"``."""

from __future__ import annotations

from facetwin.agents.optimize.search import CMAES, RandomSearch, Search

METHODS = ("bo", "random", "cmaes")


def make_search(method: str, low, high, x0, seed: int, batch: int = 2,
                strain_limit: float | None = None, start_side: float | None = None) -> Search:
    """A search over ``[low, high]`` from ``x0``. ``batch`` (q) and ``strain_limit`` (the
    outcome constraint) shape BO's proposals; the baselines do not model strain (the
    env's safety filter still bounds it for every method). ``start_side`` makes BO a
    local search about ``x0`` (a warm start)."""
    if method == "random":
        return RandomSearch(low, high, x0, seed)
    if method == "cmaes":
        return CMAES(low, high, x0, seed)
    if method == "bo":
        from facetwin.agents.optimize.bayesopt import BayesOpt  # BoTorch, only when asked

        return BayesOpt(low, high, x0, seed, strain_limit=strain_limit, batch=batch,
                        start_side=start_side)
    raise ValueError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
