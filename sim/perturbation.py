"""A :class:`~facetwin.sim.randomization.Randomization` applied to one built twin: its
MuJoCo model's stiffnesses, gains and body positions, and its servos' backlash and
calibration, drawn from a seeded generator.

The draws are made in a fixed order, and knobs added later draw after the ones before
them, so that a seed keeps giving the same robot for the knobs it had.
"""

from __future__ import annotations

import mujoco
import numpy as np

from facetwin.sim.randomization import Randomization
from facetwin.sim.servos import Servos


class Perturbation:
    """Applies randomisations to a twin's model, always from its nominal values.

    Args:
        model: the twin's MuJoCo model (changed in place by :meth:`apply`).
        slides: per actuated joint, whether it is a linkage slider.
        linkage_bodies, skin_bodies, skin_joints: ids of the bodies and joints moved.
        skin_rest: the free skin vertices' rest positions (metres).
    """

    def __init__(self, model: mujoco.MjModel, slides: np.ndarray, linkage_bodies: np.ndarray,
                 skin_bodies: np.ndarray, skin_joints: np.ndarray, skin_rest: np.ndarray):
        self.model = model
        self._slides, self._linkage_bodies = slides, linkage_bodies
        self._skin_bodies, self._skin_joints, self._skin_rest = skin_bodies, skin_joints, \
            skin_rest
        self._flex_stiffness = model.flex_stiffness.copy()
        self._jnt_stiffness = model.jnt_stiffness.copy()
        self._gain = model.actuator_gainprm[:, 0].copy()
        self._bias = model.actuator_biasprm[:, 1:3].copy()
        self._body_pos = model.body_pos.copy()

    def apply(self, rng: np.random.Generator, r: Randomization, servos: Servos) -> np.ndarray:
        """Draw one robot of ``r``; returns each actuated joint's travel scale."""
        m, p = self.model, servos.profile
        k = rng.uniform(*r.skin_stiffness) if r.skin_stiffness else 1.0
        m.flex_stiffness[:] = self._flex_stiffness * k
        m.jnt_stiffness[:] = self._jnt_stiffness * k
        g = rng.uniform(*r.servo_gain, size=m.nu) if r.servo_gain else np.ones(m.nu)
        m.actuator_gainprm[:, 0] = self._gain * g
        m.actuator_biasprm[:, 1] = self._bias[:, 0] * g
        m.actuator_biasprm[:, 2] = self._bias[:, 1] * np.sqrt(g)
        width = p.high - p.low
        n = len(p.controls)
        servos.backlash = rng.uniform(0, r.backlash, n) * width \
            if r.backlash else np.zeros(n)
        servos.calibration = None
        if r.servo_offset or r.servo_travel:
            offset = rng.uniform(-1, 1, n) * r.servo_offset * width if r.servo_offset \
                else np.zeros(n)
            travel = rng.uniform(*r.servo_travel, n) if r.servo_travel else np.ones(n)
            servos.calibration = (offset, travel)
        travel = np.ones(len(self._slides))
        if r.linkage_travel:
            travel[self._slides] = rng.uniform(*r.linkage_travel, self._slides.sum())
        m.body_pos[:] = self._body_pos
        if r.linkage_anchor_mm:
            m.body_pos[self._linkage_bodies] += rng.uniform(
                -1, 1, (len(self._linkage_bodies), 3)) * r.linkage_anchor_mm * 1e-3
        if r.skin_rest_mm:
            m.body_pos[self._skin_bodies] += self._smooth_field(rng, r.skin_rest_mm * 1e-3)
        if r.skin_thickness:
            m.flex_stiffness[:] *= rng.uniform(*r.skin_thickness)
        if r.tether_stiffness:
            m.jnt_stiffness[self._skin_joints] *= rng.uniform(*r.tether_stiffness)
        return travel

    def _smooth_field(self, rng: np.random.Generator, largest_m: float,
                      bumps: int = 8, width_m: float = 0.02) -> np.ndarray:
        """A smooth random displacement of each free skin vertex's rest position: Gaussian
        bumps of random direction about random skin points, scaled so the largest
        displacement is ``largest_m`` (a moulded skin's shape differs broadly, not
        vertex by vertex)."""
        rest = self._skin_rest
        centres = rest[rng.choice(len(rest), bumps, replace=False)]
        weights = np.exp(-((rest[:, None] - centres[None]) ** 2).sum(-1) / (2 * width_m ** 2))
        field = weights @ rng.normal(size=(bumps, 3))
        return field * largest_m / np.linalg.norm(field, axis=1).max()
