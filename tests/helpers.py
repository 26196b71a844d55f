"""What many tests share, imported as ``from helpers import ...``; the fixtures built
on them are in ``conftest.py``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


def wait_until(condition, timeout_s: float = 120.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds. The deadline only bounds a hang (generous: a
    process started on a loaded machine can take tens of seconds to import): tests
    assert what happened, never how fast."""
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pids: list[int]) -> list[int]:
    """``pids`` and every process below them."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(pids), list(pids)
    while frontier:
        kids = [k for k, parent in parents.items() if parent in frontier and k not in found]
        found.update(kids)
        frontier = kids
    return sorted(found)


@contextmanager
def ray_cluster(nodes: int = 2):
    """A Ray cluster of ``nodes`` nodes of one CPU each, all on this machine, as a lab
    starts one (``ray start``); every process of it ended afterwards. Yields its address."""
    ray = str(Path(sys.executable).with_name("ray"))
    temp = tempfile.mkdtemp(prefix="ft-ray-", dir="/tmp")  # Ray's socket paths are short
    address = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    common = ["--num-cpus", "1", "--disable-usage-stats", "--temp-dir", temp]
    try:
        subprocess.run([ray, "start", "--head", "--port", address.split(":")[1],
                        "--include-dashboard=false", *common], env=env, check=True,
                       capture_output=True, timeout=120)
        for _ in range(nodes - 1):
            subprocess.run([ray, "start", "--address", address, *common], env=env,
                           check=True, capture_output=True, timeout=120)
        yield address
    finally:
        started = [int(c.parent.name) for c in Path("/proc").glob("[0-9]*/cmdline")
                   if _reads(c, temp.encode())]
        for pid in _tree(started):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def _reads(cmdline: Path, text: bytes) -> bool:
    try:
        return text in cmdline.read_bytes()
    except OSError:
        return False


def chromium():
    """Headless Debian Chromium under Selenium, for tests and screenshots of pages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1000,800"):
        options.add_argument(arg)
    driver = shutil.which("chromedriver")
    assert driver, "the browser test needs Debian's chromium-driver: ./setup.sh --dev"
    return webdriver.Chrome(options=options, service=Service(driver))
