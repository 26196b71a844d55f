"""Live mimicry: a person's face drives the robot's, frame by frame.

Per frame: MediaPipe on the person -> Emo's normalisation onto the robot's face (each
face against its own neutral, limited to the robot's reach; see ``human_features``) ->
the inverse model -> a One-Euro filter -> the env, one control period at a time
(``step_mode="period"``), where the backend's safety filter has the last word. A frame
without a face holds the last command.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from facetwin import profile as profiles
from facetwin.agents.inverse.inputs import from_unit_box, to_unit_box
from facetwin.agents.inverse.store import ModelError, config_for, load_model
from facetwin.agents.mimic.smoothing import OneEuroFilter
from facetwin.agents.mimic.sources import Source, SourceError, open_source
from facetwin.envs.perception import FaceMeshDetector, feature_pixels, human_features
from facetwin.envs.safety import SafetyFilter
from facetwin.envs.targets import TargetModel
from facetwin.files import atomic_write, claim_output
from facetwin.hardware.camera import square_crop
from facetwin.threads import single_threaded

# Camera -> command, in order. "step" is the backend taking the command for one control
# period: the safety filter, the write, and the period's physics (twin) or wait (robot).
STAGES = ("read", "detect", "map", "infer", "smooth", "step")
DEFAULT_NEUTRAL_FRAMES = 10  # frames with a face taken as the person at rest
PERSON, ROBOT, TARGET = (240, 200, 40), (40, 230, 90), (240, 60, 200)


@dataclass
class Command:
    controls: np.ndarray  # what goes to the env (control units)
    unit: np.ndarray  # the same, 0-1 per control
    raw: np.ndarray | None  # the model's output before smoothing (0-1), when it ran
    person: np.ndarray | None  # the person's landmarks (pixels of their picture)
    target: np.ndarray | None  # where they put the robot's landmarks (robot pixels)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


class Mimic:
    """A person's picture in, the robot's command out; one call per frame, in order."""

    def __init__(self, profile: profiles.Profile, model_dir: Path, image_size: int = 256,
                 smoothing: OneEuroFilter | None = None, gain: float = 1.0,
                 neutral: np.ndarray | None = None,
                 neutral_frames: int = DEFAULT_NEUTRAL_FRAMES):
        self.profile = profile
        self.module, config = load_model(model_dir, profile)  # another profile's is refused
        _require_camera_inputs(model_dir, config)
        self.person_neutral = None if neutral is None else _landmarks_at_rest(neutral)
        self.neutral_frames = 0 if neutral is not None else max(0, int(neutral_frames))
        self.smoothing = smoothing if smoothing is not None else OneEuroFilter()
        self.gain = gain
        self.detector = FaceMeshDetector(static_image_mode=False)  # tracks across frames
        # The robot's own neutral and reach, as its camera sees them on a nominal twin.
        self.robot = TargetModel(profile, SafetyFilter(profile), image_size, "camera",
                                 FaceMeshDetector())
        self.reach = self.robot.reach()
        self._seen_neutral: list[np.ndarray] = []
        self.unit = to_unit_box(profile.neutral, profile)

    def __call__(self, image: np.ndarray, t: float) -> Command:
        clock = time.perf_counter
        began = clock()
        person = self.detector(image, "source frame")
        timings = {"detect": clock() - began}
        if person is None:  # hold the last command
            return self._command(None, None, None, timings)
        if self.person_neutral is None and len(self._seen_neutral) < self.neutral_frames:
            self._seen_neutral.append(person)  # the person at rest; the robot holds neutral
            if len(self._seen_neutral) == self.neutral_frames:
                self.person_neutral = np.mean(self._seen_neutral, axis=0)
            return self._command(None, person, None, timings)
        began = clock()
        own = self.person_neutral if self.person_neutral is not None else \
            self.robot.perceived_neutral
        features = human_features(person, own, self.robot.perceived_neutral, self.robot.camera,
                                  self.reach, self.gain)
        timings["map"], began = clock() - began, clock()
        with torch.no_grad():
            raw = self.module(torch.as_tensor(features[None]))[0].numpy().astype(float)
        timings["infer"], began = clock() - began, clock()
        self.unit = np.clip(self.smoothing(raw, t), 0.0, 1.0)
        timings["smooth"] = clock() - began
        target = feature_pixels(features, self.robot.perceived_neutral, self.robot.camera)
        return self._command(raw, person, target, timings)

    def _command(self, raw, person, target, timings) -> Command:
        return Command(from_unit_box(self.unit, self.profile).astype(np.float32),
                       self.unit.copy(), raw, person, target, timings)

    def close(self) -> None:
        self.detector.close()
        self.robot.detector.close()
        self.robot.close()


def _landmarks_at_rest(picture: np.ndarray) -> np.ndarray:
    detector = FaceMeshDetector()
    try:
        found = detector(picture, "neutral picture")
    finally:
        detector.close()
    if found is None:
        raise SourceError("MediaPipe found no face in the neutral picture")
    return found


def _require_camera_inputs(model_dir: Path, config: dict) -> None:
    if config["inputs"] != "mediapipe":
        raise ModelError(f"{model_dir} reads {config['inputs']} inputs; mimicry sees a "
                         "person through MediaPipe: train a model with --features mediapipe")


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
    from facetwin.envs.face_env import FaceTwinEnv

    p = profiles.load(profile)
    _require_camera_inputs(model_dir, config_for(model_dir, p))  # before the source opens
    src = open_source(source, fps)
    if neutral_frames is None:  # a held picture as its own neutral would not move the face
        neutral_frames = 0 if src.still else DEFAULT_NEUTRAL_FRAMES
    out = Path(out)
    with claim_output(out):
        mimicker = Mimic(p, model_dir, image_size, smoothing, gain, neutral, neutral_frames)
        env = None
        try:
            env = FaceTwinEnv(p, backend=backend, image_size=image_size, step_mode="period",
                              features="ground_truth" if backend == "twin" else "camera",
                              port=port, camera=camera, journal=journal)
            obs, _ = env.reset(seed=0, options={"target": "neutral"})
            summary = _run(src, mimicker, env, obs, out, preview, progress, max_frames)
        finally:
            if env is not None:
                env.close()  # on the robot: ramp to neutral, torque off
            mimicker.close()
        summary |= {"profile": p.name, "model": str(model_dir), "source": src.name,
                    "backend": backend, "smoothing": asdict(mimicker.smoothing)}
        atomic_write(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


@single_threaded()
def _run(src: Source, mimicker: Mimic, env, obs, out: Path, preview, progress,
         max_frames) -> dict:
    base = env.unwrapped
    period = 1.0 / base.profile.control_rate_hz
    video = _VideoWriter(out / "mimicry.mp4", src.fps if not src.live else 30.0, base.size)
    show = _Preview() if preview or (preview is None and _Preview.possible()) else None
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
                base.backend.step(command.controls, "period")
                if k == 0:
                    command.timings["step"] = clock() - began
            periods += max(due, 0)
            if due > 0:  # else the face has not moved since the last look
                began = clock()
                obs = base.observe()
                timings["observe"].append(clock() - began)
            command.timings["read"] = read
            for stage, seconds in command.timings.items():
                timings[stage].append(seconds)
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
        "latency_ms": {stage: _percentiles(v) for stage, v in timings.items()},
        "camera_to_command_ms": _percentiles(latency),
        "jitter": {"model": _jitter(raws), "command": _jitter(units)},
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


def _percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"p50": None, "p95": None}
    ms = np.asarray(seconds) * 1e3
    return {"p50": round(float(np.median(ms)), 2), "p95": round(float(np.percentile(ms, 95)), 2)}


def _jitter(series: list[np.ndarray]) -> float | None:
    """Mean absolute frame-to-frame change of a command (0-1 per control)."""
    if len(series) < 2:
        return None
    return float(np.abs(np.diff(np.asarray(series), axis=0)).mean())


class _VideoWriter:
    """Side-by-side frames (person | robot | both landmark sets), composed and encoded on
    a thread of their own so that the loop does not wait for the encoder."""

    def __init__(self, path: Path, fps: float, size: int):
        self.path, self.size = path, size
        self._queue: queue.Queue = queue.Queue(maxsize=64)
        self._writer = imageio.get_writer(path, fps=fps, macro_block_size=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="mimic-video", daemon=True)
        self._thread.start()

    def put(self, person: np.ndarray, command: Command, obs: dict) -> None:
        if self._error is not None:
            raise RuntimeError(f"writing {self.path} failed: {self._error}")
        self._queue.put((person, command, obs["image"].copy(), obs["landmarks"].copy()))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                person, command, image, landmarks = item
                self._writer.append_data(self.compose(person, command,
                                                      {"image": image, "landmarks": landmarks}))
            except Exception as exc:  # reported to the loop at the next frame
                self._error = exc

    def compose(self, person: np.ndarray, command: Command, obs: dict) -> np.ndarray:
        s = self.size
        h, w = person.shape[:2]
        side = min(h, w)
        left = Image.fromarray(square_crop(person, s))
        if command.person is not None:
            scale = s / side
            offset = np.array([(w - side) / 2, (h - side) / 2])
            _dots(left, (command.person - offset) * scale, PERSON)
        robot = Image.fromarray(obs["image"])
        both = Image.fromarray((obs["image"] * 0.45).astype(np.uint8))
        _dots(both, obs["landmarks"], ROBOT)
        if command.target is not None:
            _dots(both, command.target, TARGET)
        sheet = Image.new("RGB", (3 * s, s))
        for i, (tile, label) in enumerate(((left, "person"), (robot, "robot"),
                                           (both, "robot (green), person (pink)"))):
            draw = ImageDraw.Draw(tile)
            draw.rectangle((0, 0, s, 14), fill=(0, 0, 0))
            draw.text((4, 1), label, fill=(255, 255, 255))
            sheet.paste(tile, (i * s, 0))
        return np.asarray(sheet)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise RuntimeError(f"writing {self.path} failed: {self._error}")


def _dots(image: Image.Image, points: np.ndarray, colour) -> None:
    ImageDraw.Draw(image).point([tuple(p) for p in np.asarray(points, float)], fill=colour)


class _Preview:
    """A window showing the side-by-side frames, where a display exists."""

    @staticmethod
    def possible() -> bool:
        import os

        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))

    def __call__(self, frame: np.ndarray) -> None:
        import cv2

        cv2.imshow("facetwin mimic", frame[..., ::-1])
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise KeyboardInterrupt

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()
