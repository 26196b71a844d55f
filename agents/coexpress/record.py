"""``facetwin onsets``: a dataset of expression onsets, from synthetic people or videos.

    record_synthetic("x2c30", people=72, out=Path("data/onsets"), workers=2)
    record_videos(Path("clips"), out=Path("data/onsets-lab"))

Synthetic people (:mod:`.people`) are rendered at the dataset's frame rate, camera
noise added, and seen by MediaPipe tracking across frames, as a video would be; a
video folder holds a subfolder per person (or files, each its own person), and each
video is one expression from rest. People are the engine's units
(:mod:`facetwin.agents.engine`): each worker has its own twin and MediaPipe and sends a
person's expressions home as it films them; this process writes each person's shard.
Killed at any point (SIGKILL included) and run again with the same arguments, it makes
exactly the people still missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from facetwin import profile as profiles
from facetwin.agents.coexpress.labelling import NoOnset, label_onset
from facetwin.agents.coexpress.onsets import (
    OnsetDataError, Plan, check_learnable, done_people, open_plan, write_meta,
    write_person,
)
from facetwin.agents.coexpress.people import IDENTITY, NOISE, Choreography, perform
from facetwin.agents.engine import Engine, Job, load_profile, profile_ref
from facetwin.files import claim_folder
from facetwin.landmarks import N_LANDMARKS
from facetwin.video import SUFFIXES as VIDEOS, read_video


def record_synthetic(profile: str, people: int, out: Path, per_person: int = 12,
                     workers: int = 1, seed: int = 0, fps: float = 30.0,
                     image_size: int = 256, noise: float = NOISE,
                     progress: bool = True, address: str | None = None) -> dict:
    """Make (or finish) a dataset of ``people`` synthetic people, ``per_person``
    expressions each, on ``workers`` workers (on the Ray cluster at ``address``, if
    given); returns its meta."""
    if people < 1 or per_person < 1 or workers < 1:
        raise OnsetDataError(f"people, expressions per person and workers must be at least "
                             f"1, got {people}, {per_person} and {workers}")
    p = profiles.load(profile)
    plan = Plan("synthetic", p.name, p.sha256, seed, people, per_person, float(fps),
                image_size, float(noise))
    out = Path(out)
    with claim_folder(out, "onset dataset folder", OnsetDataError):
        open_plan(out, plan, p)
        todo = sorted(set(range(people)) - set(done_people(out)))
        with tqdm(total=people * per_person, initial=(people - len(todo)) * per_person,
                  unit="expression", desc=f"synthetic people ({p.name})",
                  disable=not progress, smoothing=0.05) as bar:
            job = _people(out, plan, p)
            outcome = Engine(workers, address).run(job, todo, bar)
        if outcome.failed:
            raise OnsetDataError(f"{len(outcome.failed)} people failed twice and are missing "
                                 f"({outcome.describe(job)}); the others are kept: run the "
                                 "same command again to make the missing ones")
        meta = write_meta(out, plan, p, complete=True)
    _report(meta, out, progress)
    check_learnable(out, meta)
    return meta


def _report(meta: dict, out: Path, progress: bool) -> None:
    if progress and meta["skipped"]:
        first = meta["skipped"][0]
        print(f"{len(meta['skipped'])} of {meta['sequences']} sequences have no clear onset "
              f"and are skipped (listed in {out / 'meta.json'}), e.g. {first['name']}: "
              f"{first['why']}")


def _people(out: Path, plan: Plan, p: profiles.Profile) -> Job:
    """The driver's side: a person's expressions come home one at a time and are written
    once the person is whole."""
    made: dict[int, list] = {}

    def start(person: int) -> int:
        made[person] = []
        return person

    def take(person: int, row: dict) -> int:
        made[person].append(row)
        return 1

    def finish(person: int) -> None:
        write_person(plan.shard_path(out, person), made.pop(person))

    return Job(_Performer, (profile_ref(p), plan), take, finish, start,
               lambda person: f"person {person}")


class _Performer:
    """One twin and its MediaPipe, performing synthetic people's expressions."""

    def __init__(self, profile: tuple[str, str], plan: Plan):
        from facetwin.envs.face_env import FaceTwinEnv

        self.profile, self.plan = load_profile(profile), plan
        self.env = FaceTwinEnv(self.profile, image_size=plan.image_size, step_mode="period")
        self.emotions = sorted(k for k in self.profile.expressions if k != "neutral")

    def run(self, person: int):
        for i in range(self.plan.per_person):
            yield self.expression(person, i)

    def expression(self, person: int, i: int) -> dict:
        """Person ``person``'s ``i``-th expression: a pure function of the plan's seed."""
        plan = self.plan
        identity = int(np.random.default_rng([plan.seed, person, 0x1D]).integers(2**31))
        rng = np.random.default_rng([plan.seed, person, i])
        performance = perform(rng, self.emotions)
        seen, given, _ = film(self.env, performance, identity, plan.fps, plan.noise, rng)
        return _row(person * plan.per_person + i, person, f"person {person} expression {i}",
                    performance, plan.fps, seen, given)


