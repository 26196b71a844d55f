"""``facetwin sweep``: a profile's whole expression library tuned in parallel, every
target x seed a unit of the engine (:mod:`facetwin.agents.engine`), and the best face of
each target over its seeds kept in one library file.

    sweep("emo11", Path("out/emo11-library"), seeds=2, budget=60, workers=2)

Targets are the profile's expressions (all but neutral, by default) and emotion
objectives (``emotion:NAME``: how sure a recogniser is of NAME, as ``facetwin optimize
--objective`` tunes it). Writes, in ``out`` (this process writes all of it; the workers
send their evaluations home):

- ``sweep.json``: the plan and each unit's status (done, failed and why, or to do);
- ``runs/TARGET/METHOD-sSEED.jsonl``: each unit's run log, the same as ``facetwin
  optimize`` writes, appended as the evaluations come home;
- ``runs/TARGET/convergence.png``: best so far against evaluations, per seed;
- ``library.json``: the best face of each target (entries of other targets are kept).

Killed and run again with the same arguments, a sweep keeps every evaluation its logs
hold: finished units are skipped, and an unfinished one is started from its log (its
worker replays what the log holds and carries on), so a sweep ends where an
uninterrupted one would have, whatever the number of workers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facetwin import profile as profiles
from facetwin.agents.engine import Engine, Job, load_profile, profile_ref
from facetwin.agents.optimize.harness import HeldLog, evaluations, target_id
from facetwin.agents.optimize.methods import METHODS, make_search
from facetwin.agents.optimize.tune import WARM_START_SIDE, plot_convergence
from facetwin.agents.runlog import RunLog
from facetwin.envs.emotion import EMOTIONS, LIBRARY_NAMES, emotion_index
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.files import OutputError, atomic_write, claim_output
from facetwin.library import load_library, save_library

FORMAT = "facetwin-sweep/1"


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep folder holds: resuming with another plan is refused."""

    profile: str
    profile_sha256: str
    targets: tuple[str, ...]
    seeds: int
    method: str
    budget: int
    batch: int
    image_size: int

    @property
    def units(self) -> list[tuple[str, int]]:
        return [(t, s) for t in self.targets for s in range(self.seeds)]

    def log_path(self, out: Path, unit: tuple[str, int]) -> Path:
        target, seed = unit
        return out / "runs" / target.replace(":", "-") / f"{self.method}-s{seed}.jsonl"


@dataclass
class Swept:
    library: Path
    best: dict[str, dict]  # target -> its best evaluation over the seeds
    failed: dict[str, str]  # unit's name -> why


def sweep(profile: str, out: Path, targets=None, seeds: int = 2, method: str = "bo",
          budget: int = 60, batch: int = 2, image_size: int = 256, workers: int = 1,
          address: str | None = None, progress: bool = True) -> Swept:
    """Tune each of ``targets`` (default: every expression of the profile but neutral)
    with ``seeds`` seeds of ``method``, ``budget`` evaluations each, on ``workers``
    workers (on the Ray cluster at ``address``, if given)."""
    p = profiles.load(profile)
    if seeds < 1 or budget < 1 or batch < 1:
        raise OutputError(f"seeds, budget and batch must each be at least 1, got {seeds}, "
                          f"{budget} and {batch}")
    if method not in METHODS:
        raise OutputError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    targets = _targets(p, targets or sorted(k for k in p.expressions if k != "neutral"))
    plan = SweepPlan(p.name, p.sha256, targets, seeds, method, budget, batch, image_size)
    out = Path(out)
    if (out / "library.json").exists():
        load_library(out / "library.json", p)  # another profile's is refused before any work
    with claim_output(out):
        status = _open(out, plan)
        logged = {u: _logged(plan, out, u) for u in plan.units}
        todo = [u for u in plan.units if logged[u] < budget]
        for u in plan.units:
            status[_name(u)] = "to do" if u in todo else "done"
        job = _SweepJob(plan, p, out, status)
        total = len(plan.units) * budget
        with tqdm(total=total, initial=sum(min(n, budget) for n in logged.values()),
                  unit="eval", desc=f"sweep {p.name} ({len(plan.units)} runs)",
                  disable=not progress, smoothing=0.05) as bar:
            outcome = Engine(workers, address).run(job.job, todo, bar)
        for unit, why in outcome.failed.items():
            status[_name(unit)] = f"failed: {why}"
        _write_status(out, plan, status)
        best = _keep_best(plan, p, out)
    return Swept(out / "library.json", best,
                 {_name(u): why for u, why in outcome.failed.items()})


def _targets(p, targets) -> tuple[str, ...]:
    """Each target checked, emotion objectives as ``emotion:FER_NAME``."""
    canonical = []
    for t in targets:
        if t.startswith("emotion:"):
            try:
                t = f"emotion:{EMOTIONS[emotion_index(t.partition(':')[2])]}"
            except ValueError as exc:
                raise OutputError(f"{t}: {exc}") from None
        elif t not in p.expressions:
            raise OutputError(f"{t!r} is neither an expression of {p.name} "
                              f"({', '.join(p.expressions)}) nor emotion:NAME")
        canonical.append(t)
    names = [_entry(t) for t in canonical]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise OutputError(f"two targets would be kept as {twice[0]!r} in the library: give "
                          "each expression once, as itself or as its emotion objective")
    return tuple(canonical)


