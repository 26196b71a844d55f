"""``facetwin optimize``: tune one expression on the twin and keep it as a library file.

    tune("emo11", "happiness", out=Path("out/happy"), methods=("bo", "random"))

writes, in ``out``:

- ``runs/METHOD-sSEED.jsonl``: every evaluation of every run (resumable);
- ``library.json``: the best controls of the first method under the target's name
  (made for this profile; other libraries' entries in the file are kept);
- ``convergence.png``: best score against evaluations, every run in ``runs/``;
- ``before.png`` (neutral), ``after.png`` (the best controls), ``target.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facetwin.agents.optimize import Run, make_twin_env, run_search, target_id
from facetwin.agents.runlog import read_runlog
from facetwin.agents.search import make_search
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.library import save_library


@dataclass
class Tuned:
    name: str
    runs: list[Run]
    library: Path
    convergence: Path
    before: Path
    after: Path
    target: Path

    @property
    def best(self) -> dict:
        return self.runs[0].best


def tune(profile: str, target, out: Path, name: str | None = None,
         methods=("bo",), budget: int = 100, seed: int = 0, batch: int = 2,
         workers: int = 1, target_neutral: np.ndarray | None = None,
         image_size: int = 256, progress: bool = True) -> Tuned:
    """Optimise ``target`` (an expression name, a control vector, or an RGB picture of
    a person) on the twin with each of ``methods``; the first method's best is kept."""
    out = Path(out)
    picture = not isinstance(target, str) and np.ndim(target) >= 2
    name = name or (target if isinstance(target, str) else "picture" if picture else "target")
    features = "camera" if picture else "ground_truth"
    options = {"target": target}
    if target_neutral is not None:
        options["target_neutral"] = target_neutral
    viewer = FaceTwinEnv(profile, image_size=image_size, features=features)
    p = viewer.profile
    viewer.reset(options=options)  # fails early on a bad target
    header = {"profile": p.name, "profile_sha256": p.sha256, "target": target_id(target)}
    # One worker evaluates on the viewer itself; more run as a vector env of twins.
    env = viewer if workers <= 1 else make_twin_env(profile, workers, image_size, features)
    runs = []
    try:
        for method in methods:
            search = make_search(method, p.low, p.high, p.neutral, seed, batch,
                                 p.strain_ceiling)
            runs.append(run_search(env, options, search, budget, batch,
                                   out / "runs" / f"{method}-s{seed}.jsonl", header,
                                   progress=progress))
    finally:
        if env is not viewer:
            env.close()

    best = np.array(runs[0].best["applied"])
    library = save_library(out / "library.json", p, {name: best})
    paths = {}
    for label, controls in (("before", p.neutral), ("after", best)):
        viewer.reset(options=options)
        frame, *_ = viewer.step(controls)
        paths[label] = out / f"{label}.png"
        Image.fromarray(frame["image"]).save(paths[label])
    paths["target"] = out / "target.png"
    if picture:
        Image.fromarray(np.asarray(target)[..., :3]).save(paths["target"])
    else:
        viewer.reset(options=options)
        shown = p.expressions[target] if isinstance(target, str) else target
        frame, *_ = viewer.step(shown)
        Image.fromarray(frame["image"]).save(paths["target"])
    viewer.close()
    convergence = plot_convergence(out / "runs", out / "convergence.png",
                                   f"{name} on {p.name}")
    return Tuned(name, runs, library, convergence, paths["before"], paths["after"],
                 paths["target"])


def plot_convergence(runs_dir: Path, path: Path, title: str) -> Path:
    """Best score so far against evaluations, one line per run log in ``runs_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    for log in sorted(Path(runs_dir).glob("*.jsonl")):
        header, records = read_runlog(log)
        if records:
            best = np.maximum.accumulate([r["score"] for r in records])
            ax.plot(np.arange(1, len(best) + 1), -best,
                    label=f"{header['method']} (seed {header['seed']})")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best expression distance (mm)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
