"""``facetwin sweep``'s plan: targets named and checked, a folder holding another sweep
refused, each before any twin is built. (Sweeps on Ray workers: tests/agents/test_engine.py.)"""

from __future__ import annotations

import pytest

from facetwin import profile as profiles
from facetwin.agents.optimize.sweep import SweepPlan, _write_status, sweep
from facetwin.files import OutputError


@pytest.mark.parametrize("targets, complaint", [
    (["grin"], "'grin' is neither an expression of emo11"),
    (["emotion:glee"], "emotion:glee: unknown emotion 'glee'"),
    (["happiness", "emotion:happy"], "two targets would be kept as 'happiness'"),
])
def test_a_target_that_is_not_one_is_named(tmp_path, targets, complaint):
    with pytest.raises(OutputError, match=complaint):
        sweep("emo11", tmp_path / "out", targets, progress=False)
    assert not (tmp_path / "out").exists()


def test_a_folder_of_another_sweep_is_refused(tmp_path):
    p = profiles.load("emo11")
    _write_status(tmp_path, SweepPlan(p.name, p.sha256, ("happiness",), 2, "bo", 60, 2, 256),
                  {})
    with pytest.raises(OutputError, match="holds a sweep with budget = 60, not 30"):
        sweep("emo11", tmp_path, ["happiness"], budget=30, progress=False)
