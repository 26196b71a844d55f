"""Datasets of expression onsets: faces going from rest to an expression, as landmark
sequences with Emo's labels (:mod:`.labelling`).

    DIR/
      meta.json                  source, seed, people, counts, splits, what was skipped
      README.md                  the dataset card
      shards/person-000007.parquet   one person's sequences, one row each

A shard holds one person's sequences whole, written to a temporary name and renamed
into place, so a killed run leaves only whole people and running it again makes exactly
the missing ones. Splits are by person (``splits``: nobody is on two sides, so a test
person was never seen in training) and, for Emo's other cross-validation, by sequence
(``sequence_splits``); both are seeded draws of ids.

Opens with pandas (``pd.read_parquet(DIR / "shards")``), pyarrow and Hugging Face
datasets; ``mediapipe`` is each sequence's frames of 478 landmarks, flattened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facetwin import __version__
from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write, read_document, write_document
from facetwin.landmarks import N_LANDMARKS
from facetwin.profile import Profile

FORMAT = "facetwin-onsets/1"
PERSON_SPLITS = {"train": 0.65, "val": 0.1, "test": 0.25}
SEQUENCE_SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}
SOURCES = ("synthetic", "videos")


class OnsetDataError(FaceTwinError, ValueError):
    """An onset dataset that cannot be used as asked; the message says why."""


SCHEMA = pa.schema([
    ("sequence", pa.int64()), ("person", pa.int32()), ("name", pa.string()),
    ("emotion", pa.string()),  # the main emotion (a video's: its file name)
    ("second", pa.string()),  # blended in; null when none
    ("weight", pa.float32()), ("intensity", pa.float32()),
    ("false_start", pa.bool_()),
    ("rest_s", pa.float32()), ("onset_s", pa.float32()), ("hold_s", pa.float32()),
    ("peak_s", pa.float32()),  # scheduled: when the face is furthest from rest
    ("fps", pa.float32()), ("frames", pa.int32()),
    ("mediapipe", pa.list_(pa.float32())),  # frames x 478 x 2 pixels; NaN: no face
    ("controls", pa.list_(pa.float32())),  # frames x controls the face was given (synthetic)
    ("onset", pa.int32()), ("activation", pa.int32()), ("target", pa.int32()),  # -1: none
    ("rise", pa.float32()),  # the target's deviation from rest, skull sizes
    ("skipped", pa.string()),  # why there is no label; null when labelled
])


@dataclass(frozen=True)
class Plan:
    """Everything that decides a dataset's content."""

    source: str
    profile: str  # the face the synthetic people are made of
    profile_sha256: str
    seed: int
    people: int
    per_person: int  # expressions each (synthetic)
    fps: float
    image_size: int
    noise: float  # grey levels of camera noise (synthetic)

    def shard_path(self, root: Path, person: int) -> Path:
        return Path(root) / "shards" / f"person-{person:06d}.parquet"


_SHARD = re.compile(r"person-(\d{6})\.parquet")


def done_people(root: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in (Path(root) / "shards").glob("person-*.parquet")
                  if (m := _SHARD.fullmatch(p.name)))


def write_person(path: Path, rows: list[dict]) -> None:
    """One person's sequences, in one step: a shard is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd", write_page_checksum=True)
    atomic_write(path, buffer.getvalue().to_pybytes())


def read_person(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        table = pq.read_table(path, columns=columns, page_checksum_verification=True)
    except (OSError, pa.ArrowException) as exc:
        raise OnsetDataError(f"{path} is damaged ({str(exc).splitlines()[0][:120]}): "
                             "delete it and run the same command again") from None
    if columns is None and not table.schema.equals(SCHEMA):
        raise OnsetDataError(f"{path} is not of this dataset's schema")
    return table


def person_split(seed: int, people: int) -> dict[str, list[int]]:
    """People by split: a seeded order of them, cut in PERSON_SPLITS' proportions."""
    order = np.random.default_rng([seed, 0x9E0]).permutation(people)
    n_test = round(PERSON_SPLITS["test"] * people)
    n_val = round(PERSON_SPLITS["val"] * people)
    return {"train": sorted(order[n_test + n_val:].tolist()),
            "val": sorted(order[n_test:n_test + n_val].tolist()),
            "test": sorted(order[:n_test].tolist())}


def sequence_split(seed: int, sequence: int) -> str:
    x = np.random.default_rng([seed, sequence, 0x5E9]).random()
    edges = np.cumsum(list(SEQUENCE_SPLITS.values()))
    return list(SEQUENCE_SPLITS)[int(np.searchsorted(edges, x, side="right"))]


