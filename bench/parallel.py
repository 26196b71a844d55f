"""Benchmark of the parallel engine (Ray): what more workers and a cluster buy.

    python bench/parallel.py [--profile emo11] [--samples 768] [--sweep-budget 60]
                             [--skip collect,breakdown,startup,sweep,cluster]

Prints, on this machine, in one run (speeds as ratios within the run, since machines of
one kind differ 2x from day to day):

- collection throughput (samples/s, whole command, start-up included) of ``--samples``
  settled samples at 256x256 with renders: here in one process, Ray with 1 and with 2
  workers, and the process pool FaceTwin used before Ray (kept below as the reference:
  workers that write their own shards); the ratios the issue asks for;
- the per-sample cost, broken down: physics, render, MediaPipe, PNG encoding, Parquet
  writing, the rest (safety filter, features, the babbling strategy);
- Ray's start-up and tear-down on this machine (embedded, 2 CPUs);
- a sweep of the profile's library (every expression but neutral x 2 seeds of BO,
  ``--sweep-budget`` evaluations each): one run after another here vs 2 Ray workers;
- a two-node cluster on this machine (two ``ray start``, one CPU each) collecting the
  same samples, against embedded Ray with 2 workers;
- the time for 100,000 samples at the measured rate, and at N cores by the measured
  scaling.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))


# -- the reference: FaceTwin's process pool before the engine (agents/workers.py) -------
_pool_worker = None


def _pool_start(profile_path: str, plan) -> None:
    global _pool_worker
    from facetwin.agents.inverse.collect import _Worker
    from facetwin.profile import load

    p = load(profile_path)
    _pool_worker = (_Worker((p.name, p.sha256), plan), p)


def _pool_shard(out: Path, first: int) -> None:
    from facetwin.agents.inverse.dataset import write_shard

    worker, p = _pool_worker
    rows = [r for sequence in worker.run(first) for r in sequence]
    write_shard(worker.plan.shard_path(out, first), rows, len(p.controls))


def pool_collect(profile: str, samples: int, out: Path, workers: int) -> None:
    """The old way: a spawn pool whose workers write their own shards."""
    from facetwin.agents.inverse.collect import SEQUENCE_LENGTH, _neutral
    from facetwin.agents.inverse.dataset import Plan, open_plan, write_meta
    from facetwin.profile import load

    p = load(profile)
    plan = Plan(p.name, p.sha256, "babble", 0, SEQUENCE_LENGTH, 256, True, False, 16)
    neutral = _neutral(p, 256)
    open_plan(out, plan, p, neutral)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                             initializer=_pool_start, initargs=(str(p.path), plan)) as pool:
        futures = [pool.submit(_pool_shard, out, first) for first in plan.shard_firsts(samples)]
        wait(futures)
        for f in futures:
            f.result()
    write_meta(out, plan, p, neutral, complete=True)


# -- measurements ----------------------------------------------------------------------
@contextmanager
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="ft-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def ray_of(cpus: int):
    """Embedded Ray of ``cpus`` CPUs, held for the block; yields its address (so that
    ``workers=1`` runs on Ray, not here)."""
    import ray

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def collection(profile: str, samples: int) -> dict[str, float]:
    from facetwin.agents.inverse.collect import collect

    rates = {}

    def run(label, fn):
        with scratch() as out:
            seconds = timed(lambda: fn(out / "data"))
        rates[label] = samples / seconds
        print(f"  {label:28s} {samples / seconds:6.2f} samples/s ({seconds:.1f} s)", flush=True)

    run("here, one process", lambda out: collect(profile, "babble", samples, out,
                                                  progress=False))
    run("process pool, 2 workers", lambda out: pool_collect(profile, samples, out, 2))
    for workers in (1, 2):
        def on_ray(out, workers=workers):
            with ray_of(workers) as address:
                collect(profile, "babble", samples, out, workers=workers, address=address,
                        progress=False)
        run(f"Ray, {workers} worker{'s' * (workers > 1)}", on_ray)
    return rates


def breakdown(profile: str, samples: int) -> dict[str, float]:
    """Seconds per sample in each part, timed around the functions that do it."""
    from PIL import Image

    from facetwin.agents.inverse import collect as collecting
    from facetwin.envs.perception import FaceMeshDetector
    from facetwin.sim.render import FaceRenderer
    from facetwin.sim.twin import Twin

    spent = {"physics": 0.0, "render": 0.0, "MediaPipe": 0.0, "PNG encoding": 0.0,
             "Parquet writing": 0.0}

    def clocked(owner, name, part):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - t
        setattr(owner, name, wrapper)
        return owner, name, original

    patched = [clocked(Twin, "step", "physics"), clocked(FaceRenderer, "render", "render"),
               clocked(FaceMeshDetector, "__call__", "MediaPipe"),
               clocked(Image.Image, "save", "PNG encoding"),
               clocked(collecting, "write_shard", "Parquet writing")]
    try:
        with scratch() as out:
            total = timed(lambda: collecting.collect(profile, "babble", samples, out / "d",
                                                     progress=False))
    finally:
        for owner, name, original in patched:
            setattr(owner, name, original)
    per = {k: v / samples for k, v in spent.items()}
    per["the rest (filter, features, strategy, start-up)"] = total / samples - sum(per.values())
    for part, s in per.items():
        print(f"  {part:48s} {1000 * s:7.1f} ms ({100 * s / (total / samples):4.1f}%)")
    print(f"  {'total':48s} {1000 * total / samples:7.1f} ms")
    return per


def startup() -> tuple[float, float]:
    import ray

    up = timed(lambda: ray.init(address="local", num_cpus=2, include_dashboard=False,
                                log_to_driver=False, logging_level="ERROR"))
    down = timed(ray.shutdown)
    print(f"  start-up {up:.1f} s, tear-down {down:.1f} s")
    return up, down


def sweeps(profile: str, budget: int) -> float:
    from facetwin.agents.optimize.sweep import sweep

    times = {}
    for workers in (1, 2):
        with scratch() as out:
            times[workers] = timed(lambda: sweep(profile, out, seeds=2, budget=budget,
                                                 workers=workers, progress=False))
        print(f"  {'one after another' if workers == 1 else 'Ray, 2 workers':20s} "
              f"{times[workers]:.1f} s", flush=True)
    return times[2] / times[1]


def cluster(profile: str, samples: int) -> tuple[float, float]:
    from facetwin.agents.inverse.collect import collect
    from helpers import ray_cluster

    with scratch() as out, ray_cluster(nodes=2) as address:
        two_nodes = samples / timed(lambda: collect(profile, "babble", samples, out / "d",
                                                    workers=2, address=address,
                                                    progress=False))
    with scratch() as out:
        embedded = samples / timed(lambda: collect(profile, "babble", samples, out / "d",
                                                   workers=2, progress=False))
    print(f"  two nodes (1 CPU each) {two_nodes:.2f} samples/s; embedded, 2 workers "
          f"{embedded:.2f} samples/s")
    return two_nodes, embedded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="emo11")
    ap.add_argument("--samples", type=int, default=768, help="6 shards of 128")
    ap.add_argument("--sweep-budget", type=int, default=60, help="the sweep's default")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "token")  # the cluster's nodes and this driver

    if "collect" not in skip:
        print(f"collection, {args.profile}, {args.samples} samples at 256x256 with renders")
        r = collection(args.profile, args.samples)
        two = r["Ray, 2 workers"]
        print(f"  Ray 2 workers / process pool 2 workers: {two / r['process pool, 2 workers']:.2f}x"
              f" (target >= 0.9); / Ray 1 worker: {two / r['Ray, 1 worker']:.2f}x "
              f"(target >= 1.8)")
        scaling = two / r["Ray, 1 worker"]
        print(f"  100,000 samples: {100_000 / two / 60:.0f} min at Ray 2 workers; on N cores, "
              f"about {100_000 / r['Ray, 1 worker'] / 60:.0f} min / (N x "
              f"{scaling / 2:.2f}) by the measured 1-to-2 scaling")
    if "breakdown" not in skip:
        print(f"per-sample cost, here in one process ({args.samples // 3} samples)")
        breakdown(args.profile, args.samples // 3)
    if "startup" not in skip:
        print("Ray, embedded (2 CPUs)")
        startup()
    if "sweep" not in skip:
        print(f"sweep of {args.profile}'s library x 2 seeds, BO, {args.sweep_budget} "
              "evaluations each")
        ratio = sweeps(args.profile, args.sweep_budget)
        print(f"  Ray 2 workers / one after another: {ratio:.2f}x the time (target <= 0.6)")
    if "cluster" not in skip:
        print(f"two-node cluster on this machine, {args.samples // 3} samples")
        cluster(args.profile, args.samples // 3)


if __name__ == "__main__":
    main()
