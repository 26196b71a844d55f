"""Processes that cannot outlive the command that started them: the reaper's watchdog."""

import os
import signal
import subprocess
import sys

from helpers import wait_until

from facetwin.lifeline import processes, reap

SLEEPER = ["sleep", "600"]


def _alive(pid: int) -> bool:
    return pid in processes()


def test_the_reaper_kills_what_it_knew_and_what_carries_its_mark_and_spares_a_reused_pid():
    marked = subprocess.Popen(SLEEPER, env={**os.environ, "FACETWIN_REAPER": "t-1"})
    known = subprocess.Popen(SLEEPER, env={})  # retitled, say: its environment says nothing
    other = subprocess.Popen(SLEEPER, env={})  # its pid, once another process's
    try:
        started = {p.pid: processes()[p.pid][1] for p in (known, other)}
        killed = reap({known.pid: started[known.pid], other.pid: started[other.pid] - 1},
                      [b"FACETWIN_REAPER=t-1"])
        assert killed == 2
        assert marked.wait(10) == -signal.SIGKILL and known.wait(10) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for p in (marked, known, other):
            p.kill()
            p.wait()


COMMAND = """
import subprocess, sys, time
from facetwin.lifeline import Reaper
reaper = Reaper()
child = subprocess.Popen(["sleep", "600"], start_new_session=True)  # beyond its group
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_command_killed_with_sigkill_takes_what_it_started_with_it():
    command = subprocess.Popen([sys.executable, "-c", COMMAND], stdout=subprocess.PIPE,
                               text=True)
    started = int(command.stdout.readline())
    assert _alive(started)
    command.kill()
    command.wait()
    wait_until(lambda: not _alive(started), timeout_s=20, what="the sleeper's end")
