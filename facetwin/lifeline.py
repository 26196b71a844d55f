"""Worker processes that cannot outlive the command that started them.

A worker waiting on its pool's queue never looks at its parent, so a command killed by
SIGKILL (or SIGTERM, which ends Python without cleanup) left its twins running, half a
gigabyte each. Linux kills a process whose parent died if asked to beforehand
(``PR_SET_PDEATHSIG``); elsewhere a thread polls for the parent.

Processes that are not this one's children cannot be asked: Ray's agents and workers
are its raylet's, and notice the raylet's death a minute or two late (~190 MB). A
:class:`Reaper` is a watchdog process that outlives this one by a moment and kills them.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REAP_FOR_S = 5.0  # the longest a reaper looks for marked processes after its command

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


class Reaper:
    """A watchdog that, once this process is gone (however it ended, SIGKILL included)
    or :meth:`close` is called, kills every process this one started while the reaper
    was open, directly or below another, then ends.

    It knows them two ways: while this process lives, it looks at the tree below it
    every :data:`LOOK_S` (Ray's agents retitle themselves, which overwrites the
    environment ``/proc`` shows); and each carries the reaper's mark in the environment
    it was started with (an environment is passed down through any parent, Ray's raylet
    included), which catches those started since the last look. The watchdog runs in a
    session of its own, so that a signal to this command's process group (Ctrl-C, a
    ``kill`` of the group) does not end it before it has reaped; it learns of this
    process's end from the pipe it reads, whose writing end dies with this process."""

    VARIABLE = "FACETWIN_REAPER"

    def __init__(self):
        token = f"{os.getpid()}-{time.time_ns()}"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "facetwin.lifeline", str(os.getpid()),
             f"{self.VARIABLE}={token}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        os.environ[self.VARIABLE] = token

    def close(self) -> None:
        """Reap now, and wait until the watchdog has ended (it ends on its own, in a
        session of its own, should that take longer than it can)."""
        os.environ.pop(self.VARIABLE, None)
        if not self._process.stdin.closed:
            self._process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=REAP_FOR_S + LOOK_S + 5.0)


LOOK_S = 0.5  # how often a reaper's watchdog looks at its command's tree


def processes() -> dict[int, tuple[int, int]]:
    """Every living process: pid -> (parent pid, start time in clock ticks)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            found[int(stat.parent.name)] = (int(fields[1]), int(fields[19]))
    return found


def below(root: int, processes: dict[int, tuple[int, int]]) -> dict[int, int]:
    """The processes below ``root``: pid -> start time."""
    found, frontier = {}, {root}
    while frontier:
        frontier = {k for k, (parent, _) in processes.items() if parent in frontier}
        found.update({k: processes[k][1] for k in frontier})
    return found


def marked(pid: int, marks: list[bytes]) -> bool:
    """Whether process ``pid`` was started with every ``NAME=VALUE`` of ``marks``."""
    try:
        environ = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:  # gone, or not ours to read
        return False
    return all(m in environ for m in marks)


def reap(known: dict[int, int], marks: list[bytes], clock=time.monotonic,
         sleep=time.sleep) -> int:
    """Kill the ``known`` processes (pid -> start time: a pid taken since by another
    process is left alone) and the marked ones, until none has been seen for two looks
    in a row (a dying parent may still be starting one) or :data:`REAP_FOR_S` has
    passed; returns how many were killed."""
    me, killed, quiet = os.getpid(), 0, 0
    until = clock() + REAP_FOR_S
    while quiet < 2 and clock() < until:
        alive = processes()
        found = [pid for pid, (_, started) in alive.items() if pid != me and (
            known.get(pid) == started or marked(pid, marks))]
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed += len(found)
        quiet = 0 if found else quiet + 1
        sleep(0.2)
    return killed


def _watch(command: int, marks: list[bytes]) -> None:
    """A reaper's watchdog: the tree below ``command`` looked at until the pipe from it
    ends (it closed it, or it is gone), then reaped."""
    import select

    known: dict[int, int] = {}
    stdin = sys.stdin.buffer
    while True:
        known.update(below(command, processes()))
        known.pop(os.getpid(), None)
        if select.select([stdin], [], [], LOOK_S)[0] and not stdin.read1(1 << 16):
            break
    reap(known, marks)


if __name__ == "__main__":  # python -m facetwin.lifeline COMMAND_PID NAME=VALUE ...
    _watch(int(sys.argv[1]), [m.encode() for m in sys.argv[2:]])