def open_plan(root: Path, plan: Plan, profile: Profile) -> None:
    """Start or continue the dataset in ``root``; refuse one that is something else."""
    if (Path(root) / "meta.json").exists():
        meta = read_meta(root, complete=False, profile=profile)
        for key, value in plan.__dict__.items():
            if meta["plan"].get(key) != value:
                raise OnsetDataError(f"{root} was made with {key} = "
                                     f"{meta['plan'].get(key)!r}, not {value!r}: continuing "
                                     "it would mix two datasets; give another --out")
        return
    Path(root).mkdir(parents=True, exist_ok=True)
    write_meta(root, plan, profile, complete=False)


def write_meta(root: Path, plan: Plan, profile: Profile, complete: bool) -> dict:
    sequences, skipped = [], []
    for person in done_people(root):
        table = read_person(plan.shard_path(root, person), ["sequence", "name", "skipped"])
        for k, name, why in zip(*(table.column(c).to_pylist()
                                  for c in ("sequence", "name", "skipped"))):
            sequences.append(k)
            if why is not None:
                skipped.append({"sequence": k, "name": name, "why": why})
    by_sequence = {name: [] for name in SEQUENCE_SPLITS}
    for k in sorted(sequences):
        by_sequence[sequence_split(plan.seed, k)].append(k)
    body = {"facetwin": __version__, "complete": complete, "plan": plan.__dict__,
            "sequences": len(sequences), "labelled": len(sequences) - len(skipped),
            "skipped": skipped, "splits": person_split(plan.seed, plan.people),
            "split_by": "person", "sequence_splits": by_sequence,
            "controls": profile.names}
    meta = write_document(Path(root) / "meta.json", FORMAT, (profile.name, profile.sha256),
                          body, indent=1)
    atomic_write(Path(root) / "README.md", _card(meta))
    return meta


def check_learnable(root: Path, meta: dict) -> None:
    """Refuse a finished dataset that ``train-predictor`` could learn nothing from: no
    sequence with a clear onset (each one's reason named), or no way of splitting
    (by person or by sequence) that puts labelled sequences in both training and
    validation."""
    plan = Plan(**meta["plan"])
    skipped = meta["skipped"]
    if meta["labelled"] == 0:
        shown = "; ".join(f"{s['name']}: {s['why']}" for s in skipped[:3])
        more = f"; and {len(skipped) - 3} more (in {root / 'meta.json'})" \
            if len(skipped) > 3 else ""
        raise OnsetDataError(f"{root}: none of its {meta['sequences']} sequences has a "
                             f"clear onset, so there is nothing to learn ({shown}{more})")
    unlabelled = {s["sequence"] for s in skipped}
    person_of = {}
    for person in done_people(root):
        table = read_person(plan.shard_path(root, person), ["sequence"])
        person_of.update((k, person) for k in table.column("sequence").to_pylist())
    labelled = [k for k in person_of if k not in unlabelled]
    counts = {
        "person": {split: sum(person_of[k] in set(people) for k in labelled)
                   for split, people in meta["splits"].items()},
        "sequence": {split: len(set(members) & set(labelled))
                     for split, members in meta["sequence_splits"].items()},
    }
    if not any(c["train"] and c["val"] for c in counts.values()):
        told = "; ".join(f"by {by}: train {c['train']}, val {c['val']}"
                         for by, c in counts.items())
        raise OnsetDataError(f"{root}: {len(labelled)} sequences with a clear onset, too few "
                             f"to have some in both training and validation ({told}): "
                             "record more people or expressions")


def read_meta(root: Path, complete: bool = True, profile: Profile | None = None) -> dict:
    path = Path(root) / "meta.json"
    meta = read_document(path, FORMAT, "a FaceTwin onset dataset's meta", OnsetDataError,
                         profile, "give another --out")
    plan = meta.get("plan")
    if not isinstance(plan, dict) or set(plan) != set(Plan.__dataclass_fields__):
        raise OnsetDataError(f"{path}: 'plan' must name each of "
                             f"{', '.join(Plan.__dataclass_fields__)}")
    splits = meta.get("splits")
    if not isinstance(splits, dict) or set(splits) != set(PERSON_SPLITS):
        raise OnsetDataError(f"{path}: 'splits' must give {', '.join(PERSON_SPLITS)}")
    if complete and meta.get("complete") is not True:
        raise OnsetDataError(f"{root} is unfinished (interrupted, or still running): run "
                             "the same command again to finish it")
    return meta


