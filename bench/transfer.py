"""Transfer benchmark: how much of what was tuned on the nominal twin survives on robots
that differ from it as real copies do, and what the robustness levers win back.

    python bench/transfer.py [--profiles emo11 x2c30] [--expressions happiness surprise anger]
                             [--twins 8] [--budget 40] [--robust-twins 4] [--correction 12]

Per profile and library expression (the target), the agents:

- ``library``: the shipped expression's own controls (exact on the nominal twin);
- ``bo``: BO tuned on the nominal twin (``--budget`` evaluations);
- ``inverse``: an inverse model's one-shot proposal, where a trained one is found
  (``--inverse``, by default bench/out/inverse/PROFILE/mlp-ground_truth from
  bench/inverse.py);

each scored on the nominal twin and on ``--twins`` perturbed twins (seeds 0..N-1) under
``Randomization.realistic()`` and under each of its knobs alone. The levers, under
``realistic()`` on the same twins:

- ``bo-randomized``: BO whose objective is the mean over ``--robust-twins`` other
  perturbed twins (seeds 1000..), ``--budget`` evaluations of that mean;
- ``library+correct``, ``bo+correct``, ``inverse+correct``: on each perturbed twin,
  ``--correction`` evaluations of BO about the agent's nominal result (the robot
  closing the loop);
- ``library+jacobian``, ...: on each perturbed twin, 3 Gauss-Newton steps from the
  agent's nominal result on the residual the robot shows, with the nominal twin's
  Jacobian (4 evaluations on the robot).

The share of the way kept is 1 - distance / neutral distance, each face measured from
its own neutral; the loss is in points against what the operator saw on the twin (the
nominal share of the agent the lever starts from). Prints a table per knob and a summary
under ``realistic()``; plots to ``--out``/transfer.png. Resumable: run logs and each
target's shares are kept in ``--out``.

Each target is a unit of the parallel engine (``--workers``, default 2; ``--ray ADDRESS``
for a cluster): its worker gets the target's run logs so far and the inverse model's
files, measures in a scratch folder of its own, and sends the shares and the logs home,
where this process writes them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facetwin.agents.transfer import (OnTwins, correct, correct_linear, neutral_distance,
                                      share_kept, tune, twin_jacobian)
from facetwin.sim.randomization import Randomization

ROBUST_SEED0 = 1000  # the randomised tuning's twins, apart from the evaluation's 0..N-1
BASE = {"library": "library", "bo": "bo", "inverse": "inverse", "bo-randomized": "bo",
        "library+correct": "library", "bo+correct": "bo", "inverse+correct": "inverse",
        "library+jacobian": "library", "bo+jacobian": "bo", "inverse+jacobian": "inverse"}

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--profiles", nargs="+", default=["emo11", "x2c30"])
ap.add_argument("--expressions", nargs="+", default=["happiness", "surprise", "anger"])
ap.add_argument("--twins", type=int, default=8)
ap.add_argument("--budget", type=int, default=40)
ap.add_argument("--robust-twins", type=int, default=4)
ap.add_argument("--correction", type=int, default=12)
ap.add_argument("--inverse", nargs="*", default=None,
                help="PROFILE=MODEL_DIR pairs (default: bench/inverse.py's MLP where found)")
ap.add_argument("--out", type=Path, default=Path("bench/out/transfer"))
ap.add_argument("--workers", type=int, default=2, help="targets measured at once")
ap.add_argument("--ray", help="a Ray cluster's address (default: Ray on this machine)")


def conditions() -> list[tuple[str, Randomization]]:
    """``realistic()``, then each of its knobs alone."""
    r = Randomization.realistic()
    knobs = [k for k in r.__dataclass_fields__ if getattr(r, k) is not None]
    return [("realistic", r)] + [(k, r.only(k)) for k in knobs]


def inverse_models(args) -> dict[str, Path]:
    if args.inverse is not None:
        return {k: Path(v) for k, v in (pair.split("=", 1) for pair in args.inverse)}
    found = {p: Path(f"bench/out/inverse/{p}/mlp-ground_truth") for p in args.profiles}
    return {p: d for p, d in found.items() if (d / "model.json").exists()}


def measure(env, expression: str, args, model_dir: Path | None, out: Path,
            shares: dict) -> dict:
    """Shares kept by every agent on one target: {agent: {condition: [share per twin]}}
    with the condition "nominal" holding the nominal twin's one share; agents already in
    ``shares`` (a saved run's) are kept."""
    p = env.profile
    target = {"target": expression}
    twins = range(args.twins)
    env.randomization = Randomization()
    agents = {"library": p.expressions[expression],
              "bo": np.array(tune(env, target, args.budget, out / "bo.jsonl")["applied"])}
    if model_dir is not None:
        from facetwin.agents.inverse.agent import InverseModelAgent

        agents["inverse"] = InverseModelAgent(model_dir, env).propose(expression)
    realistic = Randomization.realistic()
    robust = OnTwins(env, range(ROBUST_SEED0, ROBUST_SEED0 + args.robust_twins))
    env.randomization = realistic
    agents["bo-randomized"] = np.array(
        tune(robust, target, args.budget, out / "bo-randomized.jsonl")["applied"])

    shares = dict(shares)
    new = {name: x for name, x in agents.items() if name not in shares}
    env.randomization = Randomization()
    for name, x in new.items():
        shares[name] = {"nominal": [share_kept(env, target, x, 0)]}
    for cond, r in conditions():
        env.randomization = r
        for name, x in new.items():
            if name == "bo-randomized" and cond != "realistic":
                continue
            shares[name][cond] = [share_kept(env, target, x, s) for s in twins]

    env.randomization = realistic
    obs, _ = env.reset(options=target)
    d0 = neutral_distance(obs["desired_goal"])
    for base in ("library", "bo", "inverse"):
        if base in agents and f"{base}+correct" not in shares:
            shares[f"{base}+correct"] = {"realistic": [
                1 - correct(env, target, agents[base], s, args.correction,
                            out / f"{base}+correct-twin{s}.jsonl")["distance_mm"] / d0
                for s in twins]}
        if base in agents and f"{base}+jacobian" not in shares:
            jacobian = twin_jacobian(env, target, agents[base])
            shares[f"{base}+jacobian"] = {"realistic": [
                1 - correct_linear(env, target, agents[base], s, jacobian)["distance_mm"] / d0
                for s in twins]}
    return shares


def main() -> None:
    args = ap.parse_args()
    from facetwin.agents.engine import Engine, Job

    models = {p: {f.name: f.read_bytes() for f in d.iterdir() if f.is_file()}
              for p, d in inverse_models(args).items()}
    results = {}  # profile -> expression -> shares
    todo = []
    for profile in args.profiles:
        for expression in args.expressions:
            saved = args.out / profile / expression / "shares.json"
            shares = json.loads(saved.read_text()) if saved.exists() else {}
            wanted = {a for a in BASE if profile in models or not a.startswith("inverse")}
            if wanted <= set(shares):
                results.setdefault(profile, {})[expression] = shares
            else:
                todo.append((profile, expression))

    def payload(unit):
        folder = args.out / unit[0] / unit[1]
        saved = folder / "shares.json"
        logs = {f.name: f.read_text() for f in folder.glob("*.jsonl")}
        return (*unit, json.loads(saved.read_text()) if saved.exists() else {}, logs)

    def take(unit, measured) -> int:
        shares, logs = measured
        folder = args.out / unit[0] / unit[1]
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in logs.items():
            (folder / name).write_text(text)
        (folder / "shares.json").write_text(json.dumps(shares))
        results.setdefault(unit[0], {})[unit[1]] = shares
        return 1

    job = Job(_Measurer, (args, models), take, lambda unit: None, payload,
              lambda unit: f"{unit[0]} {unit[1]}")
    with tqdm(total=len(todo), desc="targets", unit="target") as bar:
        outcome = Engine(args.workers, args.ray).run(job, todo, bar)
    if outcome.failed:
        print(f"not measured: {outcome.describe(job)}")
    report(results, args)
    plot(results, args.out / "transfer.png")


class _Measurer:
    """A worker: a twin per profile, measuring one target at a time in a scratch folder."""

    def __init__(self, args, models: dict[str, dict[str, bytes]]):
        import tempfile

        self.args, self.envs = args, {}
        self.scratch = Path(tempfile.mkdtemp(prefix="ft-transfer-"))
        for profile, files in models.items():
            (self.scratch / "models" / profile).mkdir(parents=True)
            for name, data in files.items():
                (self.scratch / "models" / profile / name).write_bytes(data)

    def run(self, payload):
        import shutil

        from facetwin.envs.face_env import FaceTwinEnv

        profile, expression, shares, logs = payload
        if profile not in self.envs:
            self.envs[profile] = FaceTwinEnv(profile, image_size=64)
        folder = self.scratch / "runs"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for name, text in logs.items():
            (folder / name).write_text(text)
        model = self.scratch / "models" / profile
        shares = measure(self.envs[profile], expression, self.args,
                         model if model.exists() else None, folder, shares)
        yield shares, {f.name: f.read_text() for f in folder.glob("*.jsonl")}


def summary(by_target: dict, agent: str, condition: str) -> dict | None:
    """Nominal share, perturbed median and worst, and the loss in points against the
    base agent's nominal share, over every target and twin."""
    shares, losses, nominal = [], [], []
    for s in by_target.values():
        if agent not in s or condition not in s[agent]:
            return None
        ref = s[BASE[agent]]["nominal"][0]
        nominal.append(s[agent].get("nominal", [np.nan])[0])
        shares += s[agent][condition]
        losses += [100 * (ref - v) for v in s[agent][condition]]
    return {"nominal": np.nanmedian(nominal) if not np.all(np.isnan(nominal)) else None,
            "median": np.median(shares), "worst": min(shares),
            "loss_median": np.median(losses), "loss_worst": max(losses)}


def report(results: dict, args) -> None:
    agents = list(BASE)
    print(f"\nshare of the neutral-to-target way kept, {args.twins} perturbed twins x "
          f"{len(args.expressions)} targets ({', '.join(args.expressions)}); loss in points "
          "against the base agent's nominal share\n")
    print("| profile | agent | condition | nominal | perturbed median | worst | "
          "loss median | loss worst |")
    print("|---|---|---|---|---|---|---|---|")
    for profile, by_target in results.items():
        for cond, _ in conditions():
            for agent in agents:
                s = summary(by_target, agent, cond)
                if s is None:
                    continue
                nominal = "" if s["nominal"] is None else f"{100 * s['nominal']:.0f}%"
                print(f"| {profile} | {agent} | {cond} | {nominal} | {100 * s['median']:.0f}% "
                      f"| {100 * s['worst']:.0f}% | {s['loss_median']:.1f} "
                      f"| {s['loss_worst']:.1f} |")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = list(results)
    fig, axes = plt.subplots(1, len(profiles), figsize=(5.5 * len(profiles), 4), dpi=100,
                             squeeze=False)
    for ax, profile in zip(axes[0], profiles):
        by_target = results[profile]
        agents = [a for a in BASE if all(a in s for s in by_target.values())]
        data = [[100 * v for s in by_target.values() for v in s[a]["realistic"]]
                for a in agents]
        ax.boxplot(data, whis=(0, 100))
        for i, a in enumerate(agents, start=1):
            nominal = [s[a]["nominal"][0] for s in by_target.values() if "nominal" in s[a]]
            if nominal:
                ax.plot(i, 100 * np.median(nominal), "g^", label="nominal twin" if i == 1
                        else None)
        ax.set_xticks(range(1, len(agents) + 1), agents, rotation=30, ha="right")
        ax.set_ylabel("share of the way kept (%)")
        ax.set_title(f"{profile}: realistic() perturbed twins")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
