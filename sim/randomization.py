"""Domain-randomisation knobs: all off by default.

Each knob is a range; a reset draws a value uniformly from it with the env's seeded
generator, so a perturbed twin is as reproducible as the nominal one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Randomization:
    skin_stiffness: tuple[float, float] | None = None  # scale on skin modulus and tether
    servo_gain: tuple[float, float] | None = None  # scale on each servo's stiffness
    backlash: float | None = None  # largest dead band, as a fraction of a control's range
    camera_offset_m: float | None = None  # largest camera displacement along each axis
    camera_tilt_deg: float | None = None  # largest camera yaw, pitch and roll
    light: float | None = None  # relative jitter of key and ambient light, and direction
    texture_tint: float | None = None  # relative jitter of the skin's colour channels

    @classmethod
    def moderate(cls) -> "Randomization":
        """A perturbation of the size a lab's second copy of a robot differs by."""
        return cls(skin_stiffness=(0.7, 1.3), servo_gain=(0.8, 1.2), backlash=0.02,
                   camera_offset_m=0.01, camera_tilt_deg=3.0, light=0.2, texture_tint=0.08)

    def camera(self, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray | None]:
        offset = rng.uniform(-1, 1, 3) * self.camera_offset_m if self.camera_offset_m else None
        tilt = rng.uniform(-1, 1, 3) * self.camera_tilt_deg if self.camera_tilt_deg else None
        return offset, tilt