@dataclass
class Sequences:
    """Labelled sequences of a split, as arrays and lists, one entry per sequence."""

    sequence: np.ndarray
    person: np.ndarray
    emotion: list[str]
    false_start: np.ndarray
    fps: np.ndarray
    landmarks: list[np.ndarray]  # (frames, 478, 2) each
    onset: np.ndarray
    activation: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.sequence)


def load_sequences(root: Path, split: str | None = None, by: str = "person") -> Sequences:
    """The labelled sequences of ``split`` (all when None), by person or by sequence."""
    meta = read_meta(root)
    plan = Plan(**meta["plan"])
    if by not in ("person", "sequence"):
        raise OnsetDataError(f"split by 'person' or 'sequence', not {by!r}")
    people = done_people(root)
    if not people:
        raise OnsetDataError(f"{root} has no shards: make the dataset first")
    if split is not None and split not in PERSON_SPLITS:
        raise OnsetDataError(f"unknown split {split!r}; {', '.join(PERSON_SPLITS)}")
    wanted = set(meta["splits"][split]) if split and by == "person" else None
    members = set(meta["sequence_splits"][split]) if split and by == "sequence" else None
    columns = ["sequence", "person", "emotion", "false_start", "fps", "frames", "mediapipe",
               "onset", "activation", "target"]
    rows = []
    for person in people:
        if wanted is not None and person not in wanted:
            continue
        rows += read_person(plan.shard_path(root, person), columns).to_pylist()
    rows = [r for r in rows if r["onset"] >= 0
            and (members is None or r["sequence"] in members)]
    return Sequences(
        np.array([r["sequence"] for r in rows], dtype=np.int64),
        np.array([r["person"] for r in rows], dtype=np.int64),
        [r["emotion"] for r in rows],
        np.array([r["false_start"] for r in rows], dtype=bool),
        np.array([r["fps"] for r in rows], dtype=float),
        [np.asarray(r["mediapipe"], np.float32).reshape(r["frames"], N_LANDMARKS, 2)
         for r in rows],
        *(np.array([r[c] for r in rows], dtype=np.int64)
          for c in ("onset", "activation", "target")))


def _card(meta: dict) -> str:
    plan = meta["plan"]
    splits = ", ".join(f"{k} {len(v)}" for k, v in meta["splits"].items())
    synthetic = plan["source"] == "synthetic"
    who = (f"**These are synthetic people, not people.** Each is the FaceTwin twin of "
           f"profile `{meta['profile']}` (sha256 `{meta['profile_sha256'][:16]}...`) with an "
           "identity of its own (face shape, proportions of its movements, skin stiffness "
           "and tone, head placement), performing expressions from rest with human timing "
           "(onset durations from Emo's 0.841 +- 0.713 s, truncated to 0.25-2.5 s; blends "
           "of two emotions; intensities from subtle to full; false starts; head motion; "
           f"camera noise of {plan['noise']} grey levels), rendered at {plan['fps']:g} "
           f"frames/s, {plan['image_size']} x {plan['image_size']}, and seen by MediaPipe "
           "as a video would be." if synthetic else
           "Videos of people, one folder per person, seen by MediaPipe frame by frame.")
    skipped = "".join(f"\n  - sequence {s['sequence']} ({s['name']}): {s['why']}"
                      for s in meta["skipped"][:20])
    more = len(meta["skipped"]) - 20
    return f"""# FaceTwin onset dataset ({plan['source']})

{who}

{meta['sequences']} sequences of {plan['people']} people (seed {plan['seed']}, FaceTwin
{meta['facetwin']}); {meta['labelled']} labelled.
{"Complete." if meta['complete'] else "In progress, or interrupted: run it again."}

- Labels (Emo's): rest = the mean of the first five frames; each frame's deviation from
  it (head motion aligned away), Savitzky-Golay smoothed; `target` = the frame of largest
  deviation (an apex's first frame); `activation` = the frame of largest acceleration
  before it; `onset` = the first frame 5 % of the way. Frame indices; -1 and `skipped`
  (the reason) where a sequence has no clear onset.
- Splits by person (nobody on two sides): {splits} people (`meta.json`: `splits`); by
  sequence for Emo's other cross-validation (`sequence_splits`).
- `mediapipe`: MediaPipe's 478 landmarks per frame, pixels, flattened (NaN: no face);
  `controls`: what the face was given each frame, in the order of `meta.json`'s
  `controls` (synthetic people only).

Skipped, without a clear onset: {len(meta['skipped'])}{skipped}{
    f"{chr(10)}  - and {more} more (meta.json)" if more > 0 else ""}

```python
import pandas as pd
df = pd.read_parquet("shards")
```
"""
