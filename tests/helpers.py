"""What many tests share, imported as ``from helpers import ...``; the fixtures built
on them are in ``conftest.py``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facetwin.sim.camera import PinholeCamera
from facetwin.sim.twin import Twin

PROFILES = ["x2c30", "emo11", "rena25"]
DATASET_SAMPLES = 256  # two shards of 16 sequences of 8 samples


def facetwin_command(*args: str) -> list[str]:
    """The command line ``facetwin ARGS`` as this interpreter runs it."""
    return [sys.executable, "-m", "facetwin.cli", *args]


def settled_pixels(twin: Twin, controls, size: int = 256) -> np.ndarray:
    """Landmarks in pixels after the face settles at ``controls`` from rest."""
    twin.reset(controls=np.asarray(controls, dtype=float))
    camera = PinholeCamera.from_profile(twin.profile.camera, size)
    return camera.project(twin.landmarks_3d())


def wait_until(condition, timeout_s: float = 20.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds. The deadline only bounds a hang: tests assert
    what happened, never how fast."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.005)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def virtual_bus(profile: str, link: Path, plant: bool = False, args: tuple[str, ...] = ()):
    """``facetwin virtual-bus`` in a process of its own, ready (its link made, its twin's
    camera publishing with ``plant``; ``args`` more options); yields the process and its
    ready line, and stops it (SIGTERM) on the way out if it still runs."""
    command = ["virtual-bus", "--profile", profile, "--link", str(link), *args]
    proc = subprocess.Popen(facetwin_command(*command,
                                             *(["--plant", "twin"] if plant else [])),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = proc.stdout.readline()
        assert ready.startswith(f"virtual bus ready: {link}"), ready
        yield proc, ready
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        proc.stdout.close()
