"""Identification benchmark: hidden robots identified from their camera, and what
tuning on the identified twin keeps on them.

    python bench/identify.py [--profiles emo11 x2c30] [--robots 4] [--budget 40]
                             [--expressions happiness surprise anger] [--only KNOB ...]

Per profile, ``--robots`` hidden robots (``Randomization.realistic()``, or only the
knobs ``--only`` names; seeds drawn by this benchmark, never seen by the identifier)
stand behind a twin env whose camera MediaPipe reads. Each is identified with
``facetwin identify``'s defaults (120 poses), then:

(a) landmark error of the nominal and the identified twin against the robot on 50
    held-out random commands (median over commands of the median landmark distance);
(b) parameter recovery against the hidden truth: servo offset (share of range), travel
    (servo times linkage), grip points (mm);
(c) the share of the neutral-to-target way kept on the robot by the library and by BO
    (``--budget`` evaluations), each tuned on the nominal twin and on the identified
    twin (the library by Gauss-Newton on the identified twin, no robot evaluations),
    next to the nominal library corrected on the robot with the twin's Jacobian
    (today's remedy: 4 robot evaluations);
(d) the robot time the session used, and the fit's time on this machine.

Resumable: each robot's results are kept in ``--out``/PROFILE/robot-SEED/results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--profiles", nargs="+", default=["emo11", "x2c30"])
ap.add_argument("--robots", type=int, default=4)
ap.add_argument("--budget", type=int, default=40)
ap.add_argument("--expressions", nargs="+", default=["happiness", "surprise", "anger"])
ap.add_argument("--only", nargs="*", default=None, help="realistic()'s knobs to switch on")
ap.add_argument("--held-out", type=int, default=50)
ap.add_argument("--out", type=Path, default=Path("bench/out/identify"))

ROBOT_SEED0 = 7000  # the benchmark's hidden robots; the identifier's plan uses seed 0


def hidden_seeds(profile: str, n: int) -> list[int]:
    rng = np.random.default_rng(sum(profile.encode()))
    return [ROBOT_SEED0 + int(s) for s in rng.choice(1000, n, replace=False)]


def main() -> None:
    args = ap.parse_args()
    results = {}
    for profile in args.profiles:
        results[profile] = [run_robot(profile, seed, args)
                            for seed in tqdm(hidden_seeds(profile, args.robots),
                                             desc=f"{profile} robots", unit="robot")]
    report(results, args)


def randomization(args):
    from facetwin.sim.randomization import Randomization

    r = Randomization.realistic()
    return r.only(*args.only) if args.only else r


def run_robot(profile: str, seed: int, args) -> dict:
    from facetwin import profile as profiles
    from facetwin.agents.identify import identify
    from facetwin.agents.identify.session import HiddenRobot
    from facetwin.envs.face_env import FaceTwinEnv

    out = args.out / profile / f"robot-{seed}"
    saved = out / "results.json"
    if saved.exists():
        return json.loads(saved.read_text())
    p = profiles.load(profile)
    r = randomization(args)
    jacobian, jacobian_s = nominal_jacobian(p, args.out / profile)
    robot_env = HiddenRobot(FaceTwinEnv(p, randomization=r, features="camera"), seed)
    began = time.perf_counter()
    found = identify(robot_env, out, f"{profile}-robot-{seed}", jacobian=jacobian,
                     progress=False)
    fit_s = time.perf_counter() - began
    robot_env.close()
    result = {"seed": seed, "robot_time_s": found.robot_time_s, "fit_s": fit_s + jacobian_s,
              "fit_parts_s": found.fit.seconds, "stages": found.fit.stages,
              "plan_held_out_px": [found.nominal_px, found.identified_px]}
    result["landmarks"] = landmark_errors(p, r, seed, found, args.held_out)
    result["recovery"] = recovery(p, r, seed, found)
    result["shares"] = shares(p, r, seed, found.path, args, out)
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(result, indent=1))
    return result


def nominal_jacobian(p, out: Path) -> tuple[np.ndarray, float]:
    """The nominal twin's Jacobian at the plan's fit poses, the same for every robot of
    a profile: taken once, and its time added to each robot's fit time."""
    from facetwin.agents.identify.model import TwinModel
    from facetwin.agents.identify.poses import design

    path, took = out / "jacobian.npy", out / "jacobian_s.txt"
    if not path.exists():
        plan = design(p)
        began = time.perf_counter()
        J = TwinModel(p, p.camera.size).jacobian(plan.poses[~plan.held_out])
        out.mkdir(parents=True, exist_ok=True)
        np.save(path, J)
        took.write_text(f"{time.perf_counter() - began:.1f}")
    return np.load(path), float(took.read_text())


