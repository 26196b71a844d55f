"""Couplings between a profile's controls: ties, exclusive groups and forbidden
combinations. The safety filter projects commands onto what they allow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tie:
    """Controls that move together: each takes their mean, in normalised units."""

    controls: tuple[str, ...]


@dataclass(frozen=True)
class Exclusive:
    """Groups of controls of which at most one may be active (away from neutral)."""

    groups: tuple[tuple[str, ...], ...]
    active_above: float = 0.02  # normalised distance from neutral that counts as active


@dataclass(frozen=True)
class Condition:
    control: str
    above: float | None = None  # the condition holds when the value is above this
    below: float | None = None  # ... or below this


@dataclass(frozen=True)
class Forbidden:
    """A combination that must not happen: every condition holding at once.

    Each threshold lies on one side of the control's neutral and the condition runs to
    that end of its range, so moving toward neutral always leaves the combination.
    """

    when: tuple[Condition, ...]


Coupling = Tie | Exclusive | Forbidden
