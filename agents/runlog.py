"""The run log: every evaluation of an optimisation run, appended as it happens.

JSON Lines: a header naming the run (method, seed, batch size, profile and its hash,
target), then one line per evaluation, each written and fsynced before the next
evaluation starts. A run killed at any point leaves at most a torn last line, which
is dropped when the run resumes from the same log.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from facetwin.files import atomic_write, read_jsonl

# What must match for a log to be resumed: anything else is a different run.
IDENTITY = ("method", "seed", "batch", "profile", "profile_sha256", "target")


class RunLogError(ValueError):
    """A run log that cannot be resumed by this run; the message says why."""


class RunLog:
    def __init__(self, path: Path, header: dict):
        self.path = Path(path)
        self.records: list[dict] = []
        if self.path.exists() and self.path.stat().st_size:
            self._resume(header)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write_lines([{"kind": "header", **header}], mode="w")

    def _resume(self, header: dict) -> None:
        records, torn = read_jsonl(self.path, RunLogError)
        old, self.records = _split(records, self.path)
        for key in IDENTITY:
            if old.get(key) != header.get(key):
                raise RunLogError(
                    f"{self.path} belongs to another run ({key}: {old.get(key)!r}, this run: "
                    f"{header.get(key)!r}); give another --out, or delete the log to start over")
        if torn:  # rewrite without the torn line so appends start on a fresh line
            self._write_lines(records, mode="w")

    def append(self, record: dict) -> None:
        self._write_lines([{"kind": "eval", **record}], mode="a")
        self.records.append({"kind": "eval", **record})

    def _write_lines(self, records: list[dict], mode: str) -> None:
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        if mode == "w":
            atomic_write(self.path, text)
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def read_runlog(path: Path) -> tuple[dict, list[dict]]:
    """The header and evaluations of a run log (for plots and reports)."""
    return _split(read_jsonl(path, RunLogError)[0], path)


def _split(records: list[dict], path: Path) -> tuple[dict, list[dict]]:
    if not records or records[0].get("kind") != "header":
        raise RunLogError(f"{path} is not a run log (no header)")
    return records[0], [r for r in records[1:] if r.get("kind") == "eval"]
