"""Settled steps on the twin, two ways: with the transient the robot goes through
(:func:`ramp_and_settle`: the filtered command period by period, then the face left to
come to rest), or without it (:func:`rest_at`: the face started where it comes to rest).

The second needs the profile's settle model (:mod:`facetwin.sim.equilibrium`), measured
by the first: random commands through the safety filter, one after another. It learns
where such a step comes to rest and how long it takes, so a step that skips the
transient returns the same face and reports the same time.

    model = settle_model(profile, face)   # cached in ~/.cache/facetwin/settle
"""

from __future__ import annotations

import numpy as np

from facetwin.envs.safety import SafetyFilter
from facetwin.profile import Profile
from facetwin.sim import equilibrium
from facetwin.sim.equilibrium import SettleModel
from facetwin.sim.face import FaceAsset
from facetwin.sim.twin import Twin
from facetwin.threads import single_threaded

FIT_COMMANDS = 150  # random commands settled for the fit
SEED = 0x5E771E


def settle_model(profile: Profile, face: FaceAsset) -> SettleModel:
    """``profile``'s settle model on ``face``: from the cache, or measured now on a
    nominal twin of its own (a few seconds) and cached."""
    path = equilibrium.cache_path(profile.sha256, face.sha256)
    model = SettleModel.load(path, profile.sha256, face.sha256)
    if model is None:
        model = measure(Twin(profile, face=face))
        model.save(path)
    return model


def ramp_and_settle(twin: Twin, safety: SafetyFilter, action, period_s: float):
    """A settled step with its transient: the filtered command sent period by period
    until it is reached, then the face left to settle; returns the last applied command,
    its report, and the periods the ramp took."""
    period_steps = max(1, round(period_s / twin.model.opt.timestep))
    periods = 0
    for applied, report in safety.ramp(action, period_s):
        twin.command(applied)
        if not report.reached:
            twin.step(period_steps)
            periods += 1
    twin.settle()
    return applied, report, periods


def rest_at(twin: Twin, safety: SafetyFilter, model: SettleModel, action, period_s: float):
    """A settled step by the quickest way: the filter's ramp worked out without the
    physics (its last command is where the face goes), then the face brought to rest
    there (:meth:`Twin.rest_at`). Returns the last applied command, its report, and how
    long the step with its transient takes (``model``'s estimate)."""
    periods = 0
    for applied, report in safety.ramp(action, period_s):
        periods += not report.reached
    twin.rest_at(applied, model)
    return applied, report, model.settle_s(periods * period_s)


@single_threaded()
def measure(twin: Twin, n: int = FIT_COMMANDS, seed: int = SEED) -> SettleModel:
    """Settled steps of the nominal ``twin`` to ``n`` random commands, with their
    transient (:func:`ramp_and_settle`), fitted."""
    p = twin.profile
    safety = SafetyFilter(p)
    period = 1.0 / p.control_rate_hz
    rng = np.random.default_rng(seed)
    twin.reset()
    safety.reset(p.neutral)
    commands, states, ramps, tails = [], [], [], []
    for _ in range(n):
        began = twin.time
        applied, _, periods = ramp_and_settle(twin, safety, rng.uniform(p.low, p.high),
                                              period)
        commands.append(applied)
        states.append(twin.data.qpos.copy())
        ramps.append(periods * period)
        tails.append(twin.time - began - periods * period)
    twin.reset()
    return equilibrium.fitted(p, twin.face.sha256, commands, states, ramps, tails)
