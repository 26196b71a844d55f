"""How a face babbles: the commands a dataset is collected with, one sequence at a time.

Each strategy turns a seeded generator into the requested commands of one sequence. It
is a Python generator that is told, after each command, what the safety filter let
through (``applied``), so a strategy that walks from its last command walks from where
the face really is:

    commands = strategy.sequence(rng, length)
    requested = next(commands)
    while ...:
        applied = env.step(requested)...
        requested = commands.send(applied)

Strategies work in normalised units (0 at neutral, -1 and +1 at the range ends), so a
control's asymmetric range does not bias them.

- ``random``: every control uniform over its range (the safety filter then keeps it in
  the safe envelope);
- ``babble`` (Emo): Gaussian steps around the expression library and around the last
  command;
- ``expert`` (Rena, Algorithm 1): one facial region or one coupling group at a time,
  then combinations of two and three;
- ``symmetric``: mirror partners moved together, then apart.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from facetwin.profile import Profile, Tie

Commands = Generator[np.ndarray, np.ndarray, None]


class Strategy:
    name: str

    def __init__(self, profile: Profile):
        self.profile = profile
        self.n = len(profile.controls)

    def command(self, u: np.ndarray) -> np.ndarray:
        """Normalised units to a control vector (clipped to the ranges)."""
        return self.profile.denormalise(np.clip(u, -1.0, 1.0)).astype(np.float64)

    def sequence(self, rng: np.random.Generator, length: int) -> Commands:
        raise NotImplementedError


class Random(Strategy):
    name = "random"

    def sequence(self, rng, length):
        for _ in range(length):
            yield self.command(rng.uniform(-1, 1, self.n))


class Babble(Strategy):
    """Emo's motor babbling: most steps wander from the last command, some jump near an
    expression of the library, so the data covers both the space and its faces."""

    name = "babble"
    step_u = 0.25  # the wander's standard deviation, normalised units
    near_expression_u = 0.15
    jump = 0.25  # share of steps that jump near an expression

    def __init__(self, profile):
        super().__init__(profile)
        self.library = [profile.normalise(v) for v in profile.expressions.values()]

    def sequence(self, rng, length):
        u = self.library[int(rng.integers(len(self.library)))]
        for _ in range(length):
            if rng.random() < self.jump:
                base = self.library[int(rng.integers(len(self.library)))]
                u = base + rng.normal(0, self.near_expression_u, self.n)
            else:
                u = u + rng.normal(0, self.step_u, self.n)
            applied = yield self.command(u)
            u = self.profile.normalise(applied)


class Expert(Strategy):
    """Rena's expert strategy: a sequence starts with one unit of the face moving alone
    (a facial region, or the controls of one coupling group), then adds a second and a
    third unit, the rest held at neutral. The couplings themselves (ties, exclusive
    groups) are the safety filter's to keep."""

    name = "expert"

    def __init__(self, profile):
        super().__init__(profile)
        units = {c.group: [] for c in profile.controls}
        for i, c in enumerate(profile.controls):
            units[c.group].append(i)
        self.units = [np.array(v) for v in units.values()]
        self.units += [np.array([profile.index(n) for n in c.controls])
                       for c in profile.couplings if isinstance(c, Tie)]

    def sequence(self, rng, length):
        order = rng.permutation(len(self.units))
        for step in range(length):
            active = 1 + min(2, 3 * step // max(length, 1))  # one unit, then two, three
            u = np.zeros(self.n)
            for k in order[:active]:
                ids = self.units[k]
                u[ids] = rng.uniform(-1, 1, len(ids))
            yield self.command(u)


class Symmetric(Strategy):
    """Both halves of the face: mirror partners take the same value for the first half
    of a sequence and independent values for the second."""

    name = "symmetric"

    def __init__(self, profile):
        super().__init__(profile)
        self.partner = np.array([profile.index(c.mirror) if c.mirror else i
                                 for i, c in enumerate(profile.controls)])

    def sequence(self, rng, length):
        for step in range(length):
            u = rng.uniform(-1, 1, self.n)
            if step < (length + 1) // 2:
                left = np.arange(self.n) < self.partner
                u[self.partner[left]] = u[left]
            yield self.command(u)


STRATEGIES = {s.name: s for s in (Random, Babble, Expert, Symmetric)}


def make_strategy(name: str, profile: Profile) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](profile)
