"""Preferential Bayesian optimisation: the annotator is the objective.

    best = preferential_bo(env, "happiness", compare, budget=30)

A ``PairwiseGP`` over the controls (scaled to the unit box) models a latent utility
from every comparison so far; the next pair is the GP's incumbent (its best face so far)
and the candidate whose comparison with it has the highest expected utility of the best
option (EUBO, Lin et al. 2022); both are put on the face, rendered and handed to
``compare(left, right)`` (a person through the annotation page, or the simulated
annotator), whose answer updates the GP: propose -> compare -> update -> propose. The
search starts from the library's own expression, compared with a few faces of a Sobol
design. Can't-tell answers are logged but teach the GP nothing (it has no ties).

A face is a dict: ``controls`` (asked), ``applied``, ``features``, ``image``. Every
comparison is appended to ``log_path`` (JSON lines) as it is answered, with the faces it
added to the search; a run started again on the log resumes from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import qmc
from tqdm import tqdm

from facetwin.agents.evaluation import Evaluator
from facetwin.agents.preference.pairwise_gp import fit_pairwise_gp
from facetwin.agents.protocol import Solution
from facetwin.errors import FaceTwinError
from facetwin.threads import single_threaded

N_SOBOL = 3  # Sobol faces compared with the library's before the GP proposes
CANDIDATES = 1024  # EUBO is maximised over this many candidates per comparison
LOCAL_STEP = 0.04  # half of them about the incumbent, this far (unit box) on average


def face_of(env, expression: str, controls: np.ndarray) -> dict:
    env.reset(options={"target": expression})
    obs, _, _, _, info = env.step(np.asarray(controls, np.float32))
    return {"controls": np.asarray(controls, float), "applied": np.asarray(info["applied"]),
            "features": obs["achieved_goal"], "image": obs["image"]}


def preferential_bo(env, expression: str, compare: Callable[[dict, dict], str], budget: int,
                    seed: int = 0, log_path: Path | None = None,
                    progress: bool = True) -> dict:
    """Spend ``budget`` comparisons; returns the face the GP rates best (with its
    ``utility`` and the ``comparisons`` made). With ``log_path`` every comparison is kept
    as it is answered, and a run started again on the same log goes on from it: people's
    answers are never asked twice, nor dropped (a smaller ``budget`` keeps them all)."""
    p = env.get_wrapper_attr("profile")
    if budget < N_SOBOL:
        raise ValueError(f"preferential BO needs a budget of at least {N_SOBOL} comparisons")
    unit = [p.to_box(p.expressions[expression])]
    unit += list(qmc.Sobol(len(p.controls), scramble=True, seed=seed).random(N_SOBOL))
    header = {"kind": "header", "profile": p.name, "profile_sha256": p.sha256,
              "expression": expression, "seed": seed}
    logged = _read_log(log_path, header) if log_path else []
    won: list[tuple[int, int]] = []
    faces: dict[int, dict] = {}

    def face(i: int) -> dict:
        if i not in faces:
            faces[i] = face_of(env, expression, p.from_box(unit[i]))
        return faces[i]

    for r in logged:  # what people answered before: replayed, not asked again
        i, j = r["faces"]
        unit += [np.asarray(u, float) for u in r.get("new", [])]
        if r["answer"] != "tie":
            won.append((i, j) if r["answer"] == "left" else (j, i))
    asked = len(logged)
    budget = max(budget, asked)
    log = open(log_path, "a", encoding="utf-8") if log_path else None
    if log and not logged:
        log.write(json.dumps(header) + "\n")
    bar = tqdm(total=budget, initial=asked, desc="preferential BO", unit="comparison",
               disable=not progress, leave=False)

    def ask(i: int, j: int, new: list) -> None:
        nonlocal asked
        answer = compare(face(i), face(j))
        asked += 1
        if answer == "left":
            won.append((i, j))
        elif answer == "right":
            won.append((j, i))
        if log:
            log.write(json.dumps({"faces": [i, j], "new": [u.tolist() for u in new],
                                  "pair": [face(i)["applied"].round(6).tolist(),
                                           face(j)["applied"].round(6).tolist()],
                                  "answer": answer}) + "\n")
            log.flush()
            os.fsync(log.fileno())
        bar.update(1)

    try:
        for k in range(asked + 1, N_SOBOL + 1):
            ask(0, k, [])
        while asked < budget:
            pair = _propose(np.array(unit), won, seed + asked)
            unit += list(pair)
            ask(len(unit) - 2, len(unit) - 1, list(pair))
        utility = fit_pairwise_gp(np.array(unit), won).posterior(
            torch.as_tensor(np.array(unit))).mean.squeeze(-1).detach().numpy() if won \
            else np.zeros(len(unit))
    finally:
        bar.close()
        if log:
            log.close()
    best = int(np.argmax(utility))
    return {**face(best), "utility": float(utility[best]), "comparisons": asked}


class PreferentialAgent:
    """Preferential BO as an :class:`~facetwin.agents.protocol.ExpressionAgent`: the
    controls people (or a simulated annotator) prefer for one of the library's
    expressions, evaluated once on the env.

    Args:
        env: the face the proposals are shown on.
        compare: ``compare(left, right)`` -> ``"left"``, ``"right"`` or ``"tie"``.
        budget: comparisons per target.
        seed: the search's seed.
        log_path: the comparison log (a run resumes from it); none when None.
    """

    def __init__(self, env, compare: Callable[[dict, dict], str], budget: int = 30,
                 seed: int = 0, log_path: Path | None = None):
        self.env, self.compare, self.budget, self.seed, self.log_path = \
            env, compare, budget, seed, log_path

    def solve(self, target: dict) -> Solution:
        expression = target["target"]
        if not isinstance(expression, str):
            raise ValueError("preferential BO tunes one of the library's expressions: "
                             f"give its name as the target, got {type(expression).__name__}")
        best = preferential_bo(self.env, expression, self.compare, self.budget, self.seed,
                               self.log_path, progress=False)
        record = Evaluator(self.env, target)(best["controls"][None])[0]
        return Solution(best["controls"].astype(np.float32), record, best["comparisons"])


class ComparisonLogError(FaceTwinError, ValueError):
    """A comparison log that cannot be resumed; the message says why."""


def _read_log(path: Path, header: dict) -> list[dict]:
    """The comparisons of an earlier run of this search, or none; a log of another
    search (profile, expression, seed) is refused."""
    from facetwin.files import read_jsonl

    path = Path(path)
    if not path.exists():
        return []
    records, torn = read_jsonl(path, ComparisonLogError)
    if records and records[0] != header:
        raise ComparisonLogError(f"{path} holds the comparisons of another search "
                         f"({records[0]}); give another --out")
    if torn:  # stopped mid-line: that answer was never taken
        from facetwin.files import atomic_write

        atomic_write(path, "".join(json.dumps(r) + "\n" for r in records))
    return records[1:]


def _propose(unit: np.ndarray, won: list[tuple[int, int]], seed: int) -> np.ndarray:
    """Two faces to compare: the GP's incumbent (best posterior mean so far) and the
    candidate that maximises EUBO with it, among random points and points about the
    incumbent: a bounded amount of work per comparison, whatever the GP's landscape."""
    from botorch.acquisition.preference import AnalyticExpectedUtilityOfBestOption

    rng = np.random.default_rng(seed)
    d = unit.shape[1]
    if not won:  # nothing learnt yet (every answer a tie): two random faces
        return rng.random((2, d))
    with single_threaded():
        gp = fit_pairwise_gp(unit, won)
    with single_threaded(), torch.no_grad():
        incumbent = unit[int(np.argmax(gp.posterior(torch.as_tensor(unit)).mean.squeeze(-1)))]
        candidates = np.vstack([
            rng.random((CANDIDATES // 2, d)),
            np.clip(incumbent + rng.normal(0, LOCAL_STEP, (CANDIDATES // 2, d)), 0, 1)])
        pairs = np.stack([np.broadcast_to(incumbent, candidates.shape), candidates], 1)
        eubo = AnalyticExpectedUtilityOfBestOption(pref_model=gp)(torch.as_tensor(pairs))
    return pairs[int(torch.argmax(eubo))]
