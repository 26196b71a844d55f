"""The hardware journal: every command that reaches the servos, append-only, timestamped.

JSON Lines: the first line names the profile (and its hash), every later line is one
event (``command``, ``torque``, ``fault``, ...). Lines are flushed in small batches, so
a crash loses at most the last batch and never corrupts what was written; a torn last
line is skipped when reading.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from facetwin.errors import FaceTwinError
from facetwin.files import read_jsonl

FLUSH_EVERY = 10  # records
FLUSH_AFTER_S = 0.1


FLOAT32_MAX = float(np.finfo(np.float32).max)  # commands are float32, as the action space


class JournalError(FaceTwinError, ValueError):
    """A journal that cannot be read or does not fit the profile it is replayed on."""


class Journal:
    def __init__(self, path: Path, profile_name: str, profile_sha256: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        self._pending = 0
        self._last_flush = time.monotonic()
        self.seq = 0
        self.append("header", profile=profile_name, profile_sha256=profile_sha256)
        self.flush()

    def append(self, kind: str, **fields) -> None:
        record = {"t": time.time(), "seq": self.seq, "kind": kind, **fields}
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.seq += 1
        self._pending += 1
        if self._pending >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_AFTER_S:
            self.flush()

    def flush(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._pending = 0
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


def read_journal(path: Path) -> tuple[dict, list[dict], int]:
    """The header, the records after it, and how many torn lines were skipped; a line
    that is not a journal record is named."""
    records, torn = read_jsonl(path, JournalError)
    for line, r in enumerate(records, 1):
        if not isinstance(r, dict) or not isinstance(r.get("kind"), str):
            raise JournalError(f"{path}:{line}: not a journal record: {str(r)[:60]}")
    if not records or records[0]["kind"] != "header":
        raise JournalError(f"{path} does not start with a journal header")
    header = records[0]
    for key in ("profile", "profile_sha256"):
        if not isinstance(header.get(key), str):
            raise JournalError(f"{path}:1: the header has no '{key}'")
    return header, records[1:], torn


def journaled_commands(path: Path, records: list[dict], n_controls: int) -> list[np.ndarray]:
    """What each ``command`` record requested, checked: ``n_controls`` finite numbers."""
    out = []
    for line, r in enumerate(records, 2):
        if r["kind"] != "command":
            continue
        v = r.get("requested")
        if not (isinstance(v, list) and len(v) == n_controls and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                and abs(x) <= FLOAT32_MAX for x in v)):
            raise JournalError(f"{path}:{line}: 'requested' must be {n_controls} finite "
                               f"numbers within float32's range (one per control of the "
                               f"header's profile), got {str(v)[:60]}")
        out.append(np.asarray(v, dtype=np.float32))
    return out
