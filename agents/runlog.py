"""The run log: every evaluation of an optimisation run, appended as it happens.

JSON Lines: a header naming the run (method, seed, batch size, profile and its hash,
target), then one line per evaluation, each written and fsynced before the next
evaluation starts. A run killed at any point leaves at most a torn last line, which
is dropped when the run resumes from the same log.

Every record carries ``chain``, a hash of the record and of the chain before it, and is
checked against a schema when read: a record that was edited (or damaged) is refused,
named by its line, instead of deciding what the run keeps.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write, read_jsonl

# What must match for a log to be resumed: anything else is a different run.
IDENTITY = ("method", "seed", "batch", "profile", "profile_sha256", "target", "objective",
            "robot")


class RunLogError(FaceTwinError, ValueError):
    """A run log that cannot be resumed by this run; the message says why."""


class RunLog:
    def __init__(self, path: Path, header: dict):
        self.path = Path(path)
        self.records: list[dict] = []
        self._chain = ""
        if self.path.exists() and self.path.stat().st_size:
            self._resume(header)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write([{"kind": "header", **header}], mode="w")

    def _resume(self, header: dict) -> None:
        records, torn = read_jsonl(self.path, RunLogError)
        old, self.records, self._chain = _checked(records, self.path)
        for key in IDENTITY:
            if old.get(key) != header.get(key):
                raise RunLogError(
                    f"{self.path} belongs to another run ({key}: {old.get(key)!r}, this run: "
                    f"{header.get(key)!r}); give another --out, or delete the log to start over")
        if torn:  # rewrite without the torn line so appends start on a fresh line
            atomic_write(self.path, "".join(_line(r) for r in records))

    def append(self, record: dict) -> None:
        self._write([{"kind": "eval", **record}], mode="a")
        self.records.append({"kind": "eval", **record})

    def _write(self, records: list[dict], mode: str) -> None:
        lines = []
        for r in records:
            self._chain = _link(self._chain, r)
            lines.append(_line({**r, "chain": self._chain}))
        if mode == "w":
            atomic_write(self.path, "".join(lines))
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())


def read_runlog(path: Path) -> tuple[dict, list[dict]]:
    """The header and evaluations of a run log (for plots and reports), checked."""
    header, evals, _ = _checked(read_jsonl(path, RunLogError)[0], path)
    return header, evals


def _line(record: dict) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def _link(previous: str, record: dict) -> str:
    body = json.dumps({k: v for k, v in record.items() if k != "chain"}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256((previous + body).encode()).hexdigest()[:16]


def _checked(records: list, path: Path) -> tuple[dict, list[dict], str]:
    """The header, the evaluations (without their chain) and the last chain value."""
    if not records or not isinstance(records[0], dict) or records[0].get("kind") != "header":
        raise RunLogError(f"{path} is not a run log (no header)")
    chain, evals = "", []
    for line, r in enumerate(records, 1):
        where = f"{path}:{line}"
        if not isinstance(r, dict):
            raise RunLogError(f"{where}: not a record: {str(r)[:60]}")
        if "chain" not in r:
            raise RunLogError(f"{where}: no checksum (a log of an older FaceTwin, or written "
                              "by hand); give another --out")
        chain = _link(chain, r)
        if r["chain"] != chain:
            raise RunLogError(f"{where}: the record does not match its checksum: it was "
                              "edited or damaged after it was written; give another --out")
        if line > 1:
            _check_eval(r, where, index=line - 2, n=len(evals[0]["controls"]) if evals else None)
            evals.append({k: v for k, v in r.items() if k != "chain"})
    return {k: v for k, v in records[0].items() if k != "chain"}, evals, chain


def _check_eval(r: dict, where: str, index: int, n: int | None) -> None:
    def fail(problem: str):
        raise RunLogError(f"{where}: {problem}")

    if r.get("kind") != "eval":
        fail(f"kind must be 'eval', got {r.get('kind')!r}")
    for key in ("batch", "batch_size", "index"):
        if not isinstance(r.get(key), int) or isinstance(r.get(key), bool) or r[key] < 0:
            fail(f"'{key}' must be a whole number, got {r.get(key)!r}")
    if r["index"] != index:
        fail(f"'index' is {r['index']}, the log's order says {index}")
    for key in ("controls", "applied"):
        v = r.get(key)
        if not (isinstance(v, list) and v and all(_finite(x) for x in v)
                and len(v) == (n or len(v))):
            fail(f"'{key}' must be {n or 'a list of'} finite numbers")
    if not _finite(r.get("score")):
        fail(f"'score' must be a finite number, got {r.get('score')!r}")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