def film(env, performance, identity: int, fps: float, noise: float,
         rng: np.random.Generator, images: bool = False):
    """``performance`` by the person ``identity`` (a seed of :data:`IDENTITY`) on the twin
    of ``env`` (period steps), filmed at ``fps`` with ``noise`` grey levels and seen by
    MediaPipe tracking across frames. Returns the landmarks per frame ((frames, 478, 2),
    NaN: no face), the controls the face was given, and the frames when ``images``."""
    from facetwin.envs.perception import FaceMeshDetector

    moves = Choreography(env.profile, performance)
    env.reset(seed=identity, options={"target": "neutral", "randomization": IDENTITY,
                                      "controls": moves.controls(0.0)})
    period = 1.0 / env.profile.control_rate_hz
    frames = int(np.ceil(performance.duration_s * fps))
    detector = FaceMeshDetector(static_image_mode=False)  # a video's tracking
    # The camera runs before the recording starts: a tracker's first frame is a
    # detection, whose landmarks differ from the tracked ones that follow.
    detector(env.observe()["image"])
    seen, given, pictures, periods = [], [], [], 0
    try:
        for f in range(frames):
            t = f / fps
            while periods * period < t - 1e-9:  # the face moves until the frame's time
                periods += 1
                env.act(moves.controls(periods * period), "period")
            image = env.observe()["image"].astype(np.float32)
            image = np.clip(image + rng.normal(0.0, noise, image.shape), 0, 255).astype(
                np.uint8)
            found = detector(image)
            seen.append(np.full((N_LANDMARKS, 2), np.nan) if found is None else found)
            given.append(moves.controls(t))
            if images:
                pictures.append(image)
    finally:
        detector.close()
    return np.array(seen), np.array(given), pictures


def _row(k: int, person: int, name: str, performance, fps: float, seen: np.ndarray,
         given: np.ndarray | None) -> dict:
    try:
        label = label_onset(seen)
        marks, rise, why = (label.onset, label.activation, label.target), label.rise, None
    except NoOnset as exc:
        marks, rise, why = (-1, -1, -1), 0.0, str(exc)
    pf = performance
    return {
        "sequence": k, "person": person, "name": name,
        "emotion": pf.emotion if pf else name, "second": pf.second if pf else None,
        "weight": pf.weight if pf else 1.0, "intensity": pf.intensity if pf else 1.0,
        "false_start": pf.false_start if pf else False,
        "rest_s": pf.rest_s if pf else np.nan, "onset_s": pf.onset_s if pf else np.nan,
        "hold_s": pf.hold_s if pf else np.nan, "peak_s": pf.peak_s if pf else np.nan,
        "fps": fps, "frames": len(seen), "mediapipe": seen.astype(np.float32).ravel(),
        "controls": None if given is None else given.astype(np.float32).ravel(),
        "onset": marks[0], "activation": marks[1], "target": marks[2], "rise": rise,
        "skipped": why,
    }


def record_videos(videos: Path, out: Path, profile: str = "x2c30",
                  progress: bool = True) -> dict:
    """A dataset of the videos under ``videos`` (one subfolder per person, or files each
    their own person), labelled as Emo labels them; ``profile`` only stamps the dataset
    (the people are people)."""
    videos = Path(videos)
    people = _people_in(videos)
    p = profiles.load(profile)
    out = Path(out)
    with claim_folder(out, "onset dataset folder", OnsetDataError):
        plan = Plan("videos", p.name, p.sha256, 0, len(people), 0, 0.0, 0, 0.0)
        open_plan(out, plan, p)
        k = 0
        with tqdm(total=sum(len(v) for v in people), unit="video", desc=f"videos {videos}",
                  disable=not progress) as bar:
            for person, files in enumerate(people):
                if person in done_people(out):
                    k += len(files)
                    bar.update(len(files))
                    continue
                rows = []
                for path in files:
                    rows.append(_video_row(k, person, path, videos))
                    k += 1
                    bar.update()
                write_person(plan.shard_path(out, person), rows)
        meta = write_meta(out, plan, p, complete=True)
    _report(meta, out, progress)
    check_learnable(out, meta)
    return meta


def _video_row(k: int, person: int, path: Path, videos: Path) -> dict:
    """Sequence ``k``: one video, seen by MediaPipe tracking across its frames."""
    from facetwin.envs.perception import FaceMeshDetector

    fps, frames = read_video(path)
    detector = FaceMeshDetector(static_image_mode=False)
    try:
        seen = np.array([np.full((N_LANDMARKS, 2), np.nan)
                         if (f := detector(frame[..., :3])) is None else f for frame in frames])
    finally:
        detector.close()
    row = _row(k, person, str(path.relative_to(videos)), None, fps, seen, None)
    row["emotion"] = path.stem
    return row


def _people_in(videos: Path) -> list[list[Path]]:
    if not videos.is_dir():
        raise OnsetDataError(f"{videos} is not a folder of videos")
    people = []
    for entry in sorted(videos.iterdir()):
        if entry.is_dir():
            files = sorted(f for f in entry.iterdir() if f.suffix.lower() in VIDEOS)
            if files:
                people.append(files)
        elif entry.suffix.lower() in VIDEOS:
            people.append([entry])
    if not people:
        raise OnsetDataError(f"{videos} holds no videos ({', '.join(sorted(VIDEOS))})"
                             ", in it or in a subfolder per person")
    return people
