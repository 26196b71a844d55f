"""Candidate pools: a diverse set of faces for people to compare (HAPI, Sec. III-A).

    pool = build_pool("emo11", "happiness", Path("out/pool"), size=100)
    pool.ids, pool.controls, pool.features, pool.image_path(pool.ids[0])

Candidates come from random safe commands about the expression (the default), from the
evaluations of optimisation runs toward it, or from a dataset. Each is applied to the
twin through the safety filter and rendered; the pool keeps the ``size`` most diverse by
HAPI's pixel cosine distance (farthest-point selection, starting from the library's own
expression, so the pool always holds it). A pool folder holds:

- ``pool.json``: profile (and its sha256), expression, question, and per item its id,
  origin (``pool``, or ``added`` for faces added later, e.g. by preferential BO) and the
  controls the face applied, by name;
- ``features.safetensors``: the items' expression features (rows in item order);
- ``images/ID.png``: each item's render.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.numpy import load as load_tensors, save as save_tensors
from tqdm import tqdm

from facetwin import profile as profiles
from facetwin.errors import FaceTwinError
from facetwin.figures import save_png
from facetwin.files import (
    atomic_write, claim_folder, read_document, read_jsonl, write_document,
)

FORMAT = "facetwin-pool/1"
SOURCES = ("random", "runs", "dataset")
CANDIDATES_PER_ITEM = 4  # the pool is chosen from this many candidates per item
STAGING = "candidates"  # a build's renders, kept until the pool is written
# Random candidates: this fraction of each range about the way. The faces move a lot per
# unit (a corner 9 mm up at full range): at 8% the noise drowned the expression's way.
RANDOM_SPREAD = 0.015


class PoolError(FaceTwinError, ValueError):
    """A pool folder that cannot be used; the message says why."""


ITEM_ID = re.compile(r"[A-Za-z0-9_]{1,32}")  # ids become file names: nothing else


@dataclass
class Pool:
    path: Path
    profile: str
    profile_sha256: str
    expression: str
    question: str
    control_names: list[str]
    ids: list[str]
    origins: list[str]
    controls: np.ndarray  # (n, n_controls), what each face applied
    features: np.ndarray  # (n, n_features)
    image_size: int
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self.path = Path(self.path).absolute()

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, item_id: str) -> int:
        try:
            return self.ids.index(item_id)
        except ValueError:
            raise PoolError(f"pool {self.path} has no item {item_id!r}") from None

    def image_path(self, item_id: str) -> Path:
        self.index(item_id)  # an unknown id never becomes a path
        return self.path / "images" / f"{item_id}.png"

    def image(self, item_id: str) -> np.ndarray:
        """The render of ``item_id`` (RGB), or PoolError naming a damaged one."""
        path = self.image_path(item_id)
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as exc:  # PIL's errors for bad images are OSErrors
            raise PoolError(f"pool {self.path} is damaged: {path.name} is not a picture "
                            f"({exc})") from None

    def add(self, controls, features, image: np.ndarray, origin: str = "added") -> str:
        """Add a face (its applied controls, features and render); returns its id."""
        return self.add_many([(controls, features, image)], origin)[0]

    def add_many(self, faces, origin: str = "added") -> list[str]:
        """Add faces ((controls, features, render) each) and save the pool once."""
        with self._lock:
            ids = []
            for controls, features, image in faces:
                item_id = f"c{len(self.ids):04d}"
                save_png(self.path / "images" / f"{item_id}.png", image)
                # Rows before the id: a reader that sees the id finds its row.
                self.controls = np.vstack([self.controls, np.asarray(controls, float)[None]])
                self.features = np.vstack([self.features,
                                           np.asarray(features, np.float32)[None]])
                self.origins.append(origin)
                self.ids.append(item_id)
                ids.append(item_id)
            self._save()
            return ids

    def _save(self) -> None:
        # Features first: pool.json is the index, and rows past it are ignored on load.
        atomic_write(self.path / "features.safetensors",
                     save_tensors({"features": np.ascontiguousarray(self.features,
                                                                    dtype=np.float32)}))
        write_document(self.path / "pool.json", FORMAT, (self.profile, self.profile_sha256), {
            "expression": self.expression, "question": self.question,
            "image_size": self.image_size,
            "items": [{"id": i, "origin": o,
                       "controls": dict(zip(self.control_names, np.round(c, 6).tolist()))}
                      for i, o, c in zip(self.ids, self.origins, self.controls)],
        }, indent=1)


def question_for(expression: str) -> str:
    return f"Which face shows more {expression}?"


def load_pool(path: Path, profile: profiles.Profile | None = None) -> Pool:
    """The pool in folder ``path``; with ``profile``, refused unless made for it."""
    path = Path(path).absolute()  # a server resolves relative files elsewhere
    doc = read_document(path / "pool.json", FORMAT, "a FaceTwin pool", PoolError)
    try:
        p = profile or profiles.load(doc["profile"])
        p.require_same(doc["profile"], doc["profile_sha256"], f"pool {path}", PoolError,
                       "build the pool again")
        items = doc["items"]
        ids = [item["id"] for item in items]
        if not all(isinstance(i, str) and ITEM_ID.fullmatch(i) for i in ids) or \
                len(set(ids)) != len(ids):
            raise ValueError("item ids must be distinct names of letters and digits")
        controls = np.array([[item["controls"][n] for n in p.names] for item in items],
                            dtype=float).reshape(len(items), len(p.names))
        features = load_tensors((path / "features.safetensors").read_bytes())["features"]
        pool = Pool(path, p.name, p.sha256, str(doc["expression"]), str(doc["question"]),
                    list(p.names), ids, [str(item["origin"]) for item in items], controls,
                    features[:len(items)], int(doc["image_size"]))
    except PoolError:
        raise
    except profiles.ProfileError as exc:
        raise PoolError(f"pool {path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 (safetensors' own error type is not exported)
        raise PoolError(f"pool {path} is damaged: {exc!r}") from None
    if len(features) < len(items) or not np.all(np.isfinite(controls)):
        raise PoolError(f"pool {path} is damaged: features.safetensors has {len(features)} "
                        f"rows for {len(items)} items, or a control is not a number")
    missing = [i for i in ids if not pool.image_path(i).is_file()]
    if missing:
        raise PoolError(f"pool {path} is damaged: no image for {len(missing)} of its faces "
                        f"({missing[0]}.png first)")
    return pool


def build_pool(profile: str, expression: str, out: Path, size: int = 100,
               source: str = "random", source_path: Path | None = None, seed: int = 0,
               image_size: int = 256, progress: bool = True) -> Pool:
    """Render candidates for ``expression`` on the twin and keep the ``size`` most
    diverse as a pool in ``out``. A build that was stopped resumes its renders."""
    p = profiles.load(profile)
    if expression not in p.expressions:
        raise PoolError(f"profile {p.name!r} has no expression {expression!r}; library: "
                        f"{', '.join(sorted(p.expressions))}")
    if size < 2:
        raise PoolError(f"a pool needs at least 2 faces to compare, got size {size}")
    if source in ("runs", "dataset") and source_path is None:
        raise PoolError(f"--source {source} needs --source-path (the runs' folder or the "
                        "dataset's)")
    out = Path(out)
    with claim_folder(out, "pool folder", PoolError):  # one writer at a time
        if (out / "pool.json").exists():
            raise PoolError(f"{out} already holds a pool; give another --out")
        candidates = _candidates(p, expression, size, source, source_path, seed)
        plan = {"profile_sha256": p.sha256, "expression": expression, "size": size,
                "source": source, "source_path": str(source_path), "seed": seed,
                "image_size": image_size}
        faces = _render(p, expression, candidates, out / STAGING, plan, image_size,
                        progress)
        chosen = farthest_first([face[2] for face in faces], min(size, len(faces)))
        # pool.json is written once, last: a pool that exists is a whole pool.
        pool = new_pool(p, expression, out, image_size)
        pool.add_many([faces[i] for i in chosen], origin="pool")
        shutil.rmtree(out / STAGING, ignore_errors=True)
    return pool


def _render(p, expression: str, candidates: np.ndarray, staging: Path, plan: dict,
            image_size: int, progress: bool) -> list[tuple]:
    """Each candidate applied through the env and rendered: (applied controls, features,
    image). Every render is kept in ``staging`` as it is made, so a build that was
    stopped renders only what it had not."""
    from facetwin.envs.face_env import FaceTwinEnv

    staging.mkdir(parents=True, exist_ok=True)
    log = staging / "renders.jsonl"
    done, torn = read_jsonl(log, PoolError) if log.exists() else ([], 0)
    if torn:  # stopped mid-line: that render is made again
        atomic_write(log, "".join(json.dumps(r) + "\n" for r in done))
    if done and done[0] != {"plan": plan}:
        raise PoolError(f"{staging} holds the renders of another pool build "
                        f"({done[0]}); give another --out")
    faces = []
    for r in done[1:]:
        try:
            image = np.asarray(Image.open(staging / f"{r['index']:05d}.png").convert("RGB"))
        except (OSError, KeyError, TypeError) as exc:
            raise PoolError(f"{staging}: a render is damaged ({exc}); delete the folder "
                            "to render again") from None
        faces.append((np.asarray(r["applied"], float), np.asarray(r["features"], np.float32),
                      image))
    if not done:
        atomic_write(log, json.dumps({"plan": plan}) + "\n")
    if len(faces) == len(candidates):
        return faces
    env = FaceTwinEnv(p, image_size=image_size)
    try:
        with open(log, "a", encoding="utf-8") as f:
            for k in tqdm(range(len(faces), len(candidates)), desc="rendering candidates",
                          unit="face", initial=len(faces), total=len(candidates),
                          disable=not progress, leave=False):
                env.reset(options={"target": expression})
                obs, _, _, _, info = env.step(candidates[k].astype(np.float32))
                record = {"index": k,
                          "applied": np.asarray(info["applied"], float).round(6).tolist(),
                          "features": obs["achieved_goal"].astype(float).round(6).tolist()}
                save_png(staging / f"{k:05d}.png", obs["image"])
                f.write(json.dumps(record) + "\n")
                f.flush()
                # As a resumed build reads it back, so that both make the same pool.
                faces.append((np.asarray(record["applied"]),
                              np.asarray(record["features"], np.float32), obs["image"]))
    finally:
        env.close()
    return faces


def new_pool(p: profiles.Profile, expression: str, out: Path, image_size: int) -> Pool:
    """An empty pool in ``out`` (an existing one there is loaded instead)."""
    from facetwin.envs.expression import N_FEATURES

    out = Path(out)
    if (out / "pool.json").exists():
        return load_pool(out, p)
    (out / "images").mkdir(parents=True, exist_ok=True)
    return Pool(out, p.name, p.sha256, expression, question_for(expression), list(p.names),
                [], [], np.empty((0, len(p.names))), np.empty((0, N_FEATURES), np.float32),
                image_size)


def _candidates(p, expression: str, size: int, source: str, source_path, seed: int):
    """Candidate controls, the library's expression first."""
    n = size * CANDIDATES_PER_ITEM
    expr = np.asarray(p.expressions[expression], float)
    if source == "random":
        rng = np.random.default_rng(seed)
        # Along the way from neutral to the expression and past it, plus noise: faces a
        # person would weigh against each other for this expression.
        way = rng.uniform(0.0, 2.5, (n - 1, 1))
        noise = rng.normal(0.0, RANDOM_SPREAD, (n - 1, len(expr))) * (p.high - p.low)
        rest = p.neutral + way * (expr - p.neutral) + noise
    elif source == "runs":
        rest = _from_runs(source_path)
    elif source == "dataset":
        from facetwin.agents.inverse.dataset import load_columns

        rest = np.asarray(load_columns(Path(source_path), ["applied"])["applied"], float)
        rest = np.random.default_rng(seed).permutation(rest)[:n - 1]
    else:
        raise PoolError(f"unknown pool source {source!r}; available: {', '.join(SOURCES)}")
    if len(rest) == 0 or rest.shape[1] != len(expr):
        raise PoolError(f"{source_path}: no {len(expr)}-control candidates for {p.name}")
    return np.vstack([expr[None], np.clip(rest, p.low, p.high)])


def _from_runs(folder) -> np.ndarray:
    from facetwin.agents.runlog import read_runlog

    logs = sorted(Path(folder).glob("**/*.jsonl")) if folder else []
    if not logs:
        raise PoolError(f"no optimisation run logs (*.jsonl) under {folder}")
    return np.array([r["applied"] for log in logs for r in read_runlog(log)[1]], float)


def farthest_first(images: list[np.ndarray], k: int, side: int = 64) -> list[int]:
    """Indices of ``k`` images, each the farthest (pixel cosine distance, HAPI Eq. 1) from
    those already chosen, starting from the first."""
    small = np.stack([np.asarray(Image.fromarray(i).convert("L").resize((side, side)),
                                 dtype=float).ravel() for i in images])
    unit = small / np.maximum(np.linalg.norm(small, axis=1, keepdims=True), 1e-12)
    chosen = [0]
    nearest = 1.0 - unit @ unit[0]
    for _ in range(k - 1):
        nearest[chosen] = -np.inf
        i = int(np.argmax(nearest))
        chosen.append(i)
        nearest = np.minimum(nearest, 1.0 - unit @ unit[i])
    return chosen
