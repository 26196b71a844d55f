"""Files that survive a crash: whole files replaced atomically (every file the project
writes whole goes through :func:`atomic_write`), profile-stamped JSON documents,
append-only JSON Lines whose torn last line is dropped, and locks that a dead process
cannot keep."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from facetwin.errors import FaceTwinError


def user_cache() -> Path:
    """Where FaceTwin keeps what it can make again (fetched weights, fitted models):
    ``$XDG_CACHE_HOME/facetwin``, else ``~/.cache/facetwin``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facetwin"


class OutputError(FaceTwinError, ValueError):
    """The output folder or the run's settings cannot be used; the message says why."""


class Busy(FaceTwinError, RuntimeError):
    """Another running process holds the lock; the message names it."""


def hold_lock(path: Path, what: str):
    """Take the lock file ``path`` for this process, or raise :class:`Busy` naming the
    holder of ``what``. The kernel releases it when the returned file is closed or the
    process dies, however it dies: a lock that is free means its last holder is gone."""
    path = Path(path)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise Busy(f"{what} is in use by another running process (pid {holder})") from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    return f


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old file or
    the new one, never half of either."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_jsonl(path: Path, error: type[Exception]) -> tuple[list[dict], int]:
    """The records of ``path`` and how many torn lines (0 or 1, always the last) it had.

    A line that is not JSON anywhere but at the end raises ``error``: that is damage,
    not a crash mid-write.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {path}: {exc}") from None
    records, torn = [], 0
    for n, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if n < len(lines):
                raise error(f"{path}:{n}: not a JSON line: {line[:60]!r}") from None
            torn += 1  # the process died mid-write
    return records, torn


def claim_folder(path: Path, what: str, error: type[Exception]):
    """Make ``path`` (a folder one run at a time writes to) and hold its lock; anything
    in the way becomes ``error`` with the reason. Returns the lock to close (or use in a
    ``with``) when the run ends."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        return hold_lock(path / ".facetwin.lock", f"{what} {path}")
    except OSError as exc:
        raise error(f"cannot use {path} as the {what}: {exc.strerror or exc}") from None
    except Busy as exc:
        raise error(f"{exc}: wait for that run to end, or give another folder") from None


def claim_output(path: Path):
    """:func:`claim_folder` for a command's ``--out``."""
    return claim_folder(path, "output folder", OutputError)


def write_document(path: Path, format_tag: str, profile: tuple[str, str], body: dict,
                   indent: int | None = None) -> dict:
    """Write a profile-stamped JSON document atomically: ``format``, then the ``profile``
    it was made for and that profile's ``profile_sha256`` (``profile`` is the pair), then
    ``body``; returns the document. :func:`read_document` checks all three."""
    name, sha256 = profile
    doc = {"format": format_tag, "profile": name, "profile_sha256": sha256, **body}
    atomic_write(Path(path), json.dumps(doc, indent=indent) + "\n")
    return doc


def read_document(path: Path, format_tag: str, what: str, error: type[Exception],
                  profile=None, remedy: str = "make it again on this profile") -> dict:
    """A JSON object whose ``format`` is ``format_tag``, or ``error`` saying what
    ``path`` is not (``what``: "an expression library", "a FaceTwin model", ...). With
    ``profile``, it must also have been made for that profile as it is now (else
    ``error``, ending with ``remedy``)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path} is not {what}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != format_tag:
        raise error(f"{path} is not {what} (format {format_tag!r})")
    if profile is not None:
        profile.require_same(doc.get("profile"), doc.get("profile_sha256"), str(path), error,
                             remedy)
    return doc
