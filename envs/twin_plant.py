"""The twin as the virtual servo bus's plant: servo positions in, stamped camera frames out.

The virtual bus (``facetwin.hardware``) knows nothing of physics. :class:`PlantProcess`
runs the twin in a process of its own, so that physics and rendering never hold up the
bus's replies: the bus hands it the servos' present positions and the time it read them;
the twin integrates up to that time, skipping none of it, and every frame period of
twin time it renders its camera and replaces the frame file with a PNG stamped with the
time the picture shows. On a loaded machine it can fall behind real time: it then
catches up on physics first and renders only the newest frame, as a camera drops frames.
The serial backend reads that file as its camera and waits for frames
stamped after the face arrived, so a plant that lags is waited for, never read stale.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

from facetwin import profile as profiles
from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write
from facetwin.hardware.calibration import Calibration
from facetwin.hardware.camera import stamped_png
from facetwin.lifeline import spawning
from facetwin.sim.randomization import Randomization
from facetwin.threads import single_threaded

FRAME_PERIOD_S = 0.04  # a 25 fps camera
READY_WAIT_S = 120.0  # a fresh process imports MuJoCo, pyrender and the face
MAX_CATCH_UP_S = 0.25  # of physics between looks at the servos, when behind


class PlantError(FaceTwinError, RuntimeError):
    """The twin plant's process did not start."""


def robot_of_file(profile: profiles.Profile, robot_file: str | Path):
    """The robot of a robot file, checked before any twin is built."""
    from facetwin.sim.robot import load_robot
    from facetwin.sim.twin import layout_of

    return load_robot(robot_file, profile, layout_of(profile))


def _hidden(twin, randomization: str | None, seed: int, robot):
    """The robot the plant's twin stands for (``robot``, or a draw), and its lighting."""
    import numpy as np

    from facetwin.envs.twin_backend import draw_robot
    from facetwin.sim.render import Look

    if robot is not None or randomization is None:
        return robot, Look()
    return draw_robot(twin, Randomization.parse(randomization), np.random.default_rng(seed))


class TwinPlant:
    """The twin, its camera and its frame file. Time runs on ``time.monotonic()``'s clock,
    one physics step at a time, from the moment given to :meth:`start`.

    A hidden robot stands behind the bus when ``randomization`` (``Randomization.parse``'s
    spec, drawn with ``seed`` as ``FaceTwinEnv(randomization=...).reset(seed=seed)``
    draws it) or ``robot_file`` is given: the bus's side sees only its servos and camera.
    """

    def __init__(self, profile: profiles.Profile, frame_path: str | Path,
                 size: int | None = None, frame_period_s: float = FRAME_PERIOD_S,
                 randomization: str | None = None, seed: int = 0,
                 robot_file: str | None = None):
        from facetwin.sim.camera import PinholeCamera
        from facetwin.sim.render import FaceRenderer
        from facetwin.sim.twin import Twin

        self.calibration = Calibration.load(profile)
        robot = None if robot_file is None else robot_of_file(profile, robot_file)
        self.twin = Twin(profile)
        robot, look = _hidden(self.twin, randomization, seed, robot)
        self.twin.reset(robot=robot)
        camera = PinholeCamera.from_profile(
            profile.camera, size or profile.camera.size,
            None if robot is None else robot.camera_offset_m,
            None if robot is None else robot.camera_tilt_deg)
        self.renderer = FaceRenderer(self.twin, camera, look)
        self.frame_path, self.frame_period_s = Path(frame_path), frame_period_s
        self._dt = self.twin.model.opt.timestep
        self._frame_steps = max(1, round(frame_period_s / self._dt))
        self._start = 0.0
        self._steps = self._next_frame = 0  # counted in physics steps: no rounding drift
        self.frames = 0

    @property
    def clock(self) -> float:
        """The moment the twin's physics has reached."""
        return self._start + self._steps * self._dt

    def start(self, at: float) -> None:
        """The twin's physics stands at ``at``: publish the first frame."""
        self._start = at
        self.publish()

    @property
    def next_frame(self) -> float:
        """When the next frame is due, in twin time."""
        return self._start + self._next_frame * self._dt

    def advance(self, present: dict[int, int], until: float) -> None:
        """Drive the servos to ``present`` (ticks) and integrate up to ``until``."""
        self.twin.command(self.calibration.to_controls(present))
        steps = int((until - self._start) / self._dt + 1e-6) - self._steps
        if steps > 0:
            self.twin.step(steps)
            self._steps += steps

    def publish(self) -> None:
        """Render the twin as it is now; replace the frame file, stamped with the time."""
        atomic_write(self.frame_path, stamped_png(self.renderer.render(), self.clock, self.frames))
        self.frames += 1
        self._next_frame = self._steps + self._frame_steps

    def close(self) -> None:
        self.renderer.close()


