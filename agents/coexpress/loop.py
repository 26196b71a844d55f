"""Live coexpression: the mimicry loop (:mod:`facetwin.agents.mimic.loop`) with the
coexpression pipeline (:mod:`.live`) in it.

    summary = coexpress("emo11", Path("models/emo11-mp"), Path("models/predictor"),
                        "clip.mp4", Path("out/coexpress"))

writes ``coexpression.mp4`` (person | robot | both landmark sets), ``frames.jsonl`` and
``summary.json``: what ``mimic`` writes, and each onset the robot acted on (when, and
the face it predicted) and, per expression, when the person peaked, when the robot was
80 % of its way there, and the difference (:mod:`.timing`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.agents.coexpress.live import Coexpress
from facetwin.agents.coexpress.predictor import load_predictor
from facetwin.agents.coexpress.timing import expression_timing
from facetwin.agents.inverse.store import config_for
from facetwin.agents.mimic.loop import drive
from facetwin.agents.mimic.pipeline import DEFAULT_NEUTRAL_FRAMES, require_camera_inputs
from facetwin.agents.mimic.smoothing import OneEuroFilter
from facetwin.agents.mimic.sources import open_source


def coexpress(profile: str, model_dir: Path, predictor_dir: Path, source: str | Path,
              out: Path, backend: str = "twin", port: str | None = None,
              camera: str | None = None, journal: Path | None = None,
              neutral: np.ndarray | None = None,
              neutral_frames: int = DEFAULT_NEUTRAL_FRAMES,
              smoothing: OneEuroFilter | None = None, gain: float = 1.0,
              image_size: int = 256, fps: float = 30.0, preview: bool | None = None,
              progress: bool = True, max_frames: int | None = None,
              latency_s: float = 0.0) -> dict:
    """Coexpress with the person in ``source``; the arguments are :func:`mimic`'s, plus
    the predictive model and the robot's capture-to-motion latency to make up for.
    Returns the summary (also ``out/summary.json``)."""
    p = profiles.load(profile)
    require_camera_inputs(model_dir, config_for(model_dir, p))
    load_predictor(predictor_dir)  # a broken predictor is named before the source opens
    src = open_source(source, fps)
    return drive(
        p, lambda: Coexpress(p, model_dir, predictor_dir, image_size, smoothing, gain,
                             neutral, neutral_frames, src.fps, latency_s),
        src, Path(out), "coexpression.mp4", backend, port, camera, journal, image_size,
        preview, progress, max_frames,
        {"model": str(model_dir), "predictor": str(predictor_dir), "latency_s": latency_s},
        _timing(p))


def _timing(p: profiles.Profile):
    def finish(pipeline: Coexpress, trace: list) -> dict:
        if pipeline.person_neutral is None or not trace:
            return {"onsets": pipeline.onsets, "expressions": []}
        times, people, present = zip(*trace)
        units = [p.to_box(c) for c in present]
        rows = expression_timing(times, people, pipeline.person_neutral, units)
        late = [r["late_s"] for r in rows if r["late_s"] is not None]
        return {"onsets": pipeline.onsets, "expressions": rows,
                "median_late_s": float(np.median(late)) if late else None}
    return finish
