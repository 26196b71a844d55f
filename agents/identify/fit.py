"""Fitting a twin to what a robot's camera saw: damped Gauss-Newton on the landmark
residuals, with the nominal twin's Jacobian and a Gaussian prior.

Why this method: the objective is a sum of squares of ~10^5 landmark residuals in a few
dozen to a hundred-odd parameters, each residual evaluation a settled twin per pose
(seconds for a session), smooth and nearly linear over the few millimetres and degrees a
copy of a face differs by. Least squares uses every residual's direction, which BO's
scalar objective throws away; the Jacobian is taken once, at the nominal twin, block by
block where each parameter acts (:meth:`TwinModel.jacobian`), and every iterate's
residuals are computed exactly, so an approximate Jacobian slows the fit but does not
move its answer. The prior (``Randomization.realistic()``'s spread) keeps what the camera
cannot tell apart (a neck's zero from the camera's pose) where a lab's copy would be.

MediaPipe neither finds a rendered landmark exactly where the twin's ground truth
projects nor moves it as far: every residual compares MediaPipe on the robot's frame with
MediaPipe on the model's render of the same pose, so its bias cancels where the two faces
agree, and the Jacobian's rows are scaled by its gain and weighted by its noise per
landmark, both measured on the nominal twin's own pictures. Held-out poses stop the fit
where their error stops falling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from facetwin.agents.identify.model import BLOCKS, TwinModel
from facetwin.errors import FaceTwinError
from facetwin.landmarks import N_LANDMARKS
from facetwin.sim.twin import Diverged

ROUNDS = 10  # Gauss-Newton steps, each on freshly rendered and detected poses
CONVERGED = 0.02  # a step that cuts the held-out error by less ends the fit
MIN_STEP = 0.2  # the shortest share of a Gauss-Newton step tried before stopping
NOISE_FLOOR_PX = 0.1  # no landmark is trusted more than this
TRUST = 6.0  # no parameter goes further from nominal than this many prior deviations


class IdentifyError(FaceTwinError, RuntimeError):
    """An identification that cannot give a robot file; the message says why."""


@dataclass
class Fit:
    theta: np.ndarray
    sigma: np.ndarray  # posterior standard deviation per parameter
    stages: list[dict] = field(default_factory=list)  # per round: fit and held-out error
    seconds: dict = field(default_factory=dict)
    # Robot's landmarks minus the model's (poses, landmarks, 2): nominal, and at theta.
    nominal_residuals: np.ndarray | None = None
    residuals: np.ndarray | None = None


def detected(model: TwinModel, theta: np.ndarray, poses: np.ndarray, detector) -> tuple:
    """The model's twin at ``theta`` rendered and read by MediaPipe at each pose, and its
    ground-truth pixels: (poses, landmarks, 2) each, NaN where no face was found or the
    twin's physics diverged; and how many poses diverged."""
    camera = model.camera(theta)
    renderer = model.renderer(theta)
    seen, truth, diverged = [], [], 0
    try:
        for pose in poses:
            try:
                x = model.settled(theta, pose)
            except Diverged:
                diverged += 1
                seen.append(np.full((N_LANDMARKS, 2), np.nan))
                truth.append(np.full((N_LANDMARKS, 2), np.nan))
                continue
            found = detector(renderer.render())
            seen.append(np.full((len(x), 2), np.nan) if found is None else found)
            truth.append(camera.project(x))
    finally:
        renderer.close()
    return np.array(seen), np.array(truth), diverged


