"""``facetwin collect``: a face babbles on the twin and a dataset is written as it goes.

    collect("emo11", "babble", samples=20_000, out=Path("data/emo11"), workers=2)

Shards (blocks of sequences) are the engine's units (:mod:`facetwin.agents.engine`): each
worker has its own twin, MediaPipe and safety filter and sends a shard's rows home a
sequence at a time; this process writes each shard atomically once it is whole. Killed at
any point (even with SIGKILL) and run again with the same arguments, a collection makes
exactly the shards that are missing: no sample lost, none made twice. A sequence is a
pure function of the seed and its number, so the rows are the same whatever the
workers. A larger ``samples`` extends a dataset; anything else that would change its
content is refused.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from facetwin import profile as profiles
from facetwin.agents.inverse.dataset import (
    DatasetError, Plan, continues, done_shards, set_aside_damaged, write_meta, write_shard,
)
from facetwin.agents.engine import Engine, Job, load_profile, profile_ref
from facetwin.agents.inverse.strategies import STRATEGIES, make_strategy
from facetwin.files import claim_folder
from facetwin.profile import IMAGE_SIZES

SEQUENCE_LENGTH = 8  # commands per sequence: a sequence starts from neutral


def collect(profile: str, strategy: str, samples: int, out: Path, workers: int = 1,
            image_size: int = 256, seed: int = 0, images: bool = True,
            trajectory: bool = False, shard_sequences: int = 16,
            progress: bool = True, address: str | None = None) -> dict:
    """Collect (or complete) a dataset of ``samples`` settled samples, in shards of
    ``shard_sequences`` sequences of 8 (rounded up to whole shards), on ``workers``
    workers (on the Ray cluster at ``address``, if given); returns its meta."""
    if strategy not in STRATEGIES:
        raise DatasetError(f"unknown strategy {strategy!r}; available: {', '.join(STRATEGIES)}")
    if samples < 1 or workers < 1:
        raise DatasetError(f"samples and workers must be at least 1, got {samples} and "
                           f"{workers}")
    p = profiles.load(profile)
    out = Path(out)
    if not IMAGE_SIZES[0] <= image_size <= IMAGE_SIZES[1] or shard_sequences < 1:
        raise DatasetError(f"image size must be {IMAGE_SIZES[0]}-{IMAGE_SIZES[1]} pixels and "
                           f"shards hold at least 1 sequence, got {image_size} and "
                           f"{shard_sequences}")
    plan = Plan(p.name, p.sha256, strategy, seed, SEQUENCE_LENGTH, image_size, images,
                trajectory, shard_sequences)
    with claim_folder(out, "dataset folder", DatasetError):
        begun = continues(out, plan, p)
        for shard in set_aside_damaged(out, len(p.controls)):
            print(f"facetwin: {shard} was damaged: kept as {shard.name}.damaged, made again")
        done = {s.name for s in done_shards(out)}
        todo = [first for first in plan.shard_firsts(samples)
                if plan.shard_path(out, first).name not in done]
        rows_per_shard = plan.sequences_per_shard * plan.sequence_length
        total = len(plan.shard_firsts(samples)) * rows_per_shard
        with tqdm(total=total, initial=total - len(todo) * rows_per_shard, unit="sample",
                  desc=f"collect {p.name} {strategy}", disable=not progress,
                  smoothing=0.05) as bar:
            job = _shards(out, plan, p)
            neutral = {}

            def measure_neutral():  # in this process, while the workers start
                neutral.update(_neutral(p, image_size))
                if not begun:
                    write_meta(out, plan, p, neutral, complete=False)

            outcome = Engine(workers, address).run(job, todo, bar, meanwhile=measure_neutral)
        if outcome.failed:
            raise DatasetError(f"{len(outcome.failed)} shard(s) failed twice and are missing "
                               f"({outcome.describe(job)}); the others are kept: run the "
                               "same command again to make the missing ones")
        return write_meta(out, plan, p, neutral, complete=True)


def _neutral(p: profiles.Profile, image_size: int) -> dict:
    """The face at rest, as the dataset's features are measured against it."""
    from facetwin.envs.face_env import FaceTwinEnv

    env = FaceTwinEnv(p, image_size=image_size, features="camera")
    try:
        return {k: v.ravel().tolist() for k, v in env.neutral_face().items()}
    finally:
        env.close()


