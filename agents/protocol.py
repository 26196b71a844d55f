"""One protocol for agents that turn a target into controls, so that one can stand in
for another in a script and a benchmark can score any of them the same way.

    agent = SearchAgent(env, "bo", budget=60)           # or InverseModelAgent(model, env),
    solution = agent.solve({"target": "happiness"})      # or PreferentialAgent(env, ...)
    solution.controls, solution.record["distance_mm"], solution.evaluations

A target is what ``env.reset(options=...)`` takes (``{"target": name}``, a control
vector, a picture). A solution's ``record`` is the evaluation record of its controls
(:class:`~facetwin.agents.evaluation.Evaluator`): what the safety filter applied, the
expression distance, the strain, the agent's own score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Solution:
    """An agent's answer to one target."""

    controls: np.ndarray  # the controls to put on the face (control units)
    record: dict  # their evaluation record: applied, distance_mm, strain, score
    evaluations: int  # faces the agent put on the face (or asked people about) to find them


@runtime_checkable
class ExpressionAgent(Protocol):
    def solve(self, target: dict) -> Solution:
        """Controls that make the face show ``target`` (``env.reset`` options)."""