def landmark_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pose, the median landmark distance (pixels) between two sets of landmarks."""
    return np.nanmedian(np.linalg.norm(a - b, axis=-1), axis=-1)


def fit(model: TwinModel, poses: np.ndarray, observed: np.ndarray, held_out: np.ndarray,
        detector, jacobian: np.ndarray | None = None, blocks=None, progress=None,
        workers: int = 1) -> Fit:
    """Fit ``model``'s parameters to ``observed`` landmarks (poses, landmarks, 2; NaN
    rows where the robot's camera found no face) at ``poses``; ``held_out`` poses only
    judge. ``jacobian`` (from :meth:`TwinModel.jacobian` at the fit poses) is taken
    when not given (in ``workers`` processes). ``blocks`` (names of
    :class:`Parameters` blocks) fits only those, the others held nominal (all by
    default)."""
    P = model.params
    train = ~held_out
    clock = {"jacobian_s": 0.0, "detect_s": 0.0, "solve_s": 0.0}
    t = time.perf_counter()
    blocks = tuple(blocks or BLOCKS)
    if jacobian is None:
        jacobian = model.jacobian(poses[train], progress, blocks, workers)
    clock["jacobian_s"] = time.perf_counter() - t
    free = np.zeros(P.size, dtype=bool)
    for b in blocks:
        free[P.slice(b)] = True
    J = jacobian.reshape(-1, P.size)[:, free].astype(float)
    full = np.zeros(P.size)
    theta = np.zeros(free.sum())
    prior_precision = 1.0 / P.prior[free] ** 2
    bound = TRUST * P.prior[free]
    stages = []

    def look(th: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        t = time.perf_counter()
        full[free] = th
        seen, truth, diverged = detected(model, full, poses, detector)
        clock["detect_s"] += time.perf_counter() - t
        if progress is not None:
            progress(0)
        return observed - seen, seen, truth, diverged

    r, seen, truth, diverged = look(theta)
    if diverged:
        raise Diverged(f"the nominal twin's physics diverged at {diverged} of the "
                       f"{len(poses)} poses: nothing to fit from")
    nominal_residuals = r
    # MediaPipe's gain and noise per landmark, from the nominal twin's pictures.
    Jg = J * _mediapipe_gain(seen[train], truth[train]).reshape(-1)[:, None]
    w = np.broadcast_to(_mediapipe_precision(seen[train], truth[train]),
                        r[train].shape).reshape(-1)
    w = np.where(np.isfinite(r[train]).reshape(-1), w, 0.0)

    A = Jg.T @ (Jg * w[:, None]) + np.diag(prior_precision)

    def gauss_newton(r: np.ndarray, th: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        g = Jg.T @ (w * np.nan_to_num(r[train].reshape(-1))) - prior_precision * th
        step = np.linalg.solve(A, g)
        clock["solve_s"] += time.perf_counter() - t
        return step

    best = (_held_error(r, held_out), theta, r)
    stages.append({"round": 0, "step": 0.0, "fit_px": _held_error(r, train),
                   "held_out_px": best[0]})
    direction, share = gauss_newton(r, theta), 1.0
    for round_ in range(1, ROUNDS + 1):
        # Within TRUST prior deviations: past them lie robots no copy of the face is,
        # some of them too stiff for the twin's explicit step.
        theta = np.clip(best[1] + share * direction, -bound, bound)
        r, _, _, diverged = look(theta)
        # A twin that blew up at some pose is no answer, however its other poses read.
        error = np.inf if diverged else _held_error(r, held_out)
        stages.append({"round": round_, "step": share, "fit_px": _held_error(r, train),
                       "held_out_px": error, **({"diverged_poses": diverged} if diverged
                                                else {})})
        if error < best[0]:
            converged = error > best[0] * (1 - CONVERGED)
            best = (error, theta, r)
            if converged:
                break
            direction, share = gauss_newton(r, theta), 1.0
        else:  # the step overshot: try a shorter one
            share *= 0.5
            if share < MIN_STEP:
                break
    theta, r = best[1], best[2]
    # The weights are MediaPipe's noise at the nominal twin; residuals larger than that
    # (what the model cannot express) widen the uncertainty by as much.
    e = np.nan_to_num(r[train].reshape(-1))
    scale = max(1.0, float(w @ e ** 2) / max(1, np.count_nonzero(w) - len(theta)))
    sigma = np.zeros(P.size)
    sigma[free] = np.sqrt(scale * np.diag(np.linalg.inv(A)))
    full[free] = theta
    return Fit(full.copy(), sigma, stages, clock, nominal_residuals, r)


def _mediapipe_gain(seen: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """How far MediaPipe moves each landmark coordinate per pixel its ground truth moves,
    over the poses (it shrinks motion toward its mean face): (landmarks, 2), tiled per
    pose to scale the ground-truth Jacobian's rows."""
    ds, dt = seen - np.nanmean(seen, axis=0), truth - truth.mean(axis=0)
    gain = np.nansum(ds * dt, axis=0) / np.maximum((dt ** 2).sum(axis=0), 1e-9)
    return np.broadcast_to(np.clip(np.nan_to_num(gain, nan=1.0), 0.3, 1.5), seen.shape)


def _held_error(r: np.ndarray, held_out: np.ndarray) -> float:
    return float(np.nanmedian(np.linalg.norm(r[held_out], axis=-1)))


def _mediapipe_precision(seen: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each landmark's inverse variance (px^-2) of MediaPipe's error about its mean over
    the poses, (landmarks, 1): it is surer of the lips and eyes than of the outline."""
    error = seen - truth
    variance = np.nanmean((error - np.nanmean(error, axis=0)) ** 2, axis=(0, 2))
    return 1.0 / np.maximum(np.nan_to_num(variance, nan=1e6), NOISE_FLOOR_PX ** 2)[:, None]
