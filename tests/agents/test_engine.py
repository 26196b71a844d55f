"""The parallel engine on Ray: the same rows and the same runs whatever the workers, the
driver writing every file, a killed worker's unit made again, a killed sweep resumed;
and a two-node cluster (two ``ray start`` on this machine, torn down after)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from facetwin import lifeline, profile as profiles
from helpers import facetwin_command, ray_cluster, wait_until

SAMPLES = 48  # six shards of one sequence of 8


def rows(folder: Path) -> list[dict]:
    table = pq.read_table(folder / "shards")
    return table.sort_by([("sequence", "ascending"), ("step", "ascending")]).to_pylist()


@pytest.fixture(scope="module")
def one_process_rows(tmp_path_factory) -> list[dict]:
    """The collection made here, in this process, with no Ray."""
    from facetwin.agents.inverse.collect import collect

    out = tmp_path_factory.mktemp("one") / "data"
    collect("emo11", "babble", SAMPLES, out, workers=1, images=False, shard_sequences=1,
            progress=False)
    return rows(out)


def test_a_job_sends_its_workers_no_path_to_write_to(tmp_path):
    from facetwin.agents.inverse.collect import _shards
    from facetwin.agents.inverse.dataset import Plan
    from facetwin.agents.optimize.sweep import SweepPlan, _SweepJob

    p = profiles.load("emo11")
    out = tmp_path / "somewhere-only-the-driver-writes"
    plan = Plan(p.name, p.sha256, "babble", 0, 8, 256, False, False, 1)
    collect_job = _shards(out, plan, p)
    plan = SweepPlan(p.name, p.sha256, ("happiness",), 1, "bo", 4, 2, 256)
    sweep_job = _SweepJob(plan, p, out, {}).job
    for job, unit in ((collect_job, 0), (sweep_job, ("happiness", 0))):
        sent = pickle.dumps((job.worker, job.args, job.payload(unit)))
        assert str(out).encode() not in sent and b"somewhere-only" not in sent


def _hosts_running(driver: int) -> list[int]:
    """``driver``'s Ray worker processes running a unit now (Ray titles them
    ``ray::_Host.run``); not another test's, where tests run side by side."""
    found = []
    for pid in lifeline.below(driver, lifeline.processes()):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::_Host.run"):
                found.append(pid)
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_ray_workers_one_killed_mid_shard_make_the_one_process_rows(one_process_rows,
                                                                        tmp_path):
    out = tmp_path / "data"
    driver = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from facetwin.agents.inverse.collect import collect; "
         f"collect('emo11', 'babble', {SAMPLES}, sys.argv[1], workers=2, images=False, "
         "shard_sequences=1)", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _hosts_running(driver.pid), timeout_s=300,
                   what="a worker running a shard")
        os.kill(_hosts_running(driver.pid)[0], signal.SIGKILL)
        err = driver.communicate(timeout=600)[1]
    finally:
        driver.kill()
    assert driver.returncode == 0, err[-3000:]
    assert "failed (its worker died" in err and "starting it again" in err
    made = rows(out)
    assert [(r["sequence"], r["step"]) for r in made] == \
        [(k, s) for k in range(SAMPLES // 8) for s in range(8)]  # each sample once
    assert made == one_process_rows


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_two_node_cluster_collects_and_tunes_with_the_driver_writing_every_file(
        one_process_rows, tmp_path, monkeypatch):
    import ray

    from facetwin.agents.inverse.collect import collect
    from facetwin.agents.optimize.sweep import sweep
    from facetwin.library import load_library

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # as on every machine of a cluster
    with ray_cluster(nodes=2) as address:
        collect("emo11", "babble", 16, tmp_path / "data", workers=2, images=False,
                shard_sequences=1, progress=False, address=address)
        swept = sweep("emo11", tmp_path / "library", ["happiness", "sadness"], seeds=1,
                      budget=4, workers=2, address=address, progress=False)
        assert not ray.is_initialized()  # the driver let go of the cluster
    assert rows(tmp_path / "data") == one_process_rows[:16]
    assert not swept.failed
    library = load_library(swept.library, profiles.load("emo11"))
    assert sorted(library) == ["happiness", "sadness"]
    for target in ("happiness", "sadness"):
        log = tmp_path / "library" / "runs" / target / "bo-s0.jsonl"
        assert len(log.read_text().splitlines()) == 1 + 4


def _evaluations(folder: Path) -> dict[str, list]:
    """Each run log's evaluations, as (index, controls)."""
    return {str(log.relative_to(folder)): [(r["index"], r["controls"]) for r in
                                           map(json.loads, log.read_text().splitlines()[1:])]
            for log in sorted(folder.glob("runs/*/*.jsonl"))}


def _lines(folder: Path) -> int:
    """Whole lines in the run logs (a log may end in half a line while it is written)."""
    return sum(log.read_bytes().count(b"\n") for log in folder.glob("runs/*/*.jsonl"))


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_sweep_killed_with_its_driver_resumes_and_ends_as_one_never_killed(tmp_path):
    from facetwin.agents.optimize.sweep import sweep

    args = ["sweep", "--profile", "emo11", "--targets", "happiness,sadness", "--seeds", "1",
            "--budget", "8"]
    out = tmp_path / "killed"
    first = subprocess.Popen(facetwin_command(*args, "--workers", "2", "--out", str(out)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _lines(out) >= 2 + 4, timeout_s=300, what="four evaluations logged")
    finally:
        first.kill()
        first.wait()
    assert _lines(out) < 2 + 16  # killed before the end
    again = subprocess.run(facetwin_command(*args, "--workers", "2", "--out", str(out)),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    status = json.loads((out / "sweep.json").read_text())["units"]
    assert status == {"happiness seed 0": "done", "sadness seed 0": "done"}

    sweep("emo11", tmp_path / "whole", ["happiness", "sadness"], seeds=1, budget=8,
          workers=1, progress=False)
    assert _evaluations(out) == _evaluations(tmp_path / "whole")
    assert all([i for i, _ in run] == list(range(8)) for run in _evaluations(out).values())


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_worker_that_cannot_start_stops_the_run_with_its_reason(tmp_path):
    """A machine whose profile differs from the driver's: every worker would fail alike."""
    from tqdm import tqdm

    from facetwin.agents.engine import Engine, EngineError, Job
    from facetwin.agents.inverse.collect import _Worker
    from facetwin.agents.inverse.dataset import Plan

    p = profiles.load("emo11")
    plan = Plan(p.name, p.sha256, "babble", 0, 8, 256, False, False, 1)
    job = Job(_Worker, ((p.name, "0" * 64), plan), take=lambda unit, rows: 0,
              finish=lambda unit: None)
    with tqdm(disable=True) as bar, pytest.raises(
            EngineError, match="a worker could not start: .*differs from the driver's"):
        Engine(2).run(job, [0, 1, 2], bar)
