"""Identification: a twin of *this* robot, fitted to what its camera sees.

    env = FaceTwinEnv("emo11", backend="serial", port=..., camera=...)
    found = identify(env, Path("runs/lab-emo"), name="lab-emo")
    FaceTwinEnv("emo11", robot=found.path)       # that robot's twin

A short session (:mod:`.session`) shows the robot the poses of a plan (:mod:`.poses`)
through the env's safety filter and reads each settled frame with MediaPipe; the fit
(:mod:`.fit`) finds the twin's per-robot parameters (:mod:`.model`) that make the twin's
camera see the same, and the result is written as a robot file
(:mod:`facetwin.sim.robot`) with a before/after picture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facetwin.agents.identify.fit import Fit, IdentifyError, fit, landmark_error
from facetwin.agents.identify.model import TwinModel
from facetwin.agents.identify.poses import MAX_POSES, Plan, design
from facetwin.agents.identify.session import record_session
from facetwin.envs.perception import FaceMeshDetector, PictureError, read_picture
from facetwin.figures import labelled, row, save_png
from facetwin.sim.robot import Robot, save_robot


@dataclass
class Identified:
    path: Path  # the robot file
    robot: Robot
    fit: Fit
    plan: Plan
    nominal_px: float  # held-out median landmark error of the nominal twin
    identified_px: float  # ... and of the identified one
    robot_time_s: float  # what the session took the robot (ramps and settling)


def observations(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Applied commands (poses, controls) and landmarks (poses, landmarks, 2; NaN where
    the camera found no face) of a session's records."""
    applied = np.array([r["applied"] for r in records])
    n = max((len(r["landmarks"]) for r in records if r["landmarks"] is not None), default=0)
    seen = np.array([np.full((n, 2), np.nan) if r["landmarks"] is None else r["landmarks"]
                     for r in records], dtype=float)
    return applied, seen


def identify(env, out: Path, name: str, n_poses: int = MAX_POSES, seed: int = 0,
             blocks=None, jacobian: np.ndarray | None = None, workers: int = 1,
             progress: bool = True) -> Identified:
    """Run (or resume) the session on ``env``'s robot, fit its twin (``blocks`` of its
    parameters, all by default; the Jacobian in ``workers`` processes unless given),
    write ``out/NAME.robot.json`` and ``out/NAME.before-after.png``."""
    p = env.get_wrapper_attr("profile")
    out = Path(out)
    plan = design(p, n_poses, seed=seed)
    records = record_session(env, plan, out, progress)
    if len(records) < len(plan.poses):
        raise IdentifyError(f"the session has {len(records)} of {len(plan.poses)} poses")
    applied, observed = observations(records)
    if np.isnan(observed).all():
        raise IdentifyError("the camera found no face in any pose: check the camera "
                            f"(frames in {out / 'frames'})")
    model = TwinModel(p, records[0]["image_size"])
    detector = FaceMeshDetector()
    began = time.perf_counter()
    with tqdm(total=int((~plan.held_out).sum()), desc="jacobian", unit="pose",
              disable=not progress) as bar:
        result = fit(model, applied, observed, plan.held_out, detector, jacobian, blocks,
                     progress=bar.update, workers=workers)
    ho = plan.held_out
    nominal_px = float(np.nanmedian(landmark_error(result.nominal_residuals[ho], 0.0)))
    identified_px = float(np.nanmedian(landmark_error(result.residuals[ho], 0.0)))
    if not identified_px < nominal_px:
        diverged = sum(1 for s in result.stages if s.get("diverged_poses"))
        raise IdentifyError(
            f"the fit found no twin closer to the robot than the nominal one (held-out "
            f"landmark error {identified_px:.2f} px against {nominal_px:.2f} px"
            f"{f'; {diverged} of its steps made a twin that diverged' if diverged else ''}): "
            f"no robot file written. The session is kept in {out}: look at its frames, or "
            "fit fewer blocks (--fit)")
    robot = model.params.robot(result.theta)
    robot_time = float(sum(r["settle_s"] for r in records))
    path = save_robot(
        out / f"{name}.robot.json", p, model.layout, robot, name=name,
        method="damped Gauss-Newton on MediaPipe landmarks, nominal twin's Jacobian, "
               "realistic() prior, held-out early stop",
        fitted=blocks or [b.name for b in model.params.blocks],
        uncertainty={b.name: np.round(result.sigma[model.params.slice(b.name)], 6).tolist()
                     for b in model.params.blocks},
        uncertainty_units={b.name: b.unit for b in model.params.blocks},
        residuals={"stages": result.stages, "held_out_nominal_px": round(nominal_px, 4),
                   "held_out_identified_px": round(identified_px, 4)},
        poses={"controls": p.names, "applied": np.round(applied, 6).tolist(),
               "held_out": ho.tolist()},
        robot_time_s=round(robot_time, 2),
        fit_s={k: round(v, 1) for k, v in
               {**result.seconds, "total_s": time.perf_counter() - began}.items()})
    before_after(out / f"{name}.before-after.png", out, model, result.theta,
                 np.flatnonzero(ho), applied, observed)
    return Identified(path, robot, result, plan, nominal_px, identified_px, robot_time)


def before_after(path: Path, out: Path, model: TwinModel, theta: np.ndarray, poses,
                 applied: np.ndarray, observed: np.ndarray) -> Path:
    """Robot frame | nominal twin | identified twin at the first of the held-out
    ``poses`` whose frame reads (the fit needs only the journal: a damaged frame costs
    the picture one pose), the robot's landmarks dotted on all three (where the twin's
    face sits under them shows the fit)."""
    frame, why = None, "no held-out pose"
    for pose in poses:
        try:
            frame = read_picture(out / "frames" / f"pose-{pose:03d}.png", "frame")
            break
        except PictureError as exc:
            why = str(exc)
    if frame is None:
        raise IdentifyError(f"no held-out frame to draw the before/after picture from "
                            f"(last: {why})")
    tiles = [labelled(frame, "robot", observed[pose])]
    for label, th in (("nominal twin", np.zeros_like(theta)), ("identified twin", theta)):
        renderer = model.renderer(th)
        try:
            model.settled(th, applied[pose])
            tiles.append(labelled(renderer.render(), label, observed[pose]))
        finally:
            renderer.close()
    return save_png(path, row(tiles))
