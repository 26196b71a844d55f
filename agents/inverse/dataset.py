"""Datasets of a face's own babbling: Parquet shards, ``meta.json`` and a dataset card.

    DIR/
      meta.json                 profile and sha256, strategy, seed, counts, splits, neutral
      README.md                 the dataset card
      shards/seq-000000-000031.parquet   one block of whole sequences each

A shard holds whole sequences, is written to a temporary name and renamed into place:
a killed collection leaves only complete shards, and collecting again makes exactly the
missing ones. Every sequence is a pure function of (seed, sequence id), so which worker
made it, and when, does not matter.

Splits are by sequence, never by frame: consecutive samples of one sequence are near
neighbours, and must not land on both sides. A sequence's split is a seeded draw of its
id, so a dataset that grows keeps the splits it had.

Opens with pandas (``pd.read_parquet(DIR / "shards")``), pyarrow
(``pyarrow.dataset.dataset(DIR / "shards")``) and Hugging Face datasets
(``load_dataset("parquet", data_dir=DIR / "shards")``); ``image`` holds PNG bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facetwin import __version__
from facetwin.envs.expression import N_FEATURES
from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write, read_document, write_document
from facetwin.landmarks import N_LANDMARKS
from facetwin.profile import Profile

FORMAT = "facetwin-dataset/1"
SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}


class DatasetError(FaceTwinError, ValueError):
    """A dataset folder that cannot be used as asked; the message says why."""


def schema(n_controls: int) -> pa.Schema:
    def vector(n):
        return pa.list_(pa.float32(), n)

    return pa.schema([
        ("sequence", pa.int64()), ("step", pa.int32()), ("period", pa.int32()),
        ("settled", pa.bool_()),  # the transition's end (every row, outside trajectory mode)
        ("time_s", pa.float32()),  # face time since the command was given
        ("requested", vector(n_controls)), ("applied", vector(n_controls)),
        ("controls", vector(n_controls)),  # present positions, as the servos report
        ("landmarks", vector(N_LANDMARKS * 2)),  # ground truth, pixels
        ("features", vector(N_FEATURES)),  # ground-truth expression features
        ("mediapipe", vector(N_LANDMARKS * 2)),  # MediaPipe on the render, pixels; NaN: none
        ("face_found", pa.bool_()),
        ("head_pose", vector(6)),  # rotation vector (deg), then position (mm)
        ("strain", pa.float32()),
        ("image", pa.binary()),  # PNG; null with --no-images
        ("seed", pa.int64()),
    ])


@dataclass(frozen=True)
class Plan:
    """What a dataset is: everything that decides its content."""

    profile: str
    profile_sha256: str
    strategy: str
    seed: int
    sequence_length: int
    image_size: int
    images: bool
    trajectory: bool
    sequences_per_shard: int = 16

    def shard_path(self, root: Path, first: int) -> Path:
        last = first + self.sequences_per_shard - 1
        return Path(root) / "shards" / f"seq-{first:06d}-{last:06d}.parquet"

    def shard_firsts(self, samples: int) -> list[int]:
        """The first sequence of each shard that ``samples`` settled samples need."""
        sequences = -(-samples // self.sequence_length)
        per = self.sequences_per_shard
        return list(range(0, -(-sequences // per) * per, per))


def split_of(seed: int, sequence: int) -> str:
    """The split a sequence belongs to: a seeded draw of its id."""
    x = np.random.default_rng([seed, sequence, 0x5EED]).random()
    edges = np.cumsum(list(SPLITS.values()))
    return list(SPLITS)[int(np.searchsorted(edges, x, side="right"))]


def write_shard(path: Path, rows: list[dict], n_controls: int) -> None:
    """Write complete sequences to ``path`` in one step: a shard is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema(n_controls))
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd", write_page_checksum=True)
    atomic_write(path, buffer.getvalue().to_pybytes())


_SHARD_NAME = re.compile(r"seq-\d{6}-\d{6}\.parquet")


def done_shards(root: Path) -> list[Path]:
    """The shards of ``root`` (files of any other name in ``shards/`` are not)."""
    return sorted(p for p in (Path(root) / "shards").glob("seq-*.parquet")
                  if _SHARD_NAME.fullmatch(p.name))