def _shards(out: Path, plan: Plan, p: profiles.Profile) -> Job:
    """The driver's side: a shard's rows come home a sequence at a time and are written
    once the shard is whole (a shard started again starts empty)."""
    made: dict[int, list] = {}

    def start(first: int) -> int:
        made[first] = []
        return first

    def take(first: int, rows: list[dict]) -> int:
        made[first] += rows
        return sum(r["settled"] for r in rows)

    def finish(first: int) -> None:
        write_shard(plan.shard_path(out, first), made.pop(first), len(p.controls))

    return Job(_Worker, (profile_ref(p), plan), take, finish, start,
               lambda first: f"shard {plan.shard_path(out, first).name}")


class _Worker:
    """One twin, its MediaPipe and a strategy, making a shard's sequences."""

    def __init__(self, profile: tuple[str, str], plan: Plan):
        from facetwin.envs.face_env import FaceTwinEnv
        from facetwin.envs.perception import FaceMeshDetector

        self.profile, self.plan = load_profile(profile), plan
        self.env = FaceTwinEnv(self.profile, image_size=plan.image_size,
                               step_mode="period" if plan.trajectory else "settle")
        self.detector = FaceMeshDetector()
        self.strategy = make_strategy(plan.strategy, self.profile)

    def run(self, first: int):
        """The rows of the shard starting at sequence ``first``, a sequence at a time."""
        for k in range(first, first + self.plan.sequences_per_shard):
            yield self.sequence(k)

    def sequence(self, k: int) -> list[dict]:
        """Sequence ``k``: a pure function of the plan's seed and ``k``."""
        plan, env = self.plan, self.env
        rng = np.random.default_rng([plan.seed, k])
        env.reset(seed=int(rng.integers(2**31)), options={"target": "neutral"})
        commands = self.strategy.sequence(rng, plan.sequence_length)
        requested, rows = next(commands), []
        for step in range(plan.sequence_length):
            transition = self.transition(requested, k, step)
            rows += transition
            if step + 1 < plan.sequence_length:
                requested = commands.send(np.asarray(transition[-1]["applied"], float))
        return rows

    def transition(self, requested: np.ndarray, k: int, step: int) -> list[dict]:
        """The rows of one command: its settled end, or every control period of it."""
        if not self.plan.trajectory:
            obs, _, _, _, info = self.env.step(requested)
            return [self.row(obs, info, requested, k, step, 0, True, info["settle_s"])]
        env, rows, elapsed = self.env, [], 0.0
        limit = env.settle_periods
        for period in range(limit):
            obs, _, _, _, info = env.step(requested)
            elapsed += info["settle_s"]
            settled = info["still"] or period == limit - 1
            rows.append(self.row(obs, info, requested, k, step, period, settled, elapsed))
            if settled:
                return rows
        return rows

    def row(self, obs, info, requested, k, step, period, settled, time_s) -> dict:
        image = obs["image"]
        seen = self.detector(image)
        png = None
        if self.plan.images:
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, "PNG", compress_level=1)
            png = buffer.getvalue()
        return {
            "sequence": k, "step": step, "period": period, "settled": settled,
            "time_s": time_s, "requested": np.asarray(requested, np.float32),
            "applied": info["applied"], "controls": obs["controls"],
            "landmarks": obs["landmarks"].ravel(), "features": obs["achieved_goal"],
            "mediapipe": (np.full(obs["landmarks"].size, np.nan, np.float32) if seen is None
                          else seen.astype(np.float32).ravel()),
            "face_found": seen is not None,
            "head_pose": info["head_pose"],
            "strain": info["strain_max"], "image": png, "seed": self.plan.seed,
        }
