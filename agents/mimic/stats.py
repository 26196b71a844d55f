"""What a mimicry run measured: latency percentiles and how much a command jitters."""

from __future__ import annotations

import numpy as np


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"p50": None, "p95": None}
    ms = np.asarray(seconds) * 1e3
    return {"p50": round(float(np.median(ms)), 2), "p95": round(float(np.percentile(ms, 95)), 2)}


def jitter(series: list[np.ndarray]) -> float | None:
    """Mean absolute frame-to-frame change of a command (0-1 per control)."""
    if len(series) < 2:
        return None
    return float(np.abs(np.diff(np.asarray(series), axis=0)).mean())