def read_shard(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A whole shard (its page checksums verified), or DatasetError naming it."""
    try:
        return pq.read_table(path, columns=columns, page_checksum_verification=True)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{path} is damaged ({str(exc).splitlines()[0][:120]}): run "
                           "collect again with the same arguments to make it again") from None


def set_aside_damaged(root: Path, n_controls: int) -> list[Path]:
    """Rename each shard of ``root`` that cannot be read whole, or is not of this
    dataset's schema, to ``NAME.damaged`` (kept, for a look) so that it is made again."""
    damaged = []
    for shard in done_shards(root):
        try:
            table = read_shard(shard)
            if not table.schema.equals(schema(n_controls)):
                raise DatasetError("another schema")
        except DatasetError:
            shard.rename(shard.with_name(shard.name + ".damaged"))
            damaged.append(shard)
    return damaged


def continues(root: Path, plan: Plan, profile: Profile) -> bool:
    """Whether ``root`` holds a collection of ``plan`` begun before (False: none); one of
    something else is refused."""
    if not (Path(root) / "meta.json").exists():
        return False
    meta = read_meta(root, complete=False, profile=profile, remedy="give another --out")
    for key, value in plan.__dict__.items():
        if meta["plan"].get(key) != value:
            raise DatasetError(f"{root} was collected with {key} = {meta['plan'].get(key)!r}"
                               f", not {value!r}: continuing it would mix two datasets; "
                               "give another --out")
    return True


def open_plan(root: Path, plan: Plan, profile: Profile, neutral: dict) -> None:
    """Start or continue the dataset in ``root``; refuse one that is something else."""
    if not continues(root, plan, profile):
        Path(root).mkdir(parents=True, exist_ok=True)
        write_meta(root, plan, profile, neutral, complete=False)


def write_meta(root: Path, plan: Plan, profile: Profile, neutral: dict,
               complete: bool) -> dict:
    shards = done_shards(root)
    rows = sum(pq.ParquetFile(s).metadata.num_rows for s in shards)
    members = sorted(k for s in shards for k in range(*_sequence_range(s)))
    splits = {name: [] for name in SPLITS}
    for k in members:
        splits[split_of(plan.seed, k)].append(k)
    sequences = len(members)
    body = {
        "facetwin": __version__, "complete": complete, "controls": profile.names,
        "low": profile.low.tolist(), "high": profile.high.tolist(),
        "groups": [c.group for c in profile.controls],
        "plan": plan.__dict__, "rows": rows, "sequences": sequences, "shards": len(shards),
        "splits": splits, "split_fractions": SPLITS, "neutral": neutral,
    }
    meta = write_document(Path(root) / "meta.json", FORMAT, (profile.name, profile.sha256),
                          body)
    atomic_write(Path(root) / "README.md", _card(meta))
    return meta


def _sequence_range(shard: Path) -> tuple[int, int]:
    first, last = shard.stem.split("-")[1:]
    return int(first), int(last) + 1


def read_meta(root: Path, complete: bool = True, profile: Profile | None = None,
              remedy: str = "collect it again") -> dict:
    """``meta.json`` checked for what readers use; with ``complete``, refused unless the
    collection finished; with ``profile``, unless it was collected on that profile."""
    path = Path(root) / "meta.json"
    meta = read_document(path, FORMAT, "a FaceTwin dataset's meta", DatasetError, profile,
                         remedy)
    plan, splits = meta.get("plan"), meta.get("splits")
    if not isinstance(plan, dict) or set(plan) != set(Plan.__dataclass_fields__):
        raise DatasetError(f"{path}: 'plan' must name each of "
                           f"{', '.join(Plan.__dataclass_fields__)}")
    if not isinstance(splits, dict) or set(splits) != set(SPLITS) or not all(
            isinstance(v, list) and all(type(k) is int for k in v) for v in splits.values()):
        raise DatasetError(f"{path}: 'splits' must give {', '.join(SPLITS)} each as a list "
                           "of sequence numbers")
    for key in ("profile", "profile_sha256", "neutral", "complete"):
        if key not in meta:
            raise DatasetError(f"{path} has no {key!r}")
    neutral = meta["neutral"]
    if not isinstance(neutral, dict) or any(
            not isinstance(neutral.get(k), list) or len(neutral[k]) != N_LANDMARKS * 2
            for k in ("landmarks", "mediapipe")):
        raise DatasetError(f"{path}: 'neutral' must give 'landmarks' and 'mediapipe', "
                           f"{N_LANDMARKS * 2} numbers each")
    if complete and meta["complete"] is not True:
        raise DatasetError(f"{root} is an unfinished collection (interrupted, or still "
                           "running): run collect again with the same arguments to finish it")
    return meta


def load_columns(root: Path, columns: list[str], split: str | None = None) -> dict:
    """Columns of the settled rows as numpy arrays (of one split when given)."""
    meta = read_meta(root)
    shards = done_shards(root)
    if not shards:
        raise DatasetError(f"{root} has no shards yet: collect first")
    wanted = list({*columns, "sequence", "settled"})
    tables = [read_shard(s, wanted) for s in shards]
    try:
        table = pa.concat_tables(tables)
    except pa.ArrowException as exc:
        raise DatasetError(f"{root}: its shards are not of one dataset ({exc})") from None
    keep = table.column("settled").to_numpy(zero_copy_only=False)
    if split is not None:
        keep = keep & np.isin(table.column("sequence").to_numpy(), meta["splits"][split])
    out = {}
    for name in columns:
        column = table.column(name).filter(pa.array(keep)).combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            out[name] = column.flatten().to_numpy().reshape(-1, column.type.list_size)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def _card(meta: dict) -> str:
    plan = meta["plan"]
    counts = ", ".join(f"{k} {len(v)}" for k, v in meta["splits"].items())
    return f"""# FaceTwin dataset: {meta['profile']}, {plan['strategy']} strategy

{meta['rows']} samples in {meta['sequences']} sequences of {plan['sequence_length']} commands
{"(every control period of each transition)" if plan['trajectory'] else "(each settled)"},
collected on the FaceTwin twin of profile `{meta['profile']}` (sha256
`{meta['profile_sha256'][:16]}...`) with seed {plan['seed']}, FaceTwin {meta['facetwin']}.
{"Complete." if meta['complete'] else "Collection in progress, or interrupted: run it again."}

- Splits by sequence (never by frame): {counts} sequences (`meta.json`: `splits`).
- Every command passed the safety filter: `requested` is what the strategy asked for,
  `applied` what reached the face, `controls` the present positions after it.
- `landmarks`: the 478 ground-truth landmarks, pixels at {plan['image_size']} x
  {plan['image_size']}; `features`: the expression features (mm about the face's
  neutral, then the head rotation in degrees); `mediapipe`: MediaPipe's landmarks on the
  render (NaN where it found no face, `face_found`); `head_pose`: rotation vector (deg)
  and position (mm); `strain`: the skin's peak strain; `image`: the render as PNG
  bytes{"" if plan['images'] else " (not collected: --no-images)"}.
- Controls in the order of `meta.json`'s `controls`, with their `low` and `high`.

```python
import pandas as pd
df = pd.read_parquet("shards")
from datasets import load_dataset
ds = load_dataset("parquet", data_dir="shards")
```
"""
