"""Live mimicry: a person's face drives the robot's, frame by frame.

Per frame: the pipeline (:mod:`.pipeline`) turns the person's picture into a command,
and the env takes it one control period at a time (``step_mode="period"``), where the
backend's safety filter has the last word; the video (:mod:`.video`) and the figures of
the run (:mod:`.stats`) are kept as it goes.

    summary = mimic("emo11", Path("models/emo11-mp"), "clip.mp4", Path("out/mimic"))

writes ``mimicry.mp4`` (person | robot | both landmark sets), ``summary.json`` (frames,
faces found, frames/s, latency per stage, command jitter) and ``frames.jsonl`` (each
frame's command, and the model's output before smoothing) in the output folder.
The same call drives the robot with ``backend="serial", port=..., camera=...``.
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facetwin import profile as profiles
from facetwin.agents.inverse.store import config_for
from facetwin.agents.mimic.pipeline import (
    DEFAULT_NEUTRAL_FRAMES, Mimic, require_camera_inputs,
)
from facetwin.agents.mimic.smoothing import OneEuroFilter
from facetwin.agents.mimic.sources import Source, open_source
from facetwin.agents.mimic.stats import jitter, percentiles_ms
from facetwin.agents.mimic.video import Preview, VideoWriter
from facetwin.files import atomic_write, claim_output
from facetwin.threads import single_threaded

# Camera -> command, in order. "step" is the backend taking the command for one control
# period: the safety filter, the write, and the period's physics (twin) or wait (robot).
STAGES = ("read", "detect", "map", "infer", "smooth", "step")


def mimic(profile: str, model_dir: Path, source: str | Path, out: Path,
          backend: str = "twin", port: str | None = None, camera: str | None = None,
          journal: Path | None = None, neutral: np.ndarray | None = None,
          neutral_frames: int | None = None,
          smoothing: OneEuroFilter | None = None, gain: float = 1.0, image_size: int = 256,
          fps: float = 30.0, preview: bool | None = None, progress: bool = True,
          max_frames: int | None = None) -> dict:
    """Mimic the face in ``source`` (see :func:`open_source`) with ``profile``'s face;
    returns the summary, also written to ``out/summary.json`` beside ``out/mimicry.mp4``.
    The person's neutral is ``neutral``, else the first ``neutral_frames`` frames with a
    face (default 10; 0, the robot's neutral, for a held picture).
    Ctrl-C ends the run cleanly: the video is closed and playable, and the robot goes
    back to neutral with its torque off (``env.close()``)."""
    p = profiles.load(profile)
    require_camera_inputs(model_dir, config_for(model_dir, p))  # before the source opens
    src = open_source(source, fps)
    if neutral_frames is None:  # a held picture as its own neutral would not move the face
        neutral_frames = 0 if src.still else DEFAULT_NEUTRAL_FRAMES
    return drive(
        p, lambda: Mimic(p, model_dir, image_size, smoothing, gain, neutral, neutral_frames),
        src, Path(out), "mimicry.mp4", backend, port, camera, journal, image_size, preview,
        progress, max_frames, {"model": str(model_dir)})


def drive(p: profiles.Profile, pipeline, src: Source, out: Path, video: str, backend: str,
          port, camera, journal, image_size: int, preview, progress, max_frames,
          about: dict, finish=None) -> dict:
    """Run ``pipeline()`` (a :class:`Mimic` or one like it) on ``src`` with the face on
    ``backend``; writes ``out/VIDEO`` and ``out/summary.json``: the run's figures,
    ``about``, and what ``finish(pipeline, trace)`` adds, where the trace is per frame
    its time, the person's landmarks (None: no face) and the robot's present controls.
    Returns the summary."""
    from facetwin.envs.face_env import FaceTwinEnv

    with claim_output(out):
        mimicker = pipeline()
        env = None
        trace = [] if finish is not None else None  # kept only for someone to read
        try:
            env = FaceTwinEnv(p, backend=backend, image_size=image_size, step_mode="period",
                              features="ground_truth" if backend == "twin" else "camera",
                              port=port, camera=camera, journal=journal)
            obs, _ = env.reset(seed=0, options={"target": "neutral"})
            summary = _run(src, mimicker, env, obs, out, video, preview, progress,
                           max_frames, trace)
        finally:
            if env is not None:
                env.close()  # on the robot: ramp to neutral, torque off
            mimicker.close()
        summary |= {"profile": p.name, **about, "source": src.name, "backend": backend,
                    "smoothing": asdict(mimicker.smoothing)}
        if finish is not None:
            summary |= finish(mimicker, trace)
        atomic_write(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


@single_threaded()
def _run(src: Source, mimicker: Mimic, env, obs, out: Path, video_name: str, preview,
         progress, max_frames, trace: list | None) -> dict:
    base = env.unwrapped
    period = 1.0 / base.profile.control_rate_hz
    video = VideoWriter(out / video_name, src.fps if not src.live else 30.0, base.size)
    show = Preview() if preview or (preview is None and Preview.possible()) else None
    frames = faces = periods = 0
    timings = {stage: [] for stage in (*STAGES, "observe")}
    latency, raws, units = [], [], []
    interrupted, first = False, None
    total = src.total if max_frames is None else min(src.total or max_frames, max_frames)
    bar = tqdm(total=total, unit="frame", desc=f"mimic {src.name}", disable=not progress)
    clock = time.perf_counter
    started = clock()
    frames_in = iter(src) if src.live else _prefetched(src)
    log = open(out / "frames.jsonl", "w", buffering=1)  # whole lines, as they come
    stop = _CtrlC()
    try:
        while (max_frames is None or frames < max_frames) and not stop.pressed:
            began = clock()
            frame = next(frames_in, None)
            if frame is None:
                break
            read = clock() - began
            command = mimicker(frame.image, frame.time)
            first = frame.time if first is None else first
            # A file keeps its own time: the face gets as many control periods as the
            # frame lasts (none when frames come faster than the control rate); a live
            # camera paces the loop itself, one period a frame.
            due = 1 if src.live else int((frame.time - first) / period + 1e-9) + 1 - periods
            for k in range(due):
                began = clock()
                base.act(command.controls, "period")
                if k == 0:
                    command.timings["step"] = clock() - began
            periods += max(due, 0)
            if due > 0:  # else the face has not moved since the last look
                began = clock()
                obs = base.observe()
                timings["observe"].append(clock() - began)
            command.timings["read"] = read
            for stage, seconds in command.timings.items():
                timings.setdefault(stage, []).append(seconds)
            if "step" in command.timings:  # camera -> command: this frame's command sent
                latency.append(sum(command.timings.values()))
            frames += 1
            faces += command.person is not None
            if command.raw is not None:
                raws.append(command.raw)
                units.append(command.unit)
            log.write(json.dumps({"frame": frame.index, "time": round(frame.time, 4),
                                  "face": command.person is not None,
                                  "controls": np.round(command.controls, 5).tolist(),
                                  "model": None if command.raw is None else
                                  np.round(command.raw, 5).tolist()}) + "\n")
            if trace is not None:
                trace.append((frame.time, command.person, obs["controls"]))
            video.put(frame.image, command, obs)
            if show is not None:
                show(video.compose(frame.image, command, obs))
            bar.update()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.release()
        interrupted = interrupted or stop.pressed
        bar.close()
        log.close()
        video.close()
        if show is not None:
            show.close()
    wall = clock() - started
    return {
        "frames": frames, "faces_found": faces, "no_face_frames": frames - faces,
        "neutral_frames": len(mimicker._seen_neutral), "control_periods": periods,
        "frames_per_s": frames / wall if wall > 0 else 0.0,
        "latency_ms": {stage: percentiles_ms(v) for stage, v in timings.items()},
        "camera_to_command_ms": percentiles_ms(latency),
        "jitter": {"model": jitter(raws), "command": jitter(units)},
        "interrupted": interrupted, "video": str(video.path),
    }


class _CtrlC:
    """Ctrl-C ends the loop between frames, never inside a write to the servos; a second
    one interrupts at once."""

    def __init__(self):
        self.pressed = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._press)

    def _press(self, *_) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def release(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _prefetched(src: Source, ahead: int = 8):
    """A file's frames, decoded on a thread of their own a few frames ahead."""
    frames: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def decode() -> None:
        try:
            for frame in src:
                while not stop.is_set():
                    try:
                        frames.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            frames.put(None)
        except Exception as exc:  # raised again in the loop
            frames.put(exc)

    thread = threading.Thread(target=decode, name="mimic-source", daemon=True)
    thread.start()
    try:
        while (item := frames.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
