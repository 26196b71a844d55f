"""The answer log: every comparison a person (or the simulated annotator) made, one JSON
line each, fsynced before the answer is acknowledged.

    {"annotator": "ana", "time": "2026-11-22T10:01:02.345Z", "pair": ["c0003", "c0041"],
     "answer": "left", "strategy": "mergesort"}

``pair`` is (left, right) as shown; ``answer`` is ``left``, ``right`` or ``tie`` (can't
tell). The log holds exactly the answers that count: undo removes an annotator's last
answer by replacing the file atomically, so a crash leaves the old log or the new one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write, read_jsonl

ANSWERS = ("left", "right", "tie")


class AnswerLogError(FaceTwinError, ValueError):
    """An answer log that cannot be used; the message says why."""


class AnswerLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.records: list[dict] = []
        if self.path.exists():
            self.records, torn = _read(self.path)
            if torn:  # the process died mid-line: that answer was never acknowledged
                self._rewrite()

    def append(self, annotator: str, pair: tuple[str, str], answer: str,
               strategy: str) -> dict:
        record = {"annotator": annotator, "time": _now(), "pair": list(pair),
                  "answer": answer, "strategy": strategy}
        check_record(record, "answer")
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.records.append(record)
        return record

    def undo(self, annotator: str) -> dict | None:
        """Remove ``annotator``'s last answer; returns it (None when there is none)."""
        with self._lock:
            for i in range(len(self.records) - 1, -1, -1):
                if self.records[i]["annotator"] == annotator:
                    removed = self.records.pop(i)
                    self._rewrite()
                    return removed
        return None

    def of(self, annotator: str | None = None) -> list[dict]:
        with self._lock:
            return [r for r in self.records if annotator in (None, r["annotator"])]

    def _rewrite(self) -> None:
        atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in self.records))


def read_answers(path: Path) -> list[dict]:
    """The answers that count, read only (a torn last line is left for the server that
    writes the log to drop)."""
    path = Path(path)
    if not path.exists():
        raise AnswerLogError(f"no answer log at {path}")
    return _read(path)[0]


def _read(path: Path) -> tuple[list[dict], int]:
    records, torn = read_jsonl(path, AnswerLogError)
    for n, r in enumerate(records, 1):
        check_record(r, f"{path}:{n}")
    return records, torn


def check_record(r, where: str) -> None:
    if not isinstance(r, dict):
        raise AnswerLogError(f"{where}: not an answer record")
    pair = r.get("pair")
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(i, str) for i in pair)
            and pair[0] != pair[1]):
        raise AnswerLogError(f"{where}: pair must be two different item ids, got {pair!r}")
    if r.get("answer") not in ANSWERS:
        raise AnswerLogError(f"{where}: answer must be one of {', '.join(ANSWERS)}, "
                             f"got {r.get('answer')!r}")
    if not isinstance(r.get("annotator"), str) or not r["annotator"]:
        raise AnswerLogError(f"{where}: no annotator name")


def verdicts(records: list[dict]) -> dict[tuple[str, str], int]:
    """(a, b) -> +1 when a was preferred, -1 when b was, 0 for can't tell; both orders,
    the latest answer for a pair counting."""
    out = {}
    for r in records:
        left, right = r["pair"]
        v = {"left": 1, "right": -1, "tie": 0}[r["answer"]]
        out[left, right], out[right, left] = v, -v
    return out


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
