"""Optuna's samplers behind FaceTwin's ask/tell interface, for the optimisation benchmark.

Optuna is a benchmark-only dependency (``pip install -e .[bench]``). Each sampler runs
in Optuna's ask-and-tell mode over the same box of controls, started from the same
point as FaceTwin's methods (the profile's neutral face, enqueued as the first trial),
and is scored by the same evaluation function through the same harness.
"""

from __future__ import annotations

import numpy as np

from facetwin.agents.optimize.search import Search


class OptunaSearch(Search):
    """``sampler`` is ``"gp"`` (GPSampler) or ``"tpe"`` (TPESampler); the twin is
    deterministic, and GPSampler is told so."""

    def __init__(self, low, high, x0, seed: int, sampler: str):
        import optuna

        super().__init__(low, high, x0, seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.name = f"optuna-{sampler}"
        made = {"gp": lambda: optuna.samplers.GPSampler(seed=seed,
                                                        deterministic_objective=True),
                "tpe": lambda: optuna.samplers.TPESampler(seed=seed)}
        if sampler not in made:
            raise ValueError(f"unknown Optuna sampler {sampler!r}; available: gp, tpe")
        self.study = optuna.create_study(direction="maximize", sampler=made[sampler]())
        self.space = {f"c{i:02d}": optuna.distributions.FloatDistribution(lo, hi)
                      for i, (lo, hi) in enumerate(zip(self.low, self.high))}
        self.study.enqueue_trial(dict(zip(self.space, map(float, self.x0))))
        self._asked = []

    def ask(self, n: int) -> np.ndarray:
        self._asked = [self.study.ask(self.space) for _ in range(n)]
        return np.array([[t.params[k] for k in self.space] for t in self._asked])

    def tell(self, X: np.ndarray, records: list[dict]) -> None:
        super().tell(X, records)
        for trial, record in zip(self._asked, records):
            self.study.tell(trial, record["score"])
