"""A search method as an :class:`~facetwin.agents.protocol.ExpressionAgent`.

    agent = SearchAgent(env, "bo", budget=60, log_dir=Path("runs"))
    solution = agent.solve({"target": "happiness"})
"""

from __future__ import annotations

import tempfile
from contextlib import nullcontext
from pathlib import Path

import gymnasium as gym
import numpy as np

from facetwin.agents.optimize.harness import run_search, target_id
from facetwin.agents.optimize.methods import METHODS, make_search
from facetwin.agents.protocol import Solution


class SearchAgent:
    """Bayesian optimisation (or random search, or CMA-ES) of one target from neutral.

    Args:
        env: a FaceTwin env, or a vector env of them (evaluating batches in parallel).
        method: ``"bo"``, ``"random"`` or ``"cmaes"``.
        budget: evaluations per target.
        batch: controls proposed at a time.
        seed: the search's seed.
        log_dir: where each target's run log is kept (a run resumes from it); a
            temporary folder when None.
        progress: show a progress bar.
    """

    def __init__(self, env, method: str = "bo", budget: int = 60, batch: int = 2,
                 seed: int = 0, log_dir: Path | None = None, progress: bool = False):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
        self.env, self.method, self.budget, self.batch, self.seed = env, method, budget, \
            batch, seed
        self.log_dir, self.progress = log_dir, progress
        self.profile = env.get_attr("profile")[0] if isinstance(env, gym.vector.VectorEnv) \
            else env.get_wrapper_attr("profile")

    def solve(self, target: dict) -> Solution:
        p = self.profile
        name = target_id(target["target"])
        search = make_search(self.method, p.low, p.high, p.neutral, self.seed, self.batch,
                             strain_limit=p.strain_ceiling)
        header = {"profile": p.name, "profile_sha256": p.sha256, "target": name}
        kept = nullcontext(self.log_dir) if self.log_dir is not None else \
            tempfile.TemporaryDirectory(prefix="facetwin-search-")
        with kept as folder:
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            log_path = folder / f"{self.method}-s{self.seed}-{name.replace(':', '-')}.jsonl"
            run = run_search(self.env, target, search, self.budget, self.batch, log_path,
                             header, progress=self.progress)
        best = run.best
        return Solution(np.asarray(best["controls"], dtype=np.float32), best, len(run.records))
