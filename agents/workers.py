"""Work spread over worker processes, each started once with a twin of its own; their
progress comes back to one bar, and what they finished is kept when one dies or the
command is interrupted (their results are files, written whole)."""

from __future__ import annotations

import multiprocessing as mp
import queue
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from tqdm import tqdm

from facetwin.lifeline import spawning, stop_workers


def run_in_workers(start: Callable, initargs: tuple, job: Callable, items: Iterable,
                   workers: int, bar: tqdm, died: Exception) -> None:
    """``job(item)`` for each item, each process first running ``start(*initargs,
    report)`` (``report(n)`` moves ``bar``); with one worker, here. A worker that dies
    raises ``died``; any error or Ctrl-C stops the others."""
    items = list(items)
    if not items:
        return
    if workers == 1:
        start(*initargs, bar.update)
        for item in items:
            job(item)
        return
    ctx = mp.get_context("spawn")
    made = ctx.Queue()
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=start,
                               initargs=(*initargs, made.put))
    try:
        with spawning():  # the workers start on the first submits
            pending = {pool.submit(job, item) for item in items}
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for f in finished:
                f.result()  # a worker's error ends the run, with its traceback
            _drain(made, bar)
    except BrokenProcessPool:
        stop_workers(pool)
        raise died from None
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown()
    _drain(made, bar)


def _drain(made, bar: tqdm) -> None:
    while True:
        try:
            bar.update(made.get_nowait())
        except queue.Empty:
            return