class PlantProcess:
    """A :class:`TwinPlant` in a child process, fed through shared memory; this is the
    ``Plant`` the virtual bus drives (``update`` only copies numbers)."""

    def __init__(self, profile: profiles.Profile, frame_path: str | Path, size: int | None = None,
                 randomization: str | None = None, seed: int = 0,
                 robot_file: str | Path | None = None):
        if robot_file is not None:
            robot_of_file(profile, robot_file)  # refused here, in one line, not in the child
        ctx = mp.get_context("spawn")
        self.ids = Calibration.load(profile).ids
        self._sample = ctx.Array("d", 1 + len(self.ids))  # read time, then ticks per servo
        self._stop, self._ready = ctx.Event(), ctx.Event()
        self.frame_path = Path(frame_path)
        self._process = ctx.Process(
            target=_run, name=f"twin-plant-{profile.name}", daemon=True,
            args=(str(profile.path), str(frame_path), size, self.ids, self._sample, self._stop,
                  self._ready, (randomization, seed, None if robot_file is None
                                else str(robot_file))))
        with spawning():
            self._process.start()

    def update(self, present: dict[int, int], now: float) -> None:
        with self._sample.get_lock():
            self._sample[0] = now
            self._sample[1:] = [float(present[i]) for i in self.ids]

    def wait_ready(self, timeout_s: float = READY_WAIT_S) -> None:
        """Block until the first frame is published; raise if the plant died first."""
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.1):
            if not self._process.is_alive():
                raise PlantError(f"the twin plant exited with code {self._process.exitcode} "
                                   "before its first frame (its error is printed above)")
            if time.monotonic() > deadline:
                raise PlantError(f"the twin plant published no frame within {timeout_s:g} s")

    def close(self) -> None:
        self._stop.set()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)


def _run(profile_path, frame_path, size, ids, sample, stop, ready, hidden) -> None:
    def latest() -> tuple[float, dict[int, int]]:
        with sample.get_lock():
            return sample[0], {sid: int(round(t)) for sid, t in zip(ids, sample[1:])}

    bus = mp.parent_process()  # a bus killed outright sets no stop event

    def running() -> bool:
        return not stop.is_set() and bus.is_alive()

    randomization, seed, robot_file = hidden
    plant = TwinPlant(profiles.load(profile_path), frame_path, size=size,
                      randomization=randomization, seed=seed, robot_file=robot_file)
    while latest()[0] == 0.0 and running():  # the bus has not read the servos yet
        time.sleep(0.005)
    plant.start(at=latest()[0])
    ready.set()
    try:
        with single_threaded():
            while running():
                now, present = latest()
                # A frame period at a time; further behind than that, catch up on physics
                # first (a few times faster than real time) and show only the newest frame.
                behind = now - plant.clock > plant.frame_period_s
                until = min(now, plant.clock + MAX_CATCH_UP_S) if behind else \
                    min(now, plant.next_frame)
                if until - plant.clock < plant.twin.model.opt.timestep:
                    time.sleep(0.002)
                    continue
                plant.advance(present, until)
                if plant.clock >= plant.next_frame:
                    plant.publish()
    finally:
        plant.close()
