"""``facetwin optimize``: tune one expression on the twin and keep it as a library file.

    tune("emo11", "happiness", out=Path("out/happy"), methods=("bo", "random"))

writes, in ``out``:

- ``runs/METHOD-sSEED.jsonl``: every evaluation of every run (resumable);
- ``library.json``: the best controls of the first method under the target's name
  (made for this profile; other libraries' entries in the file are kept);
- ``convergence.png``: best score against evaluations, every run in ``runs/``;
- ``before.png`` (neutral), ``after.png`` (the best controls), ``target.png``;
- with ``init_model``, ``model.png``: the inverse model's one-shot face, where the search
  starts (its first evaluation, and the centre of BO's first trust region).

With ``preference`` (a preference model's folder, :mod:`facetwin.agents.preference.store`),
the objective is the model's learned score of each face instead of its distance to the
target; BO starts from the pool's best-scored face and searches the box of controls the
pool spans.
With ``objective`` (:class:`EmotionObjective`, ``--objective emotion:NAME``) it is how sure
an emotion recogniser is of NAME; there is no target, and BO starts from the profile's
own expression of the emotion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.agents.inverse.agent import InverseModelAgent
from facetwin.agents.inverse.store import ModelError, read_config
from facetwin.agents.optimize.harness import Run, make_twin_env, run_search, target_id
from facetwin.agents.runlog import read_runlog
from facetwin.agents.optimize.methods import make_search
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.files import OutputError, claim_output
from facetwin.library import load_library, save_library
from facetwin.figures import log_lines, save_png


WARM_START_SIDE = 0.25  # BO about a model's proposal: a box a quarter of each range wide


@dataclass(frozen=True)
class Request:
    """One tuning run: what to tune, how, and where to keep it (see :func:`tune`)."""

    profile: profiles.Profile
    target: object  # an expression name, a control vector or an RGB picture; None: objective
    out: Path
    name: str | None = None
    methods: tuple[str, ...] = ("bo",)
    budget: int = 100
    seed: int = 0
    batch: int = 2
    workers: int = 1
    target_neutral: np.ndarray | None = None
    image_size: int = 256
    progress: bool = True
    init_model: Path | None = None
    preference: Path | None = None
    objective: object = None  # an EmotionObjective
    robot: Path | None = None  # a robot file: tune on that robot's identified twin

    @property
    def header(self) -> dict:
        """What the run logs are stamped with: another request's logs are refused."""
        p = self.profile
        header = {"profile": p.name, "profile_sha256": p.sha256,
                  "target": target_id(self.target),
                  "init_model": None if self.init_model is None else str(self.init_model)}
        if self.preference is not None:
            header["preference"] = str(self.preference)
        if self.objective is not None:
            header["objective"] = self.objective.spec
        if self.robot is not None:
            header["robot"] = str(self.robot)
        return header


@dataclass
class Tuned:
    name: str
    runs: list[Run]
    library: Path
    convergence: Path
    before: Path
    after: Path
    target: Path
    model: Path | None = None  # the inverse model's one-shot face, with init_model

    @property
    def best(self) -> dict:
        return self.runs[0].best


def tune(profile: str, target, out: Path, name: str | None = None,
         methods=("bo",), budget: int = 100, seed: int = 0, batch: int = 2,
         workers: int = 1, target_neutral: np.ndarray | None = None,
         image_size: int = 256, progress: bool = True,
         init_model: Path | None = None, preference: Path | None = None,
         objective=None, robot: Path | None = None) -> Tuned:
    """Optimise ``target`` (an expression name, a control vector, or an RGB picture of
    a person) on the twin with each of ``methods``; the first method's best is kept.
    ``init_model`` (an inverse model's folder) starts every method from the model's
    proposal for the target, BO as a local search about it. ``preference`` (a preference
    model's folder) makes its learned score the objective; ``objective`` (an
    :class:`EmotionObjective`) a recogniser's confidence in one emotion (``target`` None).
    ``robot`` (a robot file from ``facetwin identify``) tunes on that robot's twin."""
    if budget < 1 or batch < 1 or workers < 1:
        raise OutputError(f"budget, batch and workers must each be at least 1, got {budget}, "
                          f"{batch} and {workers}")
    p = profiles.load(profile)
    out = Path(out)
    if (out / "library.json").exists():
        load_library(out / "library.json", p)  # another profile's is refused before any work
    request = Request(p, target, out, name, tuple(methods), budget, seed, batch, workers,
                      target_neutral, image_size, progress, init_model, preference, objective,
                      robot)
    with claim_output(out):
        return _tune(request)


