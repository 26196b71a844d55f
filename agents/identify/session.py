"""The identification session on the robot: each pose of the plan through the env (its
safety filter, backend and camera), the settled frame's MediaPipe landmarks and present
positions journaled as they come.

``DIR/session.jsonl``: a header naming the profile and the plan, then one line per pose,
written and fsynced before the next pose is sent; ``DIR/frames/pose-NNN.png`` the frame
it was read from. A session killed at any point resumes from its journal and sends no
pose it already has (a torn last line is dropped and that pose shown again).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
from tqdm import tqdm

from facetwin.agents.identify.poses import Plan
from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write, read_jsonl
from facetwin.sim.twin import Diverged

JOURNAL = "session.jsonl"


class SessionError(FaceTwinError, ValueError):
    """A session journal that does not belong to this identification; says why."""


def read_session(out: Path, plan: Plan | None = None) -> tuple[dict, list[dict]]:
    """The header and pose records of ``out``'s journal (checked against ``plan``)."""
    path = Path(out) / JOURNAL
    records, torn = read_jsonl(path, SessionError)
    if not records or records[0].get("kind") != "header":
        raise SessionError(f"{path} is not an identification session (no header)")
    header, poses = records[0], records[1:]
    if plan is not None and (header.get("profile") != plan.profile
                             or header.get("plan_sha256") != plan.sha256):
        raise SessionError(f"{path} is a session of another plan (profile "
                           f"{header.get('profile')!r}, {header.get('poses')} poses); give "
                           "another --out, or the same --poses and --seed as before")
    if torn:
        atomic_write(path, "".join(json.dumps(r) + "\n" for r in records))
    return header, poses


def record_session(env, plan: Plan, out: Path, progress: bool = True) -> list[dict]:
    """Show every pose of ``plan`` the journal in ``out`` does not have yet; returns all
    pose records, in plan order. ``env``: a FaceTwinEnv with camera features (the robot's
    serial backend, or a twin standing in for a robot)."""
    out = Path(out)
    path = out / JOURNAL
    (out / "frames").mkdir(parents=True, exist_ok=True)
    p = env.get_wrapper_attr("profile")
    if env.get_wrapper_attr("features") != "camera":
        raise ValueError("identification reads the robot through its camera, as a robot "
                         "offers it: the env needs features='camera'")
    if path.exists() and path.stat().st_size:
        _, done = read_session(out, plan)
    else:
        atomic_write(path, json.dumps({
            "kind": "header", "profile": plan.profile, "profile_sha256": p.sha256,
            "plan_sha256": plan.sha256, "poses": len(plan.poses)}) + "\n")
        done = []
    have = {r["index"] for r in done}
    todo = [i for i in range(len(plan.poses)) if i not in have]
    if todo:
        env.reset(options={"target": p.neutral})
        for pose in plan.poses[replayed_from(plan.poses, todo[0]):todo[0]]:
            env.step(pose.astype(np.float32))  # shown again, not recorded
    for i in tqdm(todo, desc="poses", unit="pose", disable=not progress):
        obs, info = _show(env, plan.poses[i].astype(np.float32), i)
        iio.imwrite(out / "frames" / f"pose-{i:03d}.png", obs["image"])
        found = info["face_detected"]
        record = {"kind": "pose", "index": i, "command": _numbers(plan.poses[i]),
                  "applied": _numbers(info["applied"]), "present": _numbers(obs["controls"]),
                  "settle_s": round(float(info["settle_s"]), 4),
                  "image_size": int(obs["image"].shape[0]),
                  "landmarks": np.round(obs["landmarks"], 3).tolist() if found else None}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
        done.append(record)
    return sorted(done, key=lambda r: r["index"])


def replayed_from(poses: np.ndarray, k: int) -> int:
    """Where a session resumed at pose ``k`` starts showing the poses before it again.

    A servo comes to rest a little differently from each side (backlash), so a pose
    depends on which way each control last moved. Shown again from the earliest of the
    controls' last moves, every control's last move before pose ``k`` is the one an
    uninterrupted session made (on random combinations, where every control moves, one
    pose)."""
    if k == 0:
        return 0
    moved = np.diff(poses[:k], axis=0) != 0  # row j: pose j + 1 differs from pose j
    last = [int(np.flatnonzero(moved[:, c])[-1]) + 1 for c in range(poses.shape[1])
            if moved[:, c].any()]
    return min(last) - 1 if last else 0


def _show(env, pose: np.ndarray, index: int) -> tuple[dict, dict]:
    """The settled observation of ``pose``. A twin standing in for the robot whose
    physics blow up is reset and shown the pose once more; a second time is an error."""
    try:
        obs, _, _, _, info = env.step(pose)
    except Diverged:
        env.reset(options={"target": env.get_wrapper_attr("profile").neutral})
        try:
            obs, _, _, _, info = env.step(pose)
        except Diverged as exc:
            raise SessionError(f"pose {index}: {exc}, twice; the twin standing in for the "
                               "robot cannot show it") from None
    return obs, info


class HiddenRobot(gym.Wrapper):
    """A twin env (with camera features and a randomization) standing in for one robot:
    every reset draws the same robot, the one ``seed`` draws, whose parameters nobody
    on this side reads. Its settled steps go through the transient a robot goes through
    (``step_mode="ramp"``): the fit's own twin comes to rest by the shortcut, and a robot
    that took the same shortcut would share its errors (seed 3's servo offsets: 0.52 %
    of range median error through the shortcut, 0.22 % through the transient)."""

    def __init__(self, env: gym.Env, seed: int):
        super().__init__(env)
        self.seed = seed
        if env.get_wrapper_attr("step_mode") == "settle":
            env.set_wrapper_attr("step_mode", "ramp")

    def reset(self, *, seed=None, options=None):
        return self.env.reset(seed=self.seed, options=options)


def _numbers(v) -> list[float]:
    return [round(float(x), 6) for x in v]
