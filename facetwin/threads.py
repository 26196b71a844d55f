"""One thread for the numeric libraries' pools (BLAS, OpenMP) around FaceTwin's own work.

The arrays here are small: a face's 478 landmarks, a GP of a few hundred points. On
them a BLAS pool buys about 10% speed and then spin-waits: a twin env stepping used two
cores instead of one on a 2-core machine (bench figures: 61 vs 55 steps/s), starving
vector-env workers and anything else running, and on a loaded machine torch's pool
made Bayesian optimisation three times slower. Work inside ``single_threaded()`` runs
with one thread per pool; a user's own numpy work outside it keeps its threads.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController, threadpool_limits


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # finding the pools takes ~0.5 ms: once per process


@contextmanager
def single_threaded(rescan: bool = False):
    """Limit every pool to one thread inside the block (also as a decorator).
    ``rescan`` looks for pools loaded since the first call (torch's, say)."""
    with (threadpool_limits(limits=1) if rescan else _controller().limit(limits=1)):
        yield
