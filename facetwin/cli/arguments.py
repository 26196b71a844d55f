"""Command-line values with a range, and a parser whose errors are one line.

Every number a command takes is bounded here: a size that would take all memory, a rate
that would loop for a day or a NaN that slips past every comparison is refused before
anything starts, naming the option and what it accepts.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from facetwin.errors import FaceTwinError
from facetwin.profile import IMAGE_SIZES


class BadArguments(FaceTwinError, ValueError):
    """Arguments the parser refused; the message names the command and the option."""


class UsageError(FaceTwinError, ValueError):
    """Command-line arguments that do not fit together."""


class Parser(argparse.ArgumentParser):
    """Raises :class:`BadArguments` (one line, ``facetwin: COMMAND: problem``) instead
    of printing the usage text and exiting."""

    def error(self, message: str):
        where = self.prog.removeprefix("facetwin").strip()
        raise BadArguments(f"{where + ': ' if where else ''}{message} "
                           f"(see {self.prog} --help)")


def count(low: int, high: int):
    """A whole number from ``low`` to ``high``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value
    return parse


def real(low: float, high: float, *, above: bool = False):
    """A finite number from ``low`` (excluded when ``above``) to ``high``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value > high or value < low or (above and value == low):
            bound = f"above {low:g}" if above else f"from {low:g}"
            raise argparse.ArgumentTypeError(f"{value:g} is not {bound} to {high:g}")
        return value
    return parse


def workers() -> int:
    """Twins in parallel: each is a process of about half a gigabyte busy on one core."""
    return max(2, os.cpu_count() or 1)


WORKERS = count(1, workers())
SEED = count(0, 2**32 - 1)
PORT = count(1, 65535)
IMAGE_SIZE = count(*IMAGE_SIZES)


def _parent(flag: str, **kwargs) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(flag, **kwargs)
    return parent


def engine(args: argparse.Namespace):
    """The parallel engine of ``--workers`` and ``--ray`` (see :data:`ENGINE`)."""
    from facetwin.agents.engine import Engine

    address = args.ray or os.environ.get("RAY_ADDRESS") or None
    if address is None and args.workers > workers():
        raise UsageError(f"--workers {args.workers}: this machine has {os.cpu_count()} cores; "
                         "for more workers, run on a Ray cluster (--ray ADDRESS)")
    return Engine(args.workers, address)


# Options many commands share, given to their parsers as ``parents=``.
PROFILE = _parent("--profile", default="x2c30", help="robot profile (default: x2c30)")
GIVEN_PROFILE = _parent("--profile", required=True, help="robot profile")
SEEDED = _parent("--seed", type=SEED, default=0, help="random seed (default: 0)")
ENGINE = argparse.ArgumentParser(add_help=False)
ENGINE.add_argument("--workers", type=count(1, 100_000), default=1,
                    help="workers, each with its own twin (default 1: here, in this process; "
                         "more: Ray, embedded on this machine unless --ray)")
ENGINE.add_argument("--ray", metavar="ADDRESS",
                    help="run the workers on the Ray cluster at ADDRESS (default: "
                         "$RAY_ADDRESS); this process still writes every file")


def read_rgb(path: Path):
    """A picture file as an RGB array, or a UsageError naming the file."""
    from facetwin.envs.perception import PictureError, read_picture

    try:
        return read_picture(path)
    except PictureError as exc:
        raise UsageError(str(exc)) from None
