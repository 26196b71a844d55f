"""One thread for the numeric libraries' pools (BLAS, OpenMP) around FaceTwin's own work.

The arrays here are small: a face's 478 landmarks, a strain envelope of a few thousand
triangles, a GP of a few hundred points. On them a BLAS pool buys about 10% speed and
then spin-waits: a twin env stepping used two cores instead of one on a 2-core machine
(61 vs 55 steps/s), starving vector-env workers; on a loaded machine the spinning made
the safety filter ten times slower and Bayesian optimisation three times slower. Work
inside ``single_threaded()`` runs with one thread per pool; a user's own numpy work
outside it keeps its threads.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController, threadpool_limits

_lock = threading.Lock()
_inside = 0  # blocks running now, in any thread: the first limits, the last restores
_limiter = None


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # finding the pools takes ~0.5 ms: once per process


@contextmanager
def single_threaded(rescan: bool = False):
    """Limit every pool to one thread inside the block (also as a decorator; nested and
    concurrent blocks are cheap). ``rescan`` also finds pools loaded since the first use
    (torch's, say)."""
    global _inside, _limiter
    with _lock:
        if _inside == 0:
            _limiter = threadpool_limits(limits=1) if rescan else _controller().limit(limits=1)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _limiter.restore_original_limits()
                _limiter = None


@contextmanager
def torch_single_threaded():
    """``single_threaded``, torch's own pool included (torch sizes it itself). One thread
    also makes torch's sums come out in one order: training on the same data gives the
    same weights, run after run."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with single_threaded(rescan=True):
            yield
    finally:
        torch.set_num_threads(threads)


def one_thread_for_life() -> None:
    """Every pool of this process (torch's included) at one thread from now on: for a
    worker process that shares its machine's cores with others like it."""
    import torch

    torch.set_num_threads(1)
    threadpool_limits(limits=1)
