"""The twin as the virtual servo bus's plant: servo positions in, camera frames out.

The virtual bus (``facetwin.hardware``) knows nothing of physics; this adapter turns the
servos' present positions into control values through the calibration, drives the
twin in real time, and publishes its camera's renders to an image file that the serial
backend reads as its camera.
"""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v3 as iio

from facetwin.hardware.calibration import Calibration
from facetwin.profile import Profile
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.render import FaceRenderer
from facetwin.sim.twin import Twin

MAX_STEP_S = 0.1  # a stalled process does not make the twin leap


class TwinPlant:
    def __init__(self, profile: Profile, frame_path: str | Path,
                 calibration: Calibration | None = None, size: int | None = None,
                 frame_period_s: float = 0.04):
        self.profile = profile
        self.calibration = calibration or Calibration.load(profile)
        self.twin = Twin(profile)
        self.camera = PinholeCamera.from_profile(profile.camera, size or profile.camera.size)
        self.renderer = FaceRenderer(self.twin, self.camera)
        self.frame_path = Path(frame_path)
        self.frame_period_s = frame_period_s
        self._since_frame = frame_period_s
        self._owed_s = 0.0
        # Rendering happens on the first update, in the thread that drives the plant:
        # the GL context belongs to the thread that creates it.

    def update(self, present: dict[int, int], dt: float) -> None:
        self.twin.command(self.calibration.to_controls(present))
        self._owed_s += min(dt, MAX_STEP_S)
        steps = int(self._owed_s / self.twin.model.opt.timestep)
        self.twin.step(steps)
        self._owed_s -= steps * self.twin.model.opt.timestep
        self._since_frame += dt
        if self._since_frame >= self.frame_period_s:
            self.publish()

    def publish(self) -> None:
        """Write the current render, replacing the previous frame atomically."""
        tmp = self.frame_path.with_name(self.frame_path.name + ".tmp.png")
        iio.imwrite(tmp, self.renderer.render())
        os.replace(tmp, self.frame_path)
        self._since_frame = 0.0

    def close(self) -> None:
        self.renderer.close()
