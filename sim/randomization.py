"""Domain-randomisation knobs: all off by default.

Each knob is a range; a reset draws a value uniformly from it with the env's seeded
generator, so a perturbed twin is as reproducible as the nominal one. A knob left off
draws nothing, so adding knobs leaves the draws of the others unchanged.

Two kinds of knob. ``moderate()``'s change how the face moves (stiffness, gain) or looks
(camera, light, tint), and at a settled pose nearly all of that washes out: a position
servo reaches its goal whatever its gain. ``realistic()`` adds what differs between a
twin and its robot where it shows at a settled pose: each servo's calibration (zero
offset and travel), each linkage's travel and grip point, the skin's rest shape,
thickness and tether, and the head's pose in front of the camera.
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
    # Calibration: where each servo really is when it reports a control value.
    servo_offset: float | None = None  # largest zero offset, as a fraction of the range
    servo_travel: tuple[float, float] | None = None  # scale on travel about neutral
    # Per linkage (a symmetric control's left and right linkages apart).
    linkage_travel: tuple[float, float] | None = None  # scale on millimetres of travel
    linkage_anchor_mm: float | None = None  # largest grip-point displacement per axis
    skin_rest_mm: float | None = None  # largest displacement of a smooth rest-shape field
    skin_thickness: tuple[float, float] | None = None  # scale on the membrane's stiffness
    tether_stiffness: tuple[float, float] | None = None  # scale on skin-to-skull springs

    @classmethod
    def moderate(cls) -> "Randomization":
        """A perturbation of the size a lab's second copy of a robot differs by."""
        return cls(skin_stiffness=(0.7, 1.3), servo_gain=(0.8, 1.2), backlash=0.02,
                   camera_offset_m=0.01, camera_tilt_deg=3.0, light=0.2, texture_tint=0.08)

    @classmethod
    def realistic(cls) -> "Randomization":
        """A physical copy of the profile against its twin, as sized in the README
        ("Transfer"): hand calibration a few degrees off, linkages and grip points
        assembled within a couple of millimetres, a moulded skin of slightly other shape
        and thickness, the head placed again in front of the camera."""
        return cls(servo_gain=(0.8, 1.2), backlash=0.01,
                   camera_offset_m=0.005, camera_tilt_deg=2.0, light=0.2, texture_tint=0.08,
                   servo_offset=0.03, servo_travel=(0.95, 1.05),
                   linkage_travel=(0.85, 1.15), linkage_anchor_mm=1.5, skin_rest_mm=1.0,
                   skin_thickness=(0.8, 1.25), tether_stiffness=(0.7, 1.4))

    def only(self, *knobs: str) -> "Randomization":
        """This randomisation with every knob but ``knobs`` off (one knob at a time)."""
        unknown = set(knobs) - set(self.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown knobs {sorted(unknown)}; known: "
                             f"{', '.join(self.__dataclass_fields__)}")
        return Randomization(**{k: getattr(self, k) for k in knobs})

    @classmethod
    def parse(cls, spec: str) -> "Randomization":
        """``NAME`` (``realistic``, ``moderate``) or ``NAME:KNOB,KNOB`` (some of its knobs
        alone), as the command line takes it; a ValueError names what is unknown."""
        name, _, knobs = spec.partition(":")
        if name not in ("realistic", "moderate"):
            raise ValueError(f"unknown randomization {name!r}; known: realistic, moderate "
                             "(NAME:KNOB,KNOB for some of its knobs alone)")
        r = getattr(cls, name)()
        chosen = [k for k in knobs.split(",") if k]
        return r.only(*chosen) if chosen else r

    def camera(self, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray | None]:
        offset = rng.uniform(-1, 1, 3) * self.camera_offset_m if self.camera_offset_m else None
        tilt = rng.uniform(-1, 1, 3) * self.camera_tilt_deg if self.camera_tilt_deg else None
        return offset, tilt
