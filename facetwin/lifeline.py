"""Worker processes that cannot outlive the command that started them.

A worker waiting on its pool's queue never looks at its parent, so a command killed by
SIGKILL (or SIGTERM, which ends Python without cleanup) left its twins running, half a
gigabyte each. Linux kills a process whose parent died if asked to beforehand
(``PR_SET_PDEATHSIG``); elsewhere a thread polls for the parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Called in a worker process (a no-op in the main one): end this process as soon as
    the process that started it is gone, however that one ended."""
    parent = mp.parent_process()
    if parent is None:
        return
    if not _ask_kernel():
        threading.Thread(target=_watch, args=(parent.pid,), daemon=True,
                         name="facetwin-lifeline").start()
    if os.getppid() != parent.pid:  # it died before the kernel was asked
        os._exit(1)


def _ask_kernel() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


@contextlib.contextmanager
def spawning():
    """Start worker processes inside this: they begin with Ctrl-C ignored (a process
    inherits an ignored signal, and Python then leaves it so). Ctrl-C reaches every
    process of the terminal's group; the command handles it and stops its workers,
    rather than each worker dying mid-import with a traceback of its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_workers(executor) -> None:
    """End a ProcessPoolExecutor's workers now, mid-task: its own shutdown waits for
    every running task to finish (a shard can take a minute), and so does the
    interpreter's exit."""
    terminate = getattr(executor, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((executor._processes or {}).values())  # shutdown forgets them
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
