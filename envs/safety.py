"""The safety filter: one contract between every command and every backend.

Built from the profile (and the profile's strain envelope) alone, it turns a requested
command into the command that may be applied now, and says why they differ:

1. reject: wrong type, wrong shape or non-finite values raise :class:`CommandError`
   naming the control and the value; nothing is applied;
2. clamp to each control's range;
3. couplings: tied controls take their mean, of exclusive groups only the most active
   stays, a forbidden combination is scaled toward neutral until it no longer holds;
4. strain: a command the envelope predicts would over-strain the skin is scaled toward
   neutral until it does not;
5. rate: the step from the last applied command is shortened, along the straight line,
   so that no control moves faster than its maximum speed; an exclusive group yields
   before another one rises.

Steps 3-5 work in normalised units (0 at neutral, +-1 at the range ends). The strain
prediction is convex, so every point on the straight line between two safe commands
is safe too, and ramps stay inside the envelope.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from facetwin.envs.envelope import StrainEnvelope, load_envelope
from facetwin.profile import CommandError, Exclusive, Forbidden, Profile, Tie
from facetwin.threads import single_threaded

_EPS = 1e-9


class _Combination(NamedTuple):
    """A forbidden combination, ready to test: thresholds in normalised units."""

    ids: np.ndarray
    thresholds: np.ndarray
    above: np.ndarray  # per condition: True for "above", False for "below"
    names: list[str]


LISTS = ("clamped", "tied", "released", "forbidden", "yielding")  # a report's own lists


@dataclass
class SafetyReport:
    """What the filter applied and why it differs from what was requested."""

    applied: np.ndarray
    clamped: list[str] = field(default_factory=list)
    tied: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # exclusive groups sent to neutral
    forbidden: list[str] = field(default_factory=list)
    strain_predicted: float = 0.0  # of the requested command after couplings
    strain_scale: float = 1.0  # < 1: scaled toward neutral for the skin
    rate_fraction: float = 1.0  # < 1: only this part of the step was taken this period
    rate_limited_by: str | None = None
    yielding: list[str] = field(default_factory=list)  # held at neutral while a group yields

    @property
    def reached(self) -> bool:
        """The command was applied whole: no rate limit, no group waiting to yield."""
        return self.rate_fraction >= 1.0 and not self.yielding

    @property
    def modified(self) -> bool:
        return bool(self.clamped or self.tied or self.released or self.forbidden
                    or self.yielding or self.strain_scale < 1.0 or self.rate_fraction < 1.0)

    def reasons(self) -> list[str]:
        out = []
        if self.clamped:
            out.append(f"clamped to range: {', '.join(self.clamped)}")
        if self.tied:
            out.append(f"tied: {', '.join(self.tied)}")
        if self.released:
            out.append(f"exclusive, sent to neutral: {', '.join(self.released)}")
        if self.forbidden:
            out.append(f"forbidden combination, scaled back: {', '.join(self.forbidden)}")
        if self.strain_scale < 1.0:
            out.append(f"skin strain {self.strain_predicted:.2f} predicted: scaled to "
                       f"{self.strain_scale:.3f} of the way from neutral")
        if self.yielding:
            out.append(f"waiting for another group to yield: {', '.join(self.yielding)}")
        if self.rate_fraction < 1.0:
            out.append(f"rate limited by {self.rate_limited_by}: "
                       f"{self.rate_fraction:.3f} of the step this period")
        return out

    def as_dict(self) -> dict:
        return {"applied": [float(v) for v in self.applied], "clamped": list(self.clamped),
                "tied": list(self.tied), "released": list(self.released),
                "forbidden": list(self.forbidden),
                "strain_predicted": self.strain_predicted, "strain_scale": self.strain_scale,
                "rate_fraction": self.rate_fraction, "rate_limited_by": self.rate_limited_by,
                "yielding": list(self.yielding), "reasons": self.reasons()}


class SafetyFilter:
    """Stateful: it remembers the last applied command to limit the rate from it."""

    def __init__(self, profile: Profile, envelope: StrainEnvelope | None = None):
        self.profile = profile
        self.envelope = envelope or load_envelope(profile)
        p = profile
        self.names = p.names
        self._index = {n: i for i, n in enumerate(self.names)}
        # Speed in normalised units per second, below and above neutral.
        speed = np.array([c.max_speed for c in p.controls])
        self._speed_u = np.column_stack([speed / np.maximum(span, _EPS)
                                         for span in p.unit_spans])
        self._ties = [self._ids(c.controls) for c in p.couplings if isinstance(c, Tie)]
        self._exclusive = [(tuple(self._ids(g) for g in c.groups), c.active_above)
                           for c in p.couplings if isinstance(c, Exclusive)]
        self._forbidden = [
            _Combination(self._ids([w.control for w in c.when]),
                         np.array([self._threshold_u(w) for w in c.when]),
                         np.array([w.above is not None for w in c.when]),
                         [w.control for w in c.when])
            for c in p.couplings if isinstance(c, Forbidden)]
        # Scaling for strain moves only controls that strain the skin, and whatever is
        # tied to them, so ties survive it and the head does not nod for a lip.
        straining = self.envelope.weight > 0
        for ids in self._ties:
            if straining[ids].any():
                straining[ids] = True
        self._straining = straining
        self.last = p.neutral.astype(float)

    def _ids(self, names) -> np.ndarray:
        return np.array([self._index[n] for n in names])

    def reset(self, present) -> None:
        """Start limiting the rate from ``present`` (where the face is now)."""
        self.last = np.clip(self.validate(present), self.profile.low, self.profile.high)

    # -- 1. rejection ------------------------------------------------------------------
    def validate(self, command) -> np.ndarray:
        """``command`` as float64, or CommandError naming what is wrong with it."""
        return self.profile.checked(command)

    # -- 2-4. where the face may go ----------------------------------------------------
    @single_threaded()
    def target(self, command) -> tuple[np.ndarray, SafetyReport]:
        """The safe command nearest in spirit to ``command``, ignoring the rate."""
        p = self.profile
        v = self.validate(command)
        clipped = np.clip(v, p.low, p.high)
        report = SafetyReport(applied=clipped)
        report.clamped = [self.names[i] for i in np.flatnonzero(clipped != v)]
        u = p.normalise(clipped)
        u = self._couple(u, report)
        report.strain_predicted = self.envelope.predict(u)
        u = self._limit_strain(u, report)
        coupled = report.tied or report.released or report.forbidden or report.strain_scale < 1
        report.applied = self._command(u) if coupled else clipped  # exact when untouched
        return report.applied, report

    def _command(self, u: np.ndarray) -> np.ndarray:
        p = self.profile
        return np.clip(p.denormalise(u), p.low, p.high)

    def _couple(self, u: np.ndarray, report: SafetyReport) -> np.ndarray:
        u = u.copy()
        for ids in self._ties:
            mean = u[ids].mean()
            changed = np.abs(u[ids] - mean) > _EPS
            report.tied += [self.names[i] for i in ids[changed]]
            u[ids] = mean
        for groups, threshold in self._exclusive:
            active = [g for g in groups if np.abs(u[g]).max() > threshold]
            if len(active) > 1:
                keep = max(active, key=lambda g: np.abs(u[g]).max())
                for g in active:
                    if g is not keep:
                        u[g] = 0.0
                        report.released += [self.names[i] for i in g]
        for combo in self._forbidden:
            if self._holds(combo, u):
                u = self._leave(combo, u)
                report.forbidden += combo.names
        return u

    def _threshold_u(self, condition) -> float:
        """A condition's threshold in normalised units."""
        v = self.profile.neutral.astype(float)
        i = self._index[condition.control]
        v[i] = condition.above if condition.above is not None else condition.below
        return float(self.profile.normalise(v)[i])

    @staticmethod
    def _holds(combo: _Combination, u: np.ndarray) -> bool:
        x = u[combo.ids]
        return bool(np.all(np.where(combo.above, x > combo.thresholds, x < combo.thresholds)))

    @staticmethod
    def _leave(combo: _Combination, u: np.ndarray) -> np.ndarray:
        """Scale the combination's controls toward neutral just until one condition
        stops holding (thresholds lie on the far side of neutral, so this always does)."""
        ids, thresholds = combo.ids, combo.thresholds
        ratios = np.abs(thresholds) / np.abs(u[ids])
        binding = int(np.argmax(ratios))
        u = u.copy()
        u[ids] *= ratios[binding]
        u[ids[binding]] = thresholds[binding]  # exactly on it: the condition is strict
        return u

    def _limit_strain(self, u: np.ndarray, report: SafetyReport) -> np.ndarray:
        ceiling = self.envelope.ceiling
        if report.strain_predicted <= ceiling:
            return u
        s = self._straining
        fixed = np.where(s, 0.0, u)
        # The prediction is linear along the scaled part; bisect for the largest scale
        # within the ceiling (the unscaled part may carry a little strain of its own).
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if self.envelope.predict(fixed + mid * np.where(s, u, 0.0)) <= ceiling:
                lo = mid
            else:
                hi = mid
        report.strain_scale = lo
        return fixed + lo * np.where(s, u, 0.0)

    # -- 5. rate -----------------------------------------------------------------------
    @single_threaded()
    def __call__(self, command, dt: float | None = None) -> tuple[np.ndarray, SafetyReport]:
        """Filter ``command`` for the next ``dt`` seconds (default: one control period)
        and remember the result as the last applied command."""
        dt = self.profile.control_period_s if dt is None else float(dt)
        if not dt > 0:
            raise CommandError(f"dt must be positive, got {dt}")
        return self._toward(*self.target(command), dt)

    def _toward(self, goal: np.ndarray, report: SafetyReport, dt: float):
        """One period's step toward the safe ``goal`` (``report``: its target's)."""
        p = self.profile
        start, end = p.normalise(self.last), p.normalise(goal)
        end = self._yield_first(start, end, report)
        step = end - start
        # Speed differs on each side of neutral in normalised units; the side the
        # control is on (or heading to) bounds it.
        speed = np.where(np.maximum(start, end) > 0, self._speed_u[:, 1], self._speed_u[:, 0])
        reach = speed * dt
        need = np.abs(step)
        with np.errstate(divide="ignore", invalid="ignore"):
            # The tolerance keeps a step that the last one's rounding left a hair too
            # long from counting as rate limited.
            fractions = np.where(need > reach * (1 + 1e-9), reach / need, 1.0)
        fraction = float(fractions.min())
        if fraction < 1.0:
            report.rate_fraction = fraction
            report.rate_limited_by = self.names[int(fractions.argmin())]
            now = start + fraction * step
        else:
            now = end
        for combo in self._forbidden:  # a straight line can clip a forbidden corner
            if self._holds(combo, now):
                now = self._leave(combo, now)
                report.forbidden += combo.names
        applied = goal if report.reached else self._command(now)
        report.applied = applied
        self.last = applied.copy()
        return applied, report

    def _yield_first(self, start, end, report) -> np.ndarray:
        """While one exclusive group is still active, a different group stays at neutral."""
        end = end.copy()
        for groups, threshold in self._exclusive:
            was = [g for g in groups if np.abs(start[g]).max() > threshold]
            wants = [g for g in groups if np.abs(end[g]).max() > threshold]
            for g in wants:
                if any(w is not g for w in was):
                    end[g] = 0.0
                    report.yielding += [self.names[i] for i in g]
        return end

    def ramp_periods(self, dt: float | None = None) -> int:
        """The most periods a ramp takes: the slowest control crossing its whole range
        twice (once for an exclusive group to yield, once to rise)."""
        dt = self.profile.control_period_s if dt is None else float(dt)
        crossing_s = 2.0 / self._speed_u.min()
        return 2 * math.ceil(crossing_s / dt) + 2

    def ramp(self, goal, dt: float | None = None):
        """Commands that bring the face from the last applied command to ``goal`` at the
        profile's speeds, one per period (a settled step, start-up, shut-down, the
        watchdog). It ends within the periods that the slowest control needs to cross its
        range twice (once for an exclusive group to yield, once to rise)."""
        dt = self.profile.control_period_s if dt is None else float(dt)
        if not dt > 0:
            raise CommandError(f"dt must be positive, got {dt}")
        target, base = self.target(goal)  # the same every period: worked out once
        for _ in range(self.ramp_periods(dt)):
            applied, report = self._toward(target, replace(base, **{
                k: list(getattr(base, k)) for k in LISTS}), dt)
            yield applied, report
            if report.reached:
                return
        raise RuntimeError(f"the ramp to {goal} did not arrive in time: a bug in the filter")