def _tune(r: Request) -> Tuned:
    p, out, init_model, preference, objective = r.profile, r.out, r.init_model, \
        r.preference, r.objective
    scorer = None
    if objective is not None:
        if r.target is not None or init_model is not None or preference is not None:
            raise OutputError(f"{objective.spec} is an objective of its own: no target, "
                              "init model or preference model with it")
        scorer = objective
        r = replace(r, target="neutral", name=r.name or objective.name)
    target = r.target
    picture = not isinstance(target, str) and np.ndim(target) >= 2
    if preference is not None:
        from facetwin.agents.preference.store import load_preference

        if init_model is not None or not isinstance(target, str):
            raise OutputError("a preference model scores faces of its own expression: give "
                              "its expression as the target, without --init-model")
        scorer = load_preference(preference, p)
        fitted = scorer.config.get("expression")
        if fitted != target:
            raise OutputError(f"{preference} was fitted on {fitted} faces; its score says "
                              f"nothing about {target}: fit one on a {target} pool")
    name = r.name or (target if isinstance(target, str) else "picture" if picture else
                      "target")
    reads_camera = init_model is not None and read_config(init_model)["inputs"] == "mediapipe"
    if picture and init_model is not None and not reads_camera:
        raise ModelError(f"{init_model} reads the twin's ground truth; a picture target is "
                         "seen through a camera: train the model with --features mediapipe")
    features = "camera" if picture or reads_camera else "ground_truth"
    options = {"target": target}
    if r.target_neutral is not None:
        options["target_neutral"] = r.target_neutral
    viewer = FaceTwinEnv(p, image_size=r.image_size, features=features, robot=r.robot)
    try:
        obs, _ = viewer.reset(options=options)  # fails early on a bad target
        start = p.neutral if init_model is None else \
            InverseModelAgent(init_model, viewer).propose_features(obs["desired_goal"])
        if scorer is not None:
            start = scorer.start(p)
        runs = _run_methods(viewer, r, options, features, start, scorer)
        best = np.array(runs[0].best["applied"])
        library = save_library(out / "library.json", p, {name: best})
        shown = None if picture or objective else \
            p.expressions[target] if isinstance(target, str) else target
        faces = [("before", p.neutral), ("after", best), ("target", shown)]
        if init_model is not None:
            faces.append(("model", start))
        paths = {label: out / f"{label}.png" for label, _ in faces}
        for label, controls in faces:
            if controls is not None:
                viewer.reset(options=options)
                frame, *_ = viewer.step(controls)
                save_png(paths[label], frame["image"])
        if picture:
            save_png(paths["target"], np.asarray(target)[..., :3])
    finally:
        viewer.close()
    metric = "distance" if scorer is None else "probability" if objective else "preference"
    convergence = plot_convergence(out / "runs", out / "convergence.png",
                                   f"{name} on {p.name}", metric)
    return Tuned(name, runs, library, convergence, paths["before"], paths["after"],
                 paths["target"], paths.get("model"))


def _run_methods(viewer, r: Request, options: dict, features: str, start: np.ndarray,
                 scorer) -> list[Run]:
    p = r.profile
    # A learned score is only known near the faces it learnt from: search their box.
    box = (p.low, p.high) if scorer is None else scorer.box(p)
    # One worker evaluates on the viewer itself; more run as a vector env of twins.
    env = viewer if r.workers <= 1 else \
        make_twin_env(str(p.path), r.workers, r.image_size, features, robot=r.robot)
    side = None if r.init_model is None and scorer is None else WARM_START_SIDE
    try:
        return [run_search(env, options,
                           make_search(method, *box, start, r.seed, r.batch, p.strain_ceiling,
                                       side),
                           r.budget, r.batch, r.out / "runs" / f"{method}-s{r.seed}.jsonl",
                           r.header, scorer=scorer, progress=r.progress)
                for method in r.methods]
    finally:
        if env is not viewer:
            env.close()


METRICS = {"distance": "best expression distance (mm)",
           "preference": "best learned preference score",
           "probability": "best recognised probability"}


def plot_convergence(runs_dir: Path, path: Path, title: str, metric: str = "distance") -> Path:
    """The best so far against evaluations, one line per run log in ``runs_dir``:
    ``metric`` "distance" (to the target), "preference" (a learned score) or
    "probability" (an emotion's, as recognised)."""
    lines = []
    for log in sorted(Path(runs_dir).glob("*.jsonl")):
        header, records = read_runlog(log)
        if records:
            best = np.maximum.accumulate([r["score"] for r in records])
            if metric == "distance":
                best = -best
            elif metric == "probability":  # the log-odds is what the search maximised
                best = 1.0 / (1.0 + np.exp(-best))
            lines.append((best, f"{header['method']} (seed {header['seed']})"))
    return log_lines(path, lines, title, "evaluations", METRICS[metric])
