"""The one base of FaceTwin's errors."""


class FaceTwinError(Exception):
    """Input FaceTwin cannot use, or a part that failed: the message says what and where,
    in one line. Each error also derives from the built-in it refines (``ValueError`` for
    bad input, ``RuntimeError`` for a failing part), and the command line prints any of
    them as ``facetwin: message`` with exit code 2."""
