"""Robots of a :class:`~facetwin.sim.randomization.Randomization` drawn from a seeded
generator (:meth:`Perturbation.draw`), and any :class:`~facetwin.sim.robot.Robot`, drawn
or identified, applied to one built twin (:meth:`Perturbation.apply`): its MuJoCo
model's stiffnesses, gains and body positions, and its servos' backlash and calibration.

The draws are made in a fixed order, and knobs added later draw after the ones before
them, so that a seed keeps giving the same robot for the knobs it had.
"""

from __future__ import annotations

from dataclasses import replace

import mujoco
import numpy as np

from facetwin.sim.randomization import Randomization
from facetwin.sim.robot import Layout, Robot
from facetwin.sim.servos import Servos


class Perturbation:
    """Draws robots for a twin's model and applies them, always from its nominal values.

    Args:
        model: the twin's MuJoCo model (changed in place by :meth:`apply`).
        layout: what the robot's parameters are indexed by.
        slides: per actuated joint, whether it is a linkage slider.
        linkage_bodies, skin_bodies, skin_joints: ids of the bodies and joints moved.
        skin_rest: the free skin vertices' rest positions (metres).
    """

    def __init__(self, model: mujoco.MjModel, layout: Layout, slides: np.ndarray,
                 linkage_bodies: np.ndarray, skin_bodies: np.ndarray, skin_joints: np.ndarray,
                 skin_rest: np.ndarray):
        self.model, self.layout = model, layout
        self._slides, self._linkage_bodies = slides, linkage_bodies
        self._skin_bodies, self._skin_joints, self._skin_rest = skin_bodies, skin_joints, \
            skin_rest
        self._flex_stiffness = model.flex_stiffness.copy()
        self._jnt_stiffness = model.jnt_stiffness.copy()
        self._gain = model.actuator_gainprm[:, 0].copy()
        self._bias = model.actuator_biasprm[:, 1:3].copy()
        self._body_pos = model.body_pos.copy()

    def draw(self, rng: np.random.Generator, r: Randomization, servos: Servos) -> Robot:
        """One robot of ``r`` (camera pose not included: the backend draws it first)."""
        m, p = self.model, servos.profile
        robot = Robot.nominal(self.layout)
        width = p.high - p.low
        n = len(p.controls)
        k = rng.uniform(*r.skin_stiffness) if r.skin_stiffness else 1.0
        g = rng.uniform(*r.servo_gain, size=m.nu) if r.servo_gain else np.ones(m.nu)
        backlash = rng.uniform(0, r.backlash, n) * width if r.backlash else np.zeros(n)
        offset, travel = robot.servo_offset, robot.servo_travel
        if r.servo_offset or r.servo_travel:
            offset = rng.uniform(-1, 1, n) * r.servo_offset * width if r.servo_offset \
                else np.zeros(n)
            travel = rng.uniform(*r.servo_travel, n) if r.servo_travel else np.ones(n)
        linkage = np.ones(len(self._slides))
        if r.linkage_travel:
            linkage[self._slides] = rng.uniform(*r.linkage_travel, self._slides.sum())
        anchors = robot.linkage_anchor_m
        if r.linkage_anchor_mm:
            anchors = rng.uniform(-1, 1, anchors.shape) * r.linkage_anchor_mm * 1e-3
        rest = self._smooth_field(rng, r.skin_rest_mm * 1e-3) if r.skin_rest_mm \
            else robot.skin_rest_m
        thickness = rng.uniform(*r.skin_thickness) if r.skin_thickness else 1.0
        tether = rng.uniform(*r.tether_stiffness) if r.tether_stiffness else 1.0
        return replace(robot, servo_offset=offset, servo_travel=travel, servo_gain=g,
                       backlash=backlash, linkage_travel=linkage, linkage_anchor_m=anchors,
                       skin_rest_m=rest, skin_stiffness=k, skin_thickness=thickness,
                       tether_stiffness=tether)

    def apply(self, robot: Robot, servos: Servos) -> np.ndarray:
        """Make the model ``robot``; returns each actuated joint's travel scale."""
        m = self.model
        k = robot.skin_stiffness
        m.flex_stiffness[:] = self._flex_stiffness * k * robot.skin_thickness
        m.jnt_stiffness[:] = self._jnt_stiffness * k
        m.jnt_stiffness[self._skin_joints] *= robot.tether_stiffness
        g = robot.servo_gain
        m.actuator_gainprm[:, 0] = self._gain * g
        m.actuator_biasprm[:, 1] = self._bias[:, 0] * g
        m.actuator_biasprm[:, 2] = self._bias[:, 1] * np.sqrt(g)
        servos.backlash = robot.backlash.copy()
        servos.calibration = (robot.servo_offset, robot.servo_travel) \
            if robot.calibrated() else None
        m.body_pos[:] = self._body_pos
        m.body_pos[self._linkage_bodies] += robot.linkage_anchor_m
        m.body_pos[self._skin_bodies] += robot.skin_rest_m
        return robot.linkage_travel.copy()

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
