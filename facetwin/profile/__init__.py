"""Robot profiles: the single source of truth for a face's controls.

A profile is one TOML file in ``assets/robots/``. It names every control with its range,
neutral value, mirror partner, speed and torque, says how the twin realises it (a rig
joint or a skin linkage) and which servos drive it on hardware, and carries the face's
expression library. Everything else (action spaces, the twin, safety limits, hardware)
reads the :class:`Profile` that :func:`load` returns; nothing else parses the file.

    schema.py      the loaded profile's dataclasses and the limits every profile obeys
    parse.py       reading and checking the TOML (errors name file, control and field)
    units.py       control units <-> about-neutral units and the [0, 1] control box
    couplings.py   ties, exclusive groups and forbidden combinations
"""

from facetwin.profile.couplings import Condition, Coupling, Exclusive, Forbidden, Tie
from facetwin.profile.parse import ROBOTS_DIR, available, load
from facetwin.profile.schema import (
    CONTROL_BOUND, CONTROL_RATES_HZ, GROUPS, IMAGE_SIZES, MAX_SETTLE_S, RIG_JOINTS,
    Camera, CommandError, Control, Hardware, Linkage, Profile, ProfileError, TwinRealisation,
)
from facetwin.profile.units import from_box, from_unit, to_box, to_unit

__all__ = [
    "CONTROL_BOUND", "CONTROL_RATES_HZ", "GROUPS", "IMAGE_SIZES", "MAX_SETTLE_S",
    "RIG_JOINTS", "ROBOTS_DIR", "Camera", "CommandError", "Condition", "Control",
    "Coupling", "Exclusive", "Forbidden", "Hardware", "Linkage", "Profile", "ProfileError",
    "Tie", "TwinRealisation", "available", "from_box", "from_unit", "load", "to_box",
    "to_unit",
]
