"""The one kind of plot FaceTwin draws: a few lines on a log scale, saved as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def y_scale(lines: list[tuple[np.ndarray, str]]) -> str:
    """Logarithmic, unless a value is not positive (a learned score can be anything)."""
    return "log" if all(np.min(v) > 0 for v, _ in lines if len(v)) else "linear"


def log_lines(path: Path, lines: list[tuple[np.ndarray, str]], title: str, xlabel: str,
              ylabel: str) -> Path:
    """Each ``(values, label)`` against 1, 2, 3, ...; the y axis as :func:`y_scale`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    for values, label in lines:
        ax.plot(np.arange(1, len(values) + 1), values, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale(y_scale(lines))
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
