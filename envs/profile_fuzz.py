"""Random mutations of a robot profile, and the loader's contract checked on each.

A mutation changes one ``key = value`` of a profile's TOML: another type, a value scaled
by up to a million either way, NaN or infinity, the field deleted, or an unknown field
added beside it. The contract: every mutation either loads into an env that resets and
steps, with finite observations, reward and strain, or fails with a ``ProfileError``
that names a field (or, for text that is no longer TOML, the line). Used by
``tests/test_bad_input.py`` and ``bench/profile_fuzz.py``.

    mutant, what = mutate(text, rng)
    outcome = check(mutant, "emo11", workdir, rng)   # "refused: ..." or "loaded"
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from facetwin import profile as profiles

_ASSIGNMENT = re.compile(
    r'(?P<key>[A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*'
    r'(?P<value>"[^"\n]*"|\[[^\[\]\n]*\]|[-+]?[0-9][0-9_.eE+-]*|true|false)')
_OTHER_TYPES = ('"x"', "true", "[]", "{}", "[1, 2]", "nan", "inf", "-inf", "0", "-1")


def mutate(text: str, rng: np.random.Generator) -> tuple[str, str]:
    """One random mutation of ``text``, and a description of it."""
    found = list(_ASSIGNMENT.finditer(text))
    m = found[int(rng.integers(len(found)))]
    key, value = m["key"], m["value"]
    kind = str(rng.choice(["retype", "rescale", "delete", "extra"]))
    if kind == "rescale" and re.fullmatch(r"[-+]?[0-9][0-9_.eE+-]*", value):
        scaled = float(value.replace("_", "")) * 10 ** rng.uniform(-6, 6) * rng.choice([1, -1])
        return _splice(text, m.start("value"), m.end("value"), repr(scaled)), \
            f"{key} = {value} -> {scaled:.3g}"
    if kind == "delete":
        start, end = m.start(), m.end()
        if text[end:end + 2] == ", ":
            end += 2
        elif text[start - 2:start] == ", ":
            start -= 2
        return _splice(text, start, end, ""), f"{key} deleted"
    if kind == "extra":
        inline = text.rfind("{", 0, m.start()) > text.rfind("\n", 0, m.start())
        extra = ", bogus_field = 1" if inline else "\nbogus_field = 1"
        return _splice(text, m.end(), m.end(), extra), f"unknown field beside {key}"
    other = str(rng.choice(_OTHER_TYPES))
    return _splice(text, m.start("value"), m.end("value"), other), f"{key} = {value} -> {other}"


def _splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def check(text: str, shipped: str, workdir: Path, rng: np.random.Generator) -> str:
    """Write ``text`` (a mutant of the ``shipped`` profile) as a profile, load it, and if
    it loads make an env and step it. Returns what happened; raises AssertionError when
    the contract is broken."""
    from facetwin.envs.face_env import FaceTwinEnv

    path = Path(workdir) / "mutant.toml"
    path.write_text(text)
    try:
        profile = profiles.load(path)
        _stand_in_envelope(profile, shipped)
        env = FaceTwinEnv(profile, image_size=32, step_mode="period")
    except profiles.ProfileError as exc:  # the loader's, or the twin's where face meets profile
        message = str(exc)
        assert str(path) in message and ("field '" in message or "not valid TOML" in message), \
            f"a ProfileError that names no field: {message}"
        return f"refused: {message.split(': ', 2)[-1]}"
    try:
        env.reset(seed=int(rng.integers(1 << 16)))
        for _ in range(2):
            obs, reward, _, _, info = env.step(rng.uniform(profile.low, profile.high))
            values = [reward, info["strain_max"], info["settle_s"]]
            assert all(np.isfinite(values)), f"non-finite step: {values}"
            assert all(np.isfinite(obs[k]).all() for k in ("landmarks", "controls",
                                                           "achieved_goal")), "non-finite obs"
    finally:
        env.close()
    return "loaded"


def _stand_in_envelope(profile: profiles.Profile, shipped: str) -> None:
    """The shipped profile's strain envelope, re-stamped for the mutant (refitting one
    costs seconds; the mutant's own envelope is not what is under test)."""
    envelope = json.loads(profiles.load(shipped).companion("envelope.json").read_text())
    envelope["profile_sha256"] = profile.sha256
    profile.companion("envelope.json").write_text(json.dumps(envelope))
