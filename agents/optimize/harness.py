"""The optimisation harness: one search method, one target, one budget, one run log.

    env = FaceTwinEnv("emo11")                      # or a vector env, or the robot
    run = run_search(env, {"target": "happiness"}, make_search("bo", ...), budget=60,
                     log_path="runs/bo-s0.jsonl", header={...})
    run.best["applied"]                              # the controls to keep

Batches of controls are asked from the search, evaluated (in parallel on a vector
env) and appended to the run log one evaluation at a time. Started again with the
same log, a run replays what the log holds (asking the search again wherever its
state depends on more than the evaluations, and checking it asks for the same
controls), evaluates what is missing and carries on: it ends where an uninterrupted
run would have.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from facetwin.agents.evaluation import Evaluator
from facetwin.agents.runlog import RunLog, RunLogError
from facetwin.agents.optimize.search import Search
from facetwin.lifeline import die_with_parent, spawning


@dataclass
class Run:
    method: str
    seed: int
    records: list[dict]
    log_path: Path

    @property
    def best(self) -> dict:
        return max(self.records, key=lambda r: r["score"])


def run_search(env, target: dict, search: Search, budget: int, batch: int, log_path: Path,
               header: dict, scorer=None, progress: bool = True, stop=None) -> Run:
    """Spend ``budget`` evaluations of ``search`` on ``target`` (``env.reset`` options),
    ``batch`` controls at a time, logging every evaluation to ``log_path``; ``stop``
    (a function of the records so far) may end the run early."""
    log = RunLog(log_path, run_header(search, batch, header))
    budget = max(budget, len(log.records))
    bar = tqdm(total=budget, initial=len(log.records), desc=f"{search.name} seed {search.seed}",
               unit="eval", disable=not progress, leave=False)
    with bar:
        for _ in evaluations(env, target, search, budget, batch, log, scorer, stop):
            bar.update(1)
            bar.set_postfix(best=f"{max(r['score'] for r in log.records):.3f}", refresh=False)
    return Run(search.name, search.seed, log.records, Path(log_path))


def run_header(search: Search, batch: int, header: dict) -> dict:
    """A run log's header: what identifies the run (see ``runlog.IDENTITY``)."""
    return {"method": search.name, "seed": search.seed, "batch": batch, **header}


def evaluations(env, target: dict, search: Search, budget: int, batch: int, log,
                scorer=None, stop=None) -> Iterator[dict]:
    """The run of :func:`run_search` on ``log`` (a :class:`RunLog`, or any object with
    its ``records``, ``append`` and ``path``), yielding each new evaluation once logged.
    The evaluations ``log`` holds are replayed, not repeated."""
    if budget < 1 or batch < 1:
        raise ValueError(f"budget and batch must be at least 1, got {budget} and {batch}")
    # A run resumed with a smaller budget keeps every evaluation its log holds: the best
    # face may be among them.
    budget = max(budget, len(log.records))
    logged: dict[int, list[dict]] = {}
    for r in log.records:
        logged.setdefault(r["batch"], []).append(r)
    evaluate = Evaluator(env, target, scorer=scorer, seed=search.seed)
    done, b = 0, 0
    while done < budget and not (stop and stop(log.records[:done])):
        started = time.perf_counter()
        old = logged.get(b, [])
        if old and search.stateless and len(old) == old[0]["batch_size"]:
            X = np.array([r["controls"] for r in old])
        else:
            X = search.ask(old[0]["batch_size"] if old else min(batch, budget - done))
            _check_replay(X, old, log.path, b)
        records = list(old)
        for start in range(len(old), len(X), evaluate.parallel):
            chunk = evaluate(X[start:start + evaluate.parallel])
            # Wall time per evaluation, the search's share included.
            wall = (time.perf_counter() - started) / len(chunk)
            started = time.perf_counter()
            for rec in chunk:
                rec = {"batch": b, "batch_size": len(X), "index": done + len(records),
                       **rec, "wall_s": round(wall, 4)}
                log.append(rec)
                records.append(rec)
                yield rec
        search.tell(X, records)
        done, b = done + len(X), b + 1
    del log.records[done:]  # a run stopped early keeps what it reached


class HeldLog:
    """A run log held elsewhere (by the driver of a sweep, :mod:`.sweep`): the
    evaluations it had when this part of the run began, and those made since."""

    def __init__(self, records: list[dict], where: str):
        self.records, self.path = list(records), where

    def append(self, record: dict) -> None:
        self.records.append({"kind": "eval", **record})


def _check_replay(X: np.ndarray, old: list[dict], path: Path, batch: int) -> None:
    if old and not np.array_equal(X[:len(old)], np.array([r["controls"] for r in old])):
        raise RunLogError(f"{path}: batch {batch} in the log differs from what this run "
                          "asks for (another version of FaceTwin, or another machine's "
                          "arithmetic); give another --out to start a fresh run")


def make_twin_env(profile: str, workers: int = 1, image_size: int = 256,
                  features: str = "ground_truth", library=None, robot=None):
    """One twin env, or a vector env of ``workers`` twins evaluating batches in
    parallel processes (each the identified twin of ``robot``, a robot file, if given)."""
    make = partial(_twin, profile, image_size, features, library, robot)
    if workers <= 1:
        return make()
    with spawning():
        return gym.vector.AsyncVectorEnv([make] * workers, context="spawn", copy=False)


def _twin(profile, image_size, features, library, robot):
    from facetwin.envs.face_env import FaceTwinEnv
    die_with_parent()
    return FaceTwinEnv(profile, image_size=image_size, features=features, library=library,
                       robot=robot)


def target_id(target) -> str:
    """A short, stable name of a target for the run log's header."""
    if isinstance(target, str):
        return f"expression:{target}"
    a = np.ascontiguousarray(target)
    kind = "picture" if a.ndim >= 2 else "controls"
    return f"{kind}:{hashlib.sha256(a.tobytes()).hexdigest()[:16]}"
