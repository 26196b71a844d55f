"""FaceTwin: a simulation-first digital twin of an expressive robot face."""

__version__ = "0.1.0"