def landmark_errors(p, r, seed: int, found, n: int) -> dict:
    """(a): MediaPipe's landmarks of the robot against those of the nominal and the
    identified twin, on ``n`` random commands neither the plan nor the fit saw."""
    from facetwin.agents.identify.fit import detected, landmark_error
    from facetwin.agents.identify.model import TwinModel
    from facetwin.agents.identify.poses import COMBINED_REACH
    from facetwin.agents.identify.session import HiddenRobot
    from facetwin.envs.face_env import FaceTwinEnv
    from facetwin.envs.perception import FaceMeshDetector
    from facetwin.envs.safety import SafetyFilter

    rng = np.random.default_rng(seed + 1)
    safety = SafetyFilter(p)
    neutral = p.neutral.astype(float)
    commands = np.array([safety.target(neutral + COMBINED_REACH * (
        rng.uniform(p.low, p.high) - neutral))[0] for _ in range(n)])
    env = HiddenRobot(FaceTwinEnv(p, randomization=r, features="camera"), seed)
    env.reset(options={"target": p.neutral})
    robot, applied = [], []
    for c in commands:
        obs, _, _, _, info = env.step(c.astype(np.float32))
        robot.append(obs["landmarks"] if info["face_detected"] else np.full((478, 2), np.nan))
        applied.append(info["applied"])
    env.close()
    robot, applied = np.array(robot, dtype=float), np.array(applied, dtype=float)
    model = TwinModel(p, p.camera.size)
    detector = FaceMeshDetector()
    theta = found.fit.theta
    nominal, _, _ = detected(model, np.zeros_like(theta), applied, detector)
    identified, _, _ = detected(model, theta, applied, detector)
    detector.close()
    e0, e1 = landmark_error(robot, nominal), landmark_error(robot, identified)
    return {"nominal_px": float(np.nanmedian(e0)), "identified_px": float(np.nanmedian(e1)),
            "ratio": float(np.nanmedian(e1) / np.nanmedian(e0))}


def recovery(p, r, seed: int, found) -> dict:
    """(b): the fitted parameters against the hidden robot's, where a camera can tell."""
    from facetwin.agents.identify.model import TwinModel

    model = TwinModel(p, p.camera.size)
    hidden = model.hidden(r, seed)
    truth, fitted = model.params.truth(hidden), model.params.truth(found.robot)
    out = {}
    for key, unit, scale in (("servo_offset", "% of range", 100), ("servo_travel", "%", 100),
                             ("linkage_anchor", "mm", 1)):
        error = scale * np.abs(truth[key] - fitted[key])
        spread = scale * np.abs(truth[key])
        out[key] = {"unit": unit, "median_error": float(np.median(error)),
                    "max_error": float(error.max()), "median_truth": float(np.median(spread))}
    return out


