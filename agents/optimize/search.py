"""Search methods behind one ask/tell interface, so they share the harness, the budget,
the seeds and the evaluation function: random search and CMA-ES here, Bayesian
optimisation in :mod:`facetwin.agents.optimize.bayesopt`.

Every method is seeded and deterministic: given the same evaluations, it asks for the
same controls. That is what lets a killed run resume from its log.
"""

from __future__ import annotations

import numpy as np

from facetwin.profile import from_box, to_box


class Search:
    """Base: a box of controls ``[low, high]``, a starting point ``x0``, a seed."""

    name = "search"
    # True when ask() depends on the evaluations told so far and nothing else, so a
    # resumed run can skip asking for batches already in the log.
    stateless = False

    def __init__(self, low, high, x0, seed: int):
        self.low, self.high = np.asarray(low, float), np.asarray(high, float)
        self.x0 = np.asarray(x0, float)
        self.seed = seed
        self.X = np.empty((0, len(self.low)))
        self.scores = np.empty(0)

    def ask(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def tell(self, X: np.ndarray, records: list[dict]) -> None:
        self.X = np.vstack([self.X, X])
        self.scores = np.concatenate([self.scores, [r["score"] for r in records]])

    def to_box(self, x) -> np.ndarray:
        return to_box(x, self.low, self.high)

    def from_box(self, u) -> np.ndarray:
        return from_box(u, self.low, self.high)


class RandomSearch(Search):
    """Controls drawn uniformly from their ranges."""

    name = "random"

    def __init__(self, low, high, x0, seed: int):
        super().__init__(low, high, x0, seed)
        self.rng = np.random.default_rng(seed)

    def ask(self, n: int) -> np.ndarray:
        return self.from_box(self.rng.random((n, len(self.low))))


class CMAES(Search):
    """CMA-ES (the ``cma`` package) in unit-scaled controls, started at ``x0``.

    CMA-ES tells a whole population at once; ``ask`` hands out its members a batch at a
    time and the population is told when its last member is scored.
    """

    name = "cmaes"
    SIGMA0 = 0.25  # a quarter of every control's range

    def __init__(self, low, high, x0, seed: int):
        import cma

        super().__init__(low, high, x0, seed)
        self.es = cma.CMAEvolutionStrategy(
            self.to_box(self.x0), self.SIGMA0,
            {"bounds": [0, 1], "seed": seed + 1, "verbose": -9})
        self._population: list[np.ndarray] = []
        self._handed = 0
        self._values: list[float] = []

    def ask(self, n: int) -> np.ndarray:
        if self._handed == len(self._population):
            self._population, self._handed, self._values = self.es.ask(), 0, []
        batch = self._population[self._handed:self._handed + n]
        self._handed += len(batch)
        return self.from_box(np.array(batch))

    def tell(self, X: np.ndarray, records: list[dict]) -> None:
        super().tell(X, records)
        self._values += [-r["score"] for r in records]  # cma minimises
        if len(self._values) == len(self._population):
            self.es.tell(self._population, self._values)
