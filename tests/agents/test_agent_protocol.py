"""Agents that turn a target into controls answer through one protocol, so that one
stands in for another and a benchmark scores them alike."""

import numpy as np
import pytest

from facetwin.agents.evaluation import Evaluator
from facetwin.agents.optimize.agent import SearchAgent
from facetwin.agents.preference.annotators import SimulatedAnnotator, hidden_target
from facetwin.agents.preference.bo import N_SOBOL, PreferentialAgent
from facetwin.agents.protocol import ExpressionAgent, Solution
from facetwin.agents.runlog import read_runlog
from facetwin.envs.face_env import FaceTwinEnv


@pytest.fixture
def env():
    env = FaceTwinEnv("emo11", image_size=64)
    yield env
    env.close()


def check(solution: Solution, env, target: dict) -> None:
    """A solution's record is its controls' evaluation, as any agent's would be."""
    assert solution.controls.shape == env.action_space.shape
    np.testing.assert_allclose(solution.record["controls"], solution.controls, atol=1e-6)
    again = Evaluator(env, target)(solution.controls[None])[0]
    assert again["distance_mm"] == pytest.approx(solution.record["distance_mm"], abs=1e-6)


def test_a_search_is_an_agent_that_spends_its_budget(env, tmp_path):
    agent = SearchAgent(env, "random", budget=4, batch=2, log_dir=tmp_path)
    assert isinstance(agent, ExpressionAgent)
    target = {"target": "surprise"}
    solution = agent.solve(target)
    assert solution.evaluations == 4 and len(list(tmp_path.glob("*.jsonl"))) == 1
    check(solution, env, target)
    _, records = read_runlog(next(tmp_path.glob("*.jsonl")))
    assert solution.record == max(records, key=lambda r: r["score"])  # the best it found
    with pytest.raises(ValueError, match="unknown method"):
        SearchAgent(env, "annealing")


def test_preferential_bo_is_an_agent_that_counts_comparisons(env):
    person = SimulatedAnnotator(env.features_of(hidden_target(env.profile, "happiness")),
                                noise_mm=0.0)
    agent = PreferentialAgent(env, lambda a, b: person.answer(a["features"], b["features"]),
                              budget=N_SOBOL)
    assert isinstance(agent, ExpressionAgent)
    target = {"target": "happiness"}
    solution = agent.solve(target)
    assert solution.evaluations == N_SOBOL
    check(solution, env, target)
    with pytest.raises(ValueError, match="library's expressions"):
        agent.solve({"target": env.profile.neutral})
