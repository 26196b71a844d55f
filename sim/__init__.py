"""The twin: MuJoCo physics, the face model, rendering, ground-truth landmarks."""

from facetwin.sim import gl  # noqa: F401  (settles the GL stack before MuJoCo or pyrender load)
