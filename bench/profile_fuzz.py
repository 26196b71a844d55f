"""Fuzz the profile loader: random mutations of the shipped profiles (types, ranges,
missing and unknown fields), each of which must either load into an env that resets
and steps with finite values, or fail with a ProfileError naming a field
(:mod:`facetwin.envs.profile_fuzz`). Prints a table and the first refusals of each kind.

    python bench/profile_fuzz.py [--mutations 600] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.envs.profile_fuzz import check, mutate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=600, help="in all, over the profiles")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    names = profiles.available()
    rows, broken, reasons = [], [], collections.Counter()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            text = (profiles.ROBOTS_DIR / f"{name}.toml").read_text()
            counts = collections.Counter()
            for _ in range(args.mutations // len(names)):
                mutant, what = mutate(text, rng)
                try:
                    outcome = check(mutant, name, Path(tmp), rng)
                except Exception as exc:  # noqa: BLE001  (a broken contract, reported below)
                    broken.append(f"{name}: {what}: {type(exc).__name__}: {exc}")
                    counts["broken"] += 1
                    continue
                counts[outcome.split(":")[0]] += 1
                if outcome.startswith("refused"):
                    reasons[outcome.split("field '")[-1].split("'")[0]] += 1
            rows.append((name, sum(counts.values()), counts["loaded"], counts["refused"],
                         counts["broken"]))
    print(f"{sum(r[1] for r in rows)} mutations in {time.perf_counter() - started:.0f} s")
    print("| profile | mutations | loaded and stepped | refused, field named | broken |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")
    print("fields most often named:", ", ".join(f"{k} ({v})" for k, v in reasons.most_common(8)))
    for line in broken:
        print("BROKEN", line)


if __name__ == "__main__":
    main()