def shares(p, r, seed: int, robot_file: Path, args, out: Path) -> dict:
    """(c): share of the way kept on the robot by what was tuned where. Tuning on a twin
    (nominal or identified) is Gauss-Newton with that twin's Jacobian (5 steps), then
    ``--budget`` evaluations of local BO about it; the robot's own is the ceiling."""
    from facetwin.agents.transfer import (CORRECTION_SIDE, correct_linear, share_kept, tune,
                                          twin_jacobian)
    from facetwin.envs.face_env import FaceTwinEnv

    robot = FaceTwinEnv(p, image_size=64, randomization=r)
    identified = FaceTwinEnv(p, image_size=64, robot=robot_file)
    nominal = FaceTwinEnv(p, image_size=64)

    def newton(env, target, x, s=0):
        return np.array(correct_linear(env, target, x, s, twin_jacobian(env, target, x),
                                       steps=5)["applied"])

    kept = {}
    for expression in args.expressions:
        target = {"target": expression}
        library = p.expressions[expression]
        bo = np.array(tune(nominal, target, args.budget,
                           args.out / p.name / f"bo-nominal-{expression}.jsonl")["applied"])
        library_id = newton(identified, target, library)
        polished = {name: np.array(tune(identified, target, args.budget,
                                        out / f"{name}@identified-{expression}.jsonl",
                                        x0=x, start_side=CORRECTION_SIDE)["applied"])
                    for name, x in (("library", library_id), ("bo", newton(identified, target,
                                                                              bo)))}
        corrected = correct_linear(robot, target, library, seed,
                                   twin_jacobian(nominal, target, library))
        ceiling = np.array(correct_linear(robot, target, library, seed,
                                          twin_jacobian(robot, target, library, seed=seed),
                                          steps=5)["applied"])
        kept[expression] = {
            "library": share_kept(robot, target, library, seed),
            "library@identified": share_kept(robot, target, polished["library"], seed),
            "library+jacobian (4 robot evals)":
                1 - corrected["distance_mm"] / _neutral(robot, target, seed),
            "bo": share_kept(robot, target, bo, seed),
            "bo@identified": share_kept(robot, target, polished["bo"], seed),
            "ceiling (tuned on the robot)": share_kept(robot, target, ceiling, seed),
            # what the operator saw on the twin each was tuned on
            "twin:bo": share_kept(nominal, target, bo, 0),
            "twin:library@identified": share_kept(identified, target, polished["library"], 0),
            "twin:bo@identified": share_kept(identified, target, polished["bo"], 0),
        }
    for env in (robot, identified, nominal):
        env.close()
    return kept


def _neutral(env, target, seed: int) -> float:
    from facetwin.agents.transfer import neutral_distance

    obs, _ = env.reset(seed=seed, options=target)
    return neutral_distance(obs["desired_goal"])


def report(results: dict, args) -> None:
    print("\n(a) held-out landmark error against the robot (MediaPipe, px), "
          "(d) robot time and fit time per robot\n")
    print("| profile | robot | nominal px | identified px | ratio | robot time s | fit s |")
    print("|---|---|---|---|---|---|---|")
    for profile, robots in results.items():
        for r in robots:
            a = r["landmarks"]
            print(f"| {profile} | {r['seed']} | {a['nominal_px']:.2f} | "
                  f"{a['identified_px']:.2f} | {a['ratio']:.2f} | {r['robot_time_s']:.0f} | "
                  f"{r['fit_s']:.0f} |")
    print("\n(b) parameter recovery: median (max) error, next to the hidden values' median\n")
    print("| profile | parameter | unit | median error | max error | median hidden |")
    print("|---|---|---|---|---|---|")
    for profile, robots in results.items():
        for key in ("servo_offset", "servo_travel", "linkage_anchor"):
            rec = [r["recovery"][key] for r in robots]
            print(f"| {profile} | {key} | {rec[0]['unit']} | "
                  f"{np.median([x['median_error'] for x in rec]):.2f} | "
                  f"{max(x['max_error'] for x in rec):.2f} | "
                  f"{np.median([x['median_truth'] for x in rec]):.2f} |")
    print(f"\n(c) share of the way kept on the robot, {args.robots} robots x "
          f"{len(args.expressions)} targets: median (worst)\n")
    print("| profile | agent | on the robot | on the twin it was tuned on |")
    print("|---|---|---|---|")
    for profile, robots in results.items():
        agents = list(robots[0]["shares"][args.expressions[0]])
        for agent in (a for a in agents if not a.startswith("twin:")):
            v = [100 * r["shares"][e][agent] for r in robots for e in args.expressions]
            twin = [100 * r["shares"][e].get(f"twin:{agent}", np.nan) for r in robots
                    for e in args.expressions]
            twin_text = "" if np.all(np.isnan(twin)) else f"{np.nanmedian(twin):.0f}%"
            if agent == "library":
                twin_text = "100%"
            print(f"| {profile} | {agent} | {np.median(v):.0f}% ({min(v):.0f}%) | "
                  f"{twin_text} |")


if __name__ == "__main__":
    main()
