"""The face asset made by ``assets/make_face.py``: mask geometry, texture and rig points."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Eye:
    centre: np.ndarray  # metres, head frame
    radius: float
    iris_radius: float
    pupil_radius: float


@dataclass(frozen=True)
class Teeth:
    arch: np.ndarray  # (n, 2): x, z of the upper teeth's front, subject's right to left
    upper: tuple[float, float]  # y of the upper teeth's top and edge, head frame
    lower: tuple[float, float]  # y of the lower teeth's edge and bottom (on the jaw)
    lower_behind: float  # metres the lower teeth sit behind the upper ones


@dataclass(frozen=True)
class Wrinkle:
    """A fold painted into ``wrinkles.png`` (channel 1 == ``index``), shown as the skin
    across it is compressed: 1 - length / rest length of ``pairs``, averaged, from
    ``onset`` (nothing) to ``full``."""

    name: str
    index: int
    pairs: np.ndarray  # (k, 2) landmark indices
    onset: float
    full: float


@dataclass(frozen=True)
class FaceAsset:
    vertices: np.ndarray  # (N_SKIN, 3) rest positions (facetwin.landmarks), metres, head frame
    uv: np.ndarray  # (N_SKIN, 2)
    triangles: np.ndarray  # (T, 3), counter-clockwise seen from the front
    mirror: np.ndarray  # (N_SKIN,) index of each vertex's mirror image
    lids: dict[str, list[int]]  # "left_upper" ... margins between the eye corners
    eyes: dict[str, Eye]
    skull_centre: np.ndarray
    skull_axes: np.ndarray
    skull_skin: list[int]  # skin points fixed to the skull (border, nose bridge)
    jaw_pivot: np.ndarray
    jaw_skin: list[int]  # skin points carried by the jaw (chin, lower jaw line)
    mouth_centre: np.ndarray
    mouth_width: float
    lips: np.ndarray  # every skin vertex of the lips (contours and the points between)
    teeth: Teeth
    iris_rim_directions: np.ndarray  # (4, 2)
    colours: dict[str, tuple[float, float, float]]
    texture_path: Path
    wrinkles: list[Wrinkle]
    wrinkles_path: Path
    sha256: str  # of face.json: what was measured on one face is not reused on another

    def mirror_point(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(p) * [-1.0, 1.0, 1.0]


@lru_cache(maxsize=1)
def load_face() -> FaceAsset:
    """The shipped face asset."""
    return read_face(Path(str(resources.files("facetwin.assets") / "face")))


def read_face(folder: Path) -> FaceAsset:
    """The face asset in ``folder`` (face.json, texture.png, wrinkles.png)."""
    folder = Path(folder)
    data = (folder / "face.json").read_bytes()
    raw = json.loads(data)
    arr = np.asarray
    return FaceAsset(
        vertices=arr(raw["vertices"], dtype=float),
        uv=arr(raw["uv"], dtype=float),
        triangles=arr(raw["triangles"], dtype=np.int64),
        mirror=arr(raw["mirror"], dtype=np.int64),
        lids={k: list(v) for k, v in raw["lids"].items()},
        eyes={side: Eye(arr(e["centre"], dtype=float), e["radius"], e["iris_radius"],
                        e["pupil_radius"]) for side, e in raw["eyes"].items()},
        skull_centre=arr(raw["skull"]["centre"], dtype=float),
        skull_axes=arr(raw["skull"]["axes"], dtype=float),
        skull_skin=list(raw["skull"]["skin"]),
        jaw_pivot=arr(raw["jaw"]["pivot"], dtype=float),
        jaw_skin=list(raw["jaw"]["skin"]),
        mouth_centre=arr(raw["mouth"]["centre"], dtype=float),
        mouth_width=float(raw["mouth"]["width"]),
        lips=arr(raw["mouth"]["lip_vertices"], dtype=np.int64),
        teeth=Teeth(arr(raw["mouth"]["teeth"]["arch"], dtype=float),
                    tuple(raw["mouth"]["teeth"]["upper"]), tuple(raw["mouth"]["teeth"]["lower"]),
                    float(raw["mouth"]["teeth"]["lower_behind"])),
        iris_rim_directions=arr(raw["iris_rim_directions"], dtype=float),
        colours={k: tuple(v) for k, v in raw["colours"].items()},
        texture_path=folder / "texture.png",
        wrinkles=[Wrinkle(w["name"], i, arr(w["pairs"], dtype=np.int64), float(w["onset"]),
                          float(w["full"])) for i, w in enumerate(raw["wrinkles"], start=1)],
        wrinkles_path=folder / "wrinkles.png",
        sha256=hashlib.sha256(data).hexdigest(),
    )
