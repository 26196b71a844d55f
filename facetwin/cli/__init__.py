"""The ``facetwin`` command line: one module per command group, each registering its
commands on the shared parser (``twin``, ``optimize``, ``inverse``, ``mimic``,
``preference``, ``hardware``). Commands parse arguments and call agents; every project
error (:class:`~facetwin.errors.FaceTwinError`) is printed as one line, exit 2."""

from __future__ import annotations

import sys

from facetwin.cli import (coexpress, hardware, identify, inverse, mimic, optimize, preference,
                          twin)
from facetwin.cli.arguments import Parser
from facetwin.errors import FaceTwinError

GROUPS = (twin, optimize, inverse, mimic, coexpress, preference, identify, hardware)
# Their work is on disk as it goes.
RESUMABLE = ("demo", "collect", "optimize", "sweep", "pool", "onsets")


def build_parser() -> Parser:
    """The command line; ``.commands`` maps each command's name to its parser."""
    parser = Parser(prog="facetwin", description="FaceTwin: a digital twin of an expressive "
                                                 "robot face, and the agents that drive it")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    parser.commands = sub.choices
    return parser


def main(argv: list[str] | None = None) -> int:
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return args.func(args)
    except FaceTwinError as exc:
        _say(f"facetwin: {exc}")
        return 2
    except KeyboardInterrupt:
        _say(f"facetwin: {command or 'the command'} interrupted"
             + (": what it made is kept; run the same command again to resume"
                if command in RESUMABLE else ""))
        return 130


def _say(line: str) -> None:
    """``line`` on stderr, on a line of its own: a progress bar the error left drawn is
    closed first (otherwise the line would continue the bar's)."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()
    print(line, file=sys.stderr)
