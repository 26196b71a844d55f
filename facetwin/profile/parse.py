"""Reading a profile's TOML: every field checked, with errors that name the file, the
control and the field."""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.landmarks import N_SKIN
from facetwin.profile.couplings import Condition, Coupling, Exclusive, Forbidden, Tie
from facetwin.profile.schema import (
    CONTROL_BOUND, CONTROL_RATES_HZ, GROUPS, IMAGE_SIZES, RIG_JOINTS, TWIN_BOUNDS, Camera,
    Control, Hardware, Linkage, Profile, ProfileError, TwinRealisation,
)

ROBOTS_DIR = Path(str(resources.files("facetwin.assets") / "robots"))


def available() -> list[str]:
    return sorted(p.stem for p in ROBOTS_DIR.glob("*.toml"))


def load(name_or_path: str | Path) -> Profile:
    """Load a profile by name (``"x2c30"``) or path, validating every field."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        if str(name_or_path) not in available():
            raise ProfileError(f"no robot profile {str(name_or_path)[:60]!r}; "
                               f"available: {', '.join(available())}")
        path = ROBOTS_DIR / f"{name_or_path}.toml"
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read robot profile {path}: {exc}") from None
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    return _Parser(path, raw, hashlib.sha256(raw_bytes).hexdigest()).profile()


class _Parser:
    """Reads a profile's TOML. Every number has a physical range and every table its
    type and known keys, checked where the field is read; errors name the file, the
    place (control, coupling, table) and the field."""

    def __init__(self, path: Path, raw: dict[str, Any], sha256: str):
        self.path, self.raw, self.sha256 = path, raw, sha256

    def fail(self, where: str, field_name: str, problem: str) -> ProfileError:
        return ProfileError.at(self.path, where, field_name, problem)

    def table(self, parent: dict, key: str, where: str, known: set[str],
              required: bool = False) -> dict:
        """``parent[key]`` as a table with no keys outside ``known`` ({} when absent)."""
        if key not in parent and not required:
            return {}
        value = parent.get(key)
        if not isinstance(value, dict):
            raise self.fail(where, key, f"must be a table, got {value!r}")
        self.known(value, known, key if where == "profile" else where)
        return value

    def known(self, table: dict, known: set[str], where: str) -> None:
        unknown = sorted(set(table) - known)
        if unknown:
            raise self.fail(where, unknown[0], f"unknown field (known: {', '.join(sorted(known))})")

    def number(self, table: dict, key: str, where: str, default: float | None = None,
               within: tuple[float, float] | None = None, unit: str = "",
               integer: bool = False) -> float:
        """A finite number, inside ``within`` (inclusive) when given."""
        if key not in table:
            if default is None:
                raise self.fail(where, key, "missing")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise self.fail(where, key, f"must be a finite number, got {value!r}")
        if integer and value != int(value):
            raise self.fail(where, key, f"must be a whole number, got {value!r}")
        if within is not None and not within[0] <= value <= within[1]:
            raise self.fail(where, key, f"{value!r} is outside {within[0]:g}-{within[1]:g}"
                                        f"{' ' + unit if unit else ''}")
        return int(value) if integer else float(value)

    def profile(self) -> Profile:
        raw = self.raw
        self.known(raw, {"name", "description", "control_rate_hz", "camera", "servo", "safety",
                         "hardware", "controls", "couplings", "expressions"}, "profile")
        name = raw.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            raise self.fail("profile", "name", f"must be an identifier, got {name!r}")
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise self.fail("profile", "description", f"must be a string, got {description!r}")
        cam = self.table(raw, "camera", "profile", {"distance", "height", "fovy_deg", "size"})
        camera = Camera(
            distance=self.number(cam, "distance", "camera", 0.5, (0.05, 5.0), "m"),
            height=self.number(cam, "height", "camera", 0.0, (-1.0, 1.0), "m"),
            fovy_deg=self.number(cam, "fovy_deg", "camera", 30.0, (5.0, 120.0), "deg"),
            size=self.number(cam, "size", "camera", 256, IMAGE_SIZES, "pixels", integer=True),
        )
        servo = self.table(raw, "servo", "profile", {"full_range_s", "torque_nm"})
        full_range_s = self.number(servo, "full_range_s", "servo", 0.15, (0.005, 60.0), "s")
        torque = self.number(servo, "torque_nm", "servo", 1.5, (0.01, 100.0), "N m")

        entries = raw.get("controls")
        if not isinstance(entries, list) or not entries:
            raise self.fail("profile", "controls", "missing or empty")
        controls = [self.control(i, e, full_range_s, torque) for i, e in enumerate(entries)]
        self.check_relations(controls)
        safety = self.table(raw, "safety", "profile", {"watchdog_s", "strain_ceiling"})
        names = {c.name: c for c in controls}
        couplings = raw.get("couplings", [])
        if not isinstance(couplings, list):
            raise self.fail("profile", "couplings", f"must be a list of tables, got {couplings!r}")
        profile = Profile(
            name=name,
            description=description,
            path=self.path,
            sha256=self.sha256,
            control_rate_hz=self.number(raw, "control_rate_hz", "profile", 50.0,
                                        CONTROL_RATES_HZ, "Hz"),
            camera=camera,
            controls=tuple(controls),
            expressions={},
            watchdog_s=self.number(safety, "watchdog_s", "safety", 0.5, (0.01, 60.0), "s"),
            strain_ceiling=self.number(safety, "strain_ceiling", "safety", 0.35, (0.01, 10.0)),
            couplings=tuple(self.coupling(i, e, names) for i, e in enumerate(couplings)),
            hardware=self.hardware(self.table(raw, "hardware", "profile", {
                "protocol", "model", "baudrate", "ticks_per_turn", "travel_deg",
                "reply_timeout_ms"})),
        )
        profile.expressions.update(self.expressions(profile))
        return profile

    def control(self, i: int, entry: Any, full_range_s: float, torque: float) -> Control:
        if not isinstance(entry, dict):
            raise self.fail(f"control #{i}", "controls", "must be a table")
        name = entry.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            raise self.fail(f"control #{i}", "name", f"must be an identifier, got {name!r}")
        where = f"control '{name}'"
        self.known(entry, {"name", "group", "range", "neutral", "mirror", "servos",
                           "servo_direction", "max_speed", "torque_nm", "twin"}, where)
        group = entry.get("group")
        if group not in GROUPS:
            raise self.fail(where, "group", f"{group!r} is not one of {', '.join(GROUPS)}")
        rng = entry.get("range")
        if not (isinstance(rng, list) and len(rng) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v) for v in rng)):
            raise self.fail(where, "range", f"must be [low, high] numbers, got {rng!r}")
        low, high = float(rng[0]), float(rng[1])
        if not -CONTROL_BOUND <= low < high <= CONTROL_BOUND:
            raise self.fail(where, "range", f"[{low}, {high}]: low must be below high, both "
                                            f"within +-{CONTROL_BOUND:g}")
        neutral = self.number(entry, "neutral", where)
        if not low <= neutral <= high:
            raise self.fail(where, "neutral", f"{neutral} is outside the range [{low}, {high}]")
        mirror = entry.get("mirror")
        if mirror is not None and not isinstance(mirror, str):
            raise self.fail(where, "mirror", f"must be a control name, got {mirror!r}")
        servos = entry.get("servos", [])
        if not (isinstance(servos, list) and all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 254 for s in servos)):
            raise self.fail(where, "servos", f"must be a list of bus ids 0-253, got {servos!r}")
        width = high - low
        return Control(
            name=name, group=group, low=low, high=high, neutral=neutral, mirror=mirror,
            # Its whole range in 1 ms to 60 s: anything else is a unit slip.
            max_speed=self.number(entry, "max_speed", where, width / full_range_s,
                                  (width / 60.0, width / 0.001), "units/s"),
            torque=self.number(entry, "torque_nm", where, torque, (0.01, 100.0), "N m"),
            servos=tuple(servos),
            twin=self.twin(entry.get("twin"), where),
            servo_direction=self.direction(entry, where),
        )

    def direction(self, entry: dict, where: str) -> int:
        value = entry.get("servo_direction", 1)
        if value not in (1, -1) or isinstance(value, bool):
            raise self.fail(where, "servo_direction", f"must be 1 or -1, got {value!r}")
        return int(value)

    def hardware(self, table: dict) -> Hardware:
        protocol = table.get("protocol", "feetech-sts")
        if protocol not in ("feetech-sts",):
            raise self.fail("hardware", "protocol", f"{protocol!r} is not supported "
                                                    "(supported: feetech-sts)")
        # The servo model and baud rate are checked by the bus that opens them
        # (facetwin.hardware): the profile knows no servo tables.
        model = table.get("model", Hardware.model)
        if not isinstance(model, str) or not model:
            raise self.fail("hardware", "model", f"must be a servo model's name, got {model!r}")
        baudrate = self.number(table, "baudrate", "hardware", 1_000_000, (1200, 4_000_000),
                               "baud", integer=True)
        return Hardware(
            protocol=protocol, model=model, baudrate=baudrate,
            ticks_per_turn=self.number(table, "ticks_per_turn", "hardware", 4096, (256, 65536),
                                       integer=True),
            travel_deg=self.number(table, "travel_deg", "hardware", 120.0, (1.0, 360.0), "deg"),
            reply_timeout_s=self.number(table, "reply_timeout_ms", "hardware", 10.0,
                                        (0.1, 1000.0), "ms") / 1e3,
        )

    def coupling(self, i: int, entry: Any, controls: dict[str, Control]) -> Coupling:
        where = f"coupling #{i}"
        if not isinstance(entry, dict):
            raise self.fail(where, "couplings", "must be a table")

        def names(value: Any, key: str) -> tuple[str, ...]:
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                raise self.fail(where, key, f"must be a non-empty list of control names, "
                                            f"got {value!r}")
            unknown = [v for v in value if v not in controls]
            if unknown:
                raise self.fail(where, key, f"unknown controls {unknown}")
            return tuple(value)

        kind = entry.get("kind")
        self.known(entry, {"kind", "controls", "groups", "active_above", "when"}, where)
        if kind == "tie":
            tied = names(entry.get("controls"), "controls")
            if len(set(tied)) < 2:
                raise self.fail(where, "controls", "a tie needs at least two controls")
            return Tie(tied)
        if kind == "exclusive":
            groups = entry.get("groups")
            if not (isinstance(groups, list) and len(groups) >= 2):
                raise self.fail(where, "groups", "must list at least two groups of controls")
            parsed = tuple(names(g, "groups") for g in groups)
            flat = [n for g in parsed for n in g]
            if len(flat) != len(set(flat)):
                raise self.fail(where, "groups", "a control appears in more than one group")
            return Exclusive(parsed, self.number(entry, "active_above", where, 0.02,
                                                 (0.001, 0.999), "of the range"))
        if kind == "forbidden":
            when = entry.get("when")
            if not (isinstance(when, list) and len(when) >= 2):
                raise self.fail(where, "when", "must list at least two conditions")
            return Forbidden(tuple(self.condition(where, c, controls) for c in when))
        raise self.fail(where, "kind", f"{kind!r} is not one of tie, exclusive, forbidden")

    def condition(self, where: str, entry: Any, controls: dict[str, Control]) -> Condition:
        if not isinstance(entry, dict) or entry.get("control") not in controls:
            raise self.fail(where, "when", f"each condition needs a known 'control', "
                                           f"got {entry!r}")
        self.known(entry, {"control", "above", "below"}, where)
        c = controls[entry["control"]]
        if ("above" in entry) == ("below" in entry):
            raise self.fail(where, "when", f"condition on '{c.name}' needs exactly one of "
                                           "'above' or 'below'")
        side = "above" if "above" in entry else "below"
        value = self.number(entry, side, where)
        if not (c.neutral < value < c.high if side == "above" else c.low < value < c.neutral):
            raise self.fail(where, "when", f"'{c.name}' {side} {value}: the threshold must lie "
                                           f"between neutral {c.neutral} and the range's "
                                           f"{'high' if side == 'above' else 'low'} end")
        return Condition(c.name, **{side: value})

    def twin(self, spec: Any, where: str) -> TwinRealisation:
        if not isinstance(spec, dict):
            raise self.fail(where, "twin", "missing (how the twin realises the control)")
        if "mirror_of" in spec:
            self.known(spec, {"mirror_of"}, where + " twin")
            if not isinstance(spec["mirror_of"], str):
                raise self.fail(where, "twin.mirror_of", f"must be a control name, got "
                                                         f"{spec['mirror_of']!r}")
            return TwinRealisation(0.0, 0.0, mirror_of=spec["mirror_of"])
        self.known(spec, {"at_low", "at_high", "joints", "landmarks", "direction", "parent",
                          "symmetric"}, where + " twin")
        bound, unit = TWIN_BOUNDS["joints" if "joints" in spec else "landmarks"]
        at_low = self.number(spec, "at_low", where + " twin", within=(-bound, bound), unit=unit)
        at_high = self.number(spec, "at_high", where + " twin", within=(-bound, bound), unit=unit)
        if "joints" in spec:
            joints = spec["joints"]
            if not (isinstance(joints, list) and joints):
                raise self.fail(where, "twin.joints", "must be a non-empty list")
            for j in joints:
                if j not in RIG_JOINTS:
                    raise self.fail(where, "twin.joints",
                                    f"unknown rig joint {j!r}; known: {', '.join(RIG_JOINTS)}")
            return TwinRealisation(at_low, at_high, joints=tuple(joints))
        marks = spec.get("landmarks")
        if not (isinstance(marks, list) and all(
                isinstance(m, int) and not isinstance(m, bool) for m in marks)):
            raise self.fail(where, "twin.landmarks",
                            "give either twin.joints or twin.landmarks (skin landmark ids)")
        bad = [m for m in marks if not 0 <= m < N_SKIN]
        if bad:
            raise self.fail(where, "twin.landmarks",
                            f"ids {bad} are not skin landmarks (0-{N_SKIN - 1})")
        direction = spec.get("direction")
        if not (isinstance(direction, list) and len(direction) == 3
                and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v) for v in direction)
                and np.linalg.norm(direction) > 0):
            raise self.fail(where, "twin.direction", f"must be a non-zero [x, y, z], "
                                                     f"got {direction!r}")
        parent, symmetric = spec.get("parent", "head"), spec.get("symmetric", False)
        if not isinstance(parent, str):
            raise self.fail(where, "twin.parent", f"must be head, jaw or a control, got {parent!r}")
        if not isinstance(symmetric, bool):
            raise self.fail(where, "twin.symmetric", f"must be true or false, got {symmetric!r}")
        unit = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
        return TwinRealisation(at_low, at_high, linkage=Linkage(
            landmarks=tuple(marks), direction=tuple(float(v) for v in unit), parent=parent,
            symmetric=symmetric))

    def check_relations(self, controls: list[Control]) -> None:
        by_name: dict[str, Control] = {}
        for c in controls:
            if c.name in by_name:
                raise self.fail(f"control '{c.name}'", "name", "duplicate control name")
            by_name[c.name] = c
        for i, c in enumerate(controls):
            if c.twin.mirror_of is not None:
                controls[i] = by_name[c.name] = replace(c, twin=self.mirrored(c, by_name))
        seen_servos: dict[int, str] = {}
        for c in controls:
            where = f"control '{c.name}'"
            if c.mirror is not None:
                partner = by_name.get(c.mirror)
                if partner is None:
                    raise self.fail(where, "mirror", f"unknown mirror partner {c.mirror!r}")
                if partner.mirror != c.name:
                    raise self.fail(where, "mirror", f"partner {c.mirror!r} does not name "
                                                     f"{c.name!r} as its mirror")
            link = c.twin.linkage
            if link is not None and link.parent not in ("head", "jaw"):
                parent = by_name.get(link.parent)
                if parent is None or parent.twin.linkage is None:
                    raise self.fail(where, "twin.parent",
                                    f"{link.parent!r} is neither head, jaw nor a linkage control")
            for s in c.servos:
                if s in seen_servos:
                    raise self.fail(where, "servos", f"servo id {s} is also used by control "
                                                     f"'{seen_servos[s]}'")
                seen_servos[s] = c.name

    def mirrored(self, c: Control, by_name: dict[str, Control]) -> TwinRealisation:
        where = f"control '{c.name}'"
        source = by_name.get(c.twin.mirror_of)
        if source is None or source.twin.mirror_of is not None:
            raise self.fail(where, "twin.mirror_of",
                            f"{c.twin.mirror_of!r} is not a control with its own twin")
        if source.mirror != c.name:
            raise self.fail(where, "twin.mirror_of",
                            f"{source.name!r} is not this control's mirror partner")
        t = source.twin
        swap = {"_left": "_right", "_right": "_left"}
        joints = tuple(next((j[:-len(k)] + v for k, v in swap.items() if j.endswith(k)), j)
                       for j in t.joints)
        link = t.linkage
        if link is not None:
            parent = link.parent
            if parent not in ("head", "jaw"):
                parent = by_name[parent].mirror or parent
            link = replace(link, parent=parent, mirrored=not link.mirrored)
        return TwinRealisation(t.at_low, t.at_high, joints=joints, linkage=link)

    def expressions(self, profile: Profile) -> dict[str, np.ndarray]:
        table = self.raw.get("expressions", {})
        if not isinstance(table, dict):
            raise self.fail("expressions", "expressions", f"must be a table of tables, got "
                                                          f"{table!r}")
        library = {"neutral": profile.neutral.copy()}
        for expr, values in table.items():
            where = f"expression '{expr}'"
            if not isinstance(values, dict):
                raise self.fail(where, "values", "must be a table of control = value")
            for cname, value in values.items():
                try:
                    c = profile.control(cname)
                except KeyError:
                    raise self.fail(where, cname, "unknown control") from None
                v = self.number(values, cname, where)
                if not c.low <= v <= c.high:
                    raise self.fail(where, cname, f"{v} is outside the range [{c.low}, {c.high}]")
            library[expr] = profile.vector({k: float(v) for k, v in values.items()})
        return library
