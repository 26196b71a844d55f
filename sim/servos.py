"""The twin's servos, in control units: what a command becomes before it reaches the
physics, and what the joints read back as present positions.

Each goal is ramped at its control's top speed, as a servo with a speed limit moves;
backlash lets the linkage lag the ramp by up to half its width; a calibration's zero
offset and travel error stand between what a servo is told and where it goes, and
between where it is and what it reports (none on the nominal twin).
"""

from __future__ import annotations

import numpy as np

from facetwin.profile import Profile


class Servos:
    """The servo model of one profile's face.

    Args:
        profile: the face; each control's ``max_speed`` limits its ramp.
    """

    def __init__(self, profile: Profile):
        self.profile = profile
        self.speed = np.array([c.max_speed for c in profile.controls])
        n = len(profile.controls)
        self.backlash = np.zeros(n)  # control units, full width
        self.calibration: tuple[np.ndarray, np.ndarray] | None = None  # offset, travel
        self.reset(profile.neutral.astype(float))

    def reset(self, at: np.ndarray) -> None:
        """Every servo at rest at ``at``, its goal there too."""
        self.setpoint, self.effective, self.goal = at.copy(), at.copy(), at.copy()

    def ramp(self, dt: float) -> None:
        """Move each setpoint toward its goal for ``dt`` seconds at top speed."""
        max_delta = self.speed * dt
        self.setpoint += np.clip(self.goal - self.setpoint, -max_delta, max_delta)

    def arrived(self) -> bool:
        """Every ramp has reached its goal (the joints may still be moving)."""
        return np.array_equal(self.setpoint, self.goal)

    def linkage_controls(self) -> np.ndarray:
        """Where the linkages are driven to, in control units: the setpoint through
        backlash, then through the calibration's error."""
        half = 0.5 * self.backlash
        self.effective = np.clip(self.effective, self.setpoint - half, self.setpoint + half)
        return self._physical(self.effective)

    def _physical(self, controls: np.ndarray) -> np.ndarray:
        if self.calibration is None:
            return controls
        offset, travel = self.calibration
        p = self.profile
        return p.neutral + travel * (controls - p.neutral) + offset

    def reported(self, physical: np.ndarray) -> np.ndarray:
        """What servos at ``physical`` (control units) report through their calibration."""
        if self.calibration is None:
            return physical
        offset, travel = self.calibration
        p = self.profile
        return np.clip(p.neutral + (physical - offset - p.neutral) / travel, p.low, p.high)