def _entry(target: str) -> str:
    """The library entry a target is kept under: emotion:happy as happiness."""
    if not target.startswith("emotion:"):
        return target
    fer = target.partition(":")[2]
    return next(k for k, v in LIBRARY_NAMES.items() if v == fer)


def _name(unit: tuple[str, int]) -> str:
    return f"{unit[0]} seed {unit[1]}"


def _open(out: Path, plan: SweepPlan) -> dict[str, str]:
    """The status of a sweep begun in ``out`` before, refused if it is another sweep."""
    import json

    path = out / "sweep.json"
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
        old = doc["plan"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OutputError(f"{path} is not a sweep's record ({exc}); give another --out") from None
    for key, value in asdict(plan).items():
        value = list(value) if isinstance(value, tuple) else value
        if old.get(key) != value:
            raise OutputError(f"{out} holds a sweep with {key} = {old.get(key)!r}, not "
                              f"{value!r}: give another --out")
    return dict(doc.get("units", {}))


def _write_status(out: Path, plan: SweepPlan, status: dict[str, str]) -> None:
    import json

    atomic_write(out / "sweep.json", json.dumps(
        {"format": FORMAT, "plan": asdict(plan), "units": status}, indent=2))


def _logged(plan: SweepPlan, out: Path, unit) -> int:
    from facetwin.agents.runlog import read_runlog

    path = plan.log_path(out, unit)
    return len(read_runlog(path)[1]) if path.exists() and path.stat().st_size else 0


def _header(plan: SweepPlan, target: str, seed: int) -> dict:
    """As ``facetwin optimize`` stamps its run logs (``tune.Request.header``)."""
    objective = target.startswith("emotion:")
    header = {"method": plan.method, "seed": seed, "batch": plan.batch,
              "profile": plan.profile, "profile_sha256": plan.profile_sha256,
              "target": target_id("neutral" if objective else target), "init_model": None}
    if objective:
        header["objective"] = target
    return header


class _SweepJob:
    """The driver's side of a sweep: each unit's run log, opened when the unit starts
    (what it holds goes to the worker to replay), appended as evaluations come home."""

    def __init__(self, plan: SweepPlan, p, out: Path, status: dict[str, str]):
        self.plan, self.p, self.out, self.status = plan, p, out, status
        self.logs: dict[tuple[str, int], RunLog] = {}
        self.job = Job(_Tuner, (profile_ref(p), plan), self.take, self.finish, self.start,
                       _name)

    def start(self, unit):
        target, seed = unit
        log = RunLog(self.plan.log_path(self.out, unit), _header(self.plan, target, seed))
        self.logs[unit] = log
        self.status[_name(unit)] = "running"
        _write_status(self.out, self.plan, self.status)
        return target, seed, log.records

    def take(self, unit, record: dict) -> int:
        self.logs[unit].append(record)
        return 1

    def finish(self, unit) -> None:
        self.logs.pop(unit)
        self.status[_name(unit)] = "done"
        _write_status(self.out, self.plan, self.status)


class _Tuner:
    """One twin (ground-truth features, so the recogniser reads its renders as a
    camera's), tuning one target and seed at a time."""

    def __init__(self, profile: tuple[str, str], plan: SweepPlan):
        self.p, self.plan = load_profile(profile), plan
        self.env = FaceTwinEnv(self.p, image_size=plan.image_size)

    def run(self, payload):
        target, seed, records = payload
        plan, p = self.plan, self.p
        scorer, start, side, options = None, p.neutral, None, {"target": target}
        if target.startswith("emotion:"):
            from facetwin.agents.emotion_objective import EmotionObjective

            scorer = EmotionObjective.parse(target)
            start, side, options = scorer.start(p), WARM_START_SIDE, {"target": "neutral"}
        box = (p.low, p.high) if scorer is None else scorer.box(p)
        search = make_search(plan.method, *box, start, seed, plan.batch, p.strain_ceiling,
                             side)
        log = HeldLog(records, f"the run log of {target} seed {seed}")
        yield from evaluations(self.env, options, search, plan.budget, plan.batch, log, scorer)


def _keep_best(plan: SweepPlan, p, out: Path) -> dict[str, dict]:
    """The best evaluation of each target over its seeds, into the library; a target
    that has none yet is left out."""
    from facetwin.agents.runlog import read_runlog

    best, entries = {}, {}
    for target in plan.targets:
        runs = [(s, r) for s in range(plan.seeds) if plan.log_path(out, (target, s)).exists()
                for r in read_runlog(plan.log_path(out, (target, s)))[1]]
        if not runs:
            continue
        seed, record = max(runs, key=lambda sr: sr[1]["score"])
        best[target] = {**record, "seed": seed}
        entries[_entry(target)] = np.array(best[target]["applied"])
        folder = plan.log_path(out, (target, 0)).parent
        plot_convergence(folder, folder / "convergence.png", f"{target} on {p.name}",
                         "probability" if target.startswith("emotion:") else "distance")
    if entries:
        save_library(out / "library.json", p, entries)
    return best
