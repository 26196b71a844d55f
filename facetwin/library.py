"""Expression libraries: named control vectors in a JSON file, bound to one profile.

    {"format": "facetwin-library/1", "profile": "emo11", "profile_sha256": "...",
     "expressions": {"happiness": {"brow_inner": 0.12, ...}, ...}}

Controls are stored by name, so a library reads the same whatever the profile's
control order. A library made for one profile (or for an earlier version of its file)
is refused by another: its values mean nothing on a different face. Loading checks the
file; the env's safety filter still checks every value on its way to the face.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from facetwin.errors import FaceTwinError
from facetwin.files import read_document, write_document
from facetwin.profile import Profile

FORMAT = "facetwin-library/1"


class LibraryError(FaceTwinError, ValueError):
    """A library file that cannot be used with this profile; the message says why."""


def save_library(path: Path, profile: Profile, expressions: dict[str, np.ndarray],
                 merge: bool = True) -> Path:
    """Write ``expressions`` (name -> control vector); with ``merge``, keep the entries
    of an existing library file that are not being replaced."""
    path = Path(path)
    table = {}
    if merge and path.exists():
        table = load_library(path, profile)
    table.update({k: np.asarray(v, dtype=float) for k, v in expressions.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_document(path, FORMAT, (profile.name, profile.sha256), {
        "expressions": {name: {c.name: round(float(x), 6) for c, x in
                               zip(profile.controls, vec)} for name, vec in table.items()},
    }, indent=2)
    return path


def load_library(path: Path, profile: Profile) -> dict[str, np.ndarray]:
    """The expressions of a library file as control vectors of ``profile``."""
    path = Path(path)
    doc = read_document(path, FORMAT, "an expression library", LibraryError, profile)
    table = doc.get("expressions")
    if not isinstance(table, dict):
        raise LibraryError(f"{path}: 'expressions' must map names to control tables")
    out = {}
    for name, values in table.items():
        if not isinstance(values, dict):
            raise LibraryError(f"{path}: expression {name!r} must map control names to values")
        for cname, value in values.items():
            if cname not in profile.names:
                raise LibraryError(f"{path}: expression {name!r} sets unknown control "
                                   f"{cname!r} of profile {profile.name!r}")
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not math.isfinite(value):
                raise LibraryError(f"{path}: expression {name!r}, control {cname!r}: "
                                   f"{value!r} is not a finite number")
        out[name] = profile.vector(values)
    return out
