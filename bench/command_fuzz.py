"""Fuzz every command's arguments and every file reader (issue 25).

1. Real inputs are made first, small: a dataset (emo11, 128 samples), two models
   (ridge on the twin's features, an MLP on MediaPipe's), a pool with answers, a
   preference model, an optimisation run, a hardware journal, an onset dataset of six
   synthetic people and a predictor trained on it, an identification (its session
   journal, frames and robot file) and a sweep.
2. **Arguments**: each trial takes a command with arguments that work, and gives one to
   three of its options a random value (huge, negative, zero, NaN, infinite, text, empty,
   a file where a folder goes, a folder that does not exist, ...), drops a required one
   or adds an unknown one. It runs as its own process, in its own session.
3. **File readers**: each input file gets truncated, bit-flipped, emptied, or replaced by
   another file of the inputs (wrong format), in a copy of the inputs, and the command
   that reads it runs as its own process.

4. **Killed**: each command that starts workers (Ray's embedded, or processes of its
   own) is killed with SIGKILL a random few seconds in, as ``kill -9 PID`` does: the
   command alone, not its process group.

The contract, counted for each run: it ends within the time bound with exit 0 or with
one line ``facetwin: ...`` and exit 2 (a command still working at the bound gets Ctrl-C
and must then end with one line and exit 130, or 0 for a server); no traceback; no
process it started left alive 10 s after it ended; no file of the inputs changed (their
sha256 before and after each run, lock files and a model's evaluation.json aside).
Orphans are found wherever they went: this process is a child subreaper
(``PR_SET_CHILD_SUBREAPER``), so whatever the command started, Ray's agents and
workers in sessions and process groups of their own included, stays below it.

    python bench/command_fuzz.py [--trials 300] [--variants 3] [--bound 60] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROFILE = "emo11"
IGNORED = (".facetwin.lock", "evaluation.json")  # a lock, and evaluate's own output
SERVERS = ("annotate", "virtual-bus")  # run until Ctrl-C, which ends them with 0
RESUMED = ("run/", "identify/", "sweep/")  # folders their reading command resumes into
# Commands that start workers, with arguments that keep them working a while.
KILLED = {
    "collect": ["--profile", PROFILE, "--samples", "4096", "--no-images", "--workers", "2"],
    "onsets": ["--profile", PROFILE, "--synthetic", "--people", "40", "--per-person", "2",
               "--image-size", "64", "--workers", "2"],
    "sweep": ["--profile", PROFILE, "--targets", "happiness,surprise", "--seeds", "1",
              "--budget", "30", "--workers", "2"],
    "identify": ["--profile", PROFILE, "--simulate", "realistic", "--poses", "48",
                 "--workers", "2"],
    "optimize": ["--profile", PROFILE, "--target", "happiness", "--budget", "200",
                 "--workers", "2"],
}
GRACE_S = 30.0  # after Ctrl-C at the bound


# -- inputs -----------------------------------------------------------------------------

def make_inputs(root: Path) -> dict[str, Path]:
    """Every kind of file the commands read, made by the commands' own functions."""
    import imageio.v3 as iio
    from skimage.data import astronaut

    from facetwin import profile as profiles
    from facetwin.agents.preference.answers import AnswerLog
    from facetwin.agents.inverse.collect import collect
    from facetwin.agents.preference.pool import build_pool
    from facetwin.agents.preference.fit import fit_preference
    from facetwin.agents.inverse.train import train
    from facetwin.agents.optimize.tune import tune
    from facetwin.hardware.journal import Journal

    from facetwin.agents.coexpress.record import record_synthetic
    from facetwin.agents.coexpress.train import train_predictor
    from facetwin.agents.identify import identify
    from facetwin.agents.identify.session import HiddenRobot
    from facetwin.agents.optimize.sweep import sweep
    from facetwin.envs.face_env import FaceTwinEnv
    from facetwin.sim.randomization import Randomization

    p = profiles.load(PROFILE)
    i = {"data": root / "data", "ridge": root / "ridge", "mlp-mp": root / "mlp-mp",
         "pool": root / "pool", "pref": root / "pref", "run": root / "run",
         "journal": root / "journal.jsonl",
         "picture": root / "face.png", "a_file": root / "a_file.txt",
         "onsets": root / "onsets", "predictor": root / "predictor",
         "identify": root / "identify", "robot": root / "lab.robot.json",
         "sweep": root / "sweep"}
    collect(PROFILE, "babble", 128, i["data"], image_size=64, progress=False)
    train("ridge", i["data"], i["ridge"], progress=False)
    train("mlp", i["data"], i["mlp-mp"], features="mediapipe", epochs=2, progress=False)
    pool = build_pool(PROFILE, "happiness", i["pool"], size=4, image_size=64, progress=False)
    log = AnswerLog(i["pool"] / "answers.jsonl")
    for k, (a, b) in enumerate(zip(pool.ids, pool.ids[1:])):
        log.append("ana", (a, b), ("left", "right")[k % 2], "mergesort")
    fit_preference(pool, log.records, i["pref"], folds=1, epochs=5)
    tune(PROFILE, "happiness", i["run"], methods=("random",), budget=3, image_size=64,
         progress=False)
    journal = Journal(i["journal"], p.name, p.sha256)
    for _ in range(5):
        journal.append("command", requested=p.neutral.tolist())
    journal.close()
    iio.imwrite(i["picture"], astronaut())
    i["a_file"].write_text("not a folder")
    record_synthetic(PROFILE, 6, i["onsets"], per_person=2, image_size=128, progress=False)
    train_predictor(i["onsets"], i["predictor"], steps=20, hidden=32, progress=False)
    env = HiddenRobot(FaceTwinEnv(p, randomization=Randomization.realistic(),
                                  features="camera", image_size=128), 3)
    try:
        found = identify(env, i["identify"], "lab", 48, blocks=["camera_offset"],
                         progress=False)
    finally:
        env.close()
    found.path.rename(i["robot"])
    sweep(PROFILE, i["sweep"], targets=["happiness"], seeds=1, method="random", budget=2,
          progress=False)
    return i


def baselines(i: dict[str, Path], out: Path) -> dict[str, list[str]]:
    """Arguments that work for each command, small enough to end within the bound."""
    prof = ["--profile", PROFILE]
    return {
        "demo": [*prof, "--budget", "2", "--samples", "128", "--workers", "1",
                 "--out", str(out)],
        "expressions": [*prof, "--size", "64", "--fps", "5", "--transition", "0.2",
                        "--hold", "0.1", "--out", str(out)],
        "optimize": [*prof, "--target", "happiness", "--budget", "2", "--workers", "1",
                     "--out", str(out)],
        "collect": [*prof, "--samples", "8", "--image-size", "48", "--out", str(out)],
        "train": ["--model", "ridge", "--data", str(i["data"]), "--out", str(out)],
        "evaluate": ["--model", str(i["ridge"]), "--data", str(i["data"]),
                     "--closed-loop", "2"],
        "mimic": [*prof, "--model", str(i["mlp-mp"]), "--source", str(i["picture"]),
                  "--fps", "5", "--out", str(out)],
        "profiles": [],
        "envelope": ["--profile", "nonexistent-profile"],  # refits take minutes
        "virtual-bus": [*prof, "--link", str(out.parent / f"{out.name}.link")],
        "calibrate": [*prof, "--port", str(out.parent / "no-such-port"), "--seconds", "1"],
        "replay": [str(i["journal"])],
        "pool": [*prof, "--expression", "happiness", "--size", "2", "--image-size", "48",
                 "--out", str(out)],
        "annotate": ["--pool", str(i["pool"]), "--port", "0"],
        "fit-preference": ["--pool", str(i["pool"]), "--folds", "1", "--epochs", "5",
                           "--out", str(out)],
        "sweep": [*prof, "--targets", "happiness", "--seeds", "1", "--method", "random",
                  "--budget", "2", "--workers", "1", "--out", str(out)],
        "onsets": [*prof, "--synthetic", "--people", "6", "--per-person", "1",
                   "--image-size", "64", "--workers", "1", "--out", str(out)],
        "train-predictor": ["--data", str(i["onsets"]), "--steps", "20", "--out", str(out)],
        "evaluate-predictor": ["--predictor", str(i["predictor"]), "--data", str(i["onsets"])],
        "coexpress": [*prof, "--inverse", str(i["mlp-mp"]), "--predictor", str(i["predictor"]),
                      "--source", str(i["picture"]), "--fps", "5", "--no-preview",
                      "--out", str(out)],
        "identify": [*prof, "--simulate", "realistic", "--seed", "3", "--poses", "48",
                     "--fit", "camera_offset", "--workers", "1", "--out", str(out)],
    }


# -- arguments --------------------------------------------------------------------------

def options_of(command: str) -> dict[str, argparse.Action]:
    from facetwin.cli import build_parser

    return {a.option_strings[0]: a for a in build_parser().commands[command]._actions
            if a.option_strings and a.option_strings[0] != "-h"}


def random_value(rng, i: dict[str, Path], scratch: Path) -> str:
    kinds = [
        lambda: str(int(rng.choice([0, -1, 1, 2, 10**9, 10**18, -(10**9)]))),
        lambda: repr(float(rng.choice([0.0, -0.5, 1e-300, 1e300, 3.7, -1e9]))),
        lambda: str(rng.choice(["nan", "inf", "-inf", "NaN", "1e999"])),
        lambda: str(rng.choice(["", " ", "abc", "--", "-1x", "0x10", "1_000", "é", "\t"])),
        lambda: "x" * int(rng.integers(200, 5000)),
        lambda: str(rng.choice([str(i["a_file"]), str(i["a_file"] / "sub"),
                                str(scratch / "missing" / "deeper"), str(i["data"]),
                                str(i["pool"] / "pool.json"), "/", "/dev/null",
                                str(i["picture"])])),
    ]
    return kinds[int(rng.integers(len(kinds)))]()


def mutate(argv: list[str], options: dict[str, argparse.Action], rng, i, scratch,
           out: Path) -> tuple[list[str], str]:
    argv = list(argv)
    what = []
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["value", "value", "value", "drop", "unknown"])
        if kind == "unknown":
            argv += ["--no-such-option", "1"]
            what.append("an unknown option")
            continue
        if not options:
            continue
        name = str(rng.choice(sorted(options)))
        action = options[name]
        if name in argv:
            k = argv.index(name)
            del argv[k:k + (1 if action.nargs == 0 else 2)]
        if kind == "drop":
            what.append(f"no {name}")
            continue
        if action.nargs == 0:
            argv.append(name)
            what.append(name)
            continue
        if name == "--out" and rng.random() < 0.5:
            value = str(out)  # keep an output that cannot be an input
        else:
            value = random_value(rng, i, scratch)
            if name == "--out" and any(value == str(v) for v in i.values()):
                value = str(out)
        argv += [name, value]
        what.append(f"{name} {value[:24]!r}")
    return argv, ", ".join(what)


# -- running one command ----------------------------------------------------------------

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans of the commands this process runs are re-parented to it, not to init:
    whatever a command started stays below this process, wherever it went."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def descendants() -> list[int]:
    """This process's living descendants (zombies reaped on the way)."""
    from facetwin.lifeline import below, processes

    while True:  # orphans that died since are this process's zombies now
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return list(below(os.getpid(), processes()))


def run(argv: list[str], bound_s: float, env: dict, cwd: Path,
        kill_after_s: float | None = None) -> dict:
    """Runs one command in `cwd`, so that a fuzzed relative path lands in the scratch
    folder; with ``kill_after_s``, SIGKILLs the command alone that long after its start."""
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "facetwin.cli", *argv],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=cwd, start_new_session=True, errors="replace")
    interrupted = False
    try:
        out, err = child.communicate(timeout=bound_s if kill_after_s is None else kill_after_s)
    except subprocess.TimeoutExpired:
        interrupted = True
        if kill_after_s is not None:
            child.kill()
            out, err = child.communicate()
        else:
            os.killpg(child.pid, signal.SIGINT)  # as a terminal's Ctrl-C
            try:
                out, err = child.communicate(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                out, err = child.communicate()
                left = _end(time.monotonic())
                return {"rc": None, "err": err, "interrupted": True, "orphans": len(left),
                        "left": left, "seconds": time.monotonic() - started}
    left = _end(time.monotonic() + 10.0)
    return {"rc": child.returncode, "err": err, "interrupted": interrupted,
            "orphans": len(left), "left": left, "seconds": time.monotonic() - started}


def _end(deadline: float) -> list[str]:
    """What the command left running at ``deadline`` (their command lines), killed then."""
    while (left := descendants()) and time.monotonic() < deadline:
        time.sleep(0.2)
    names = []
    for pid in left:
        try:
            names.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                         .decode(errors="replace")[:100])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass
    return names


def facetwin_lines(err: str) -> list[str]:
    """stderr without the progress bars and the libraries' own log lines (MediaPipe's
    glog, MuJoCo's and TensorFlow Lite's warnings), which are not the command's words."""
    keep = []
    for line in err.splitlines():
        line = line.split("\r")[-1].strip()
        if line.startswith("facetwin:") or "Traceback" in line or line.startswith(
                ("File \"", "raise ", "During handling")):
            keep.append(line)
    return keep


def verdict(command: str, result: dict) -> str:
    lines = facetwin_lines(result["err"])
    if result["rc"] is None:
        return "hung after Ctrl-C"
    if any("Traceback" in line for line in lines):
        return "traceback"
    if result["orphans"]:
        return "orphans"
    if result.get("killed") and result["rc"] == -signal.SIGKILL:
        return KILLED_CLEANLY
    if result["interrupted"]:
        if command in SERVERS and result["rc"] == 0:
            return "served until Ctrl-C, exit 0"
        ok = result["rc"] == 130 and len(lines) == 1
        return "working at the bound; Ctrl-C: one line, exit 130" if ok else "bad Ctrl-C end"
    if result["rc"] == 0:
        return "exit 0"
    if result["rc"] == 2 and len(lines) == 1:
        return "one line, exit 2"
    return f"exit {result['rc']} with {len(lines)} facetwin line(s)"


UNNOTICED = "exit 0, the damage unnoticed"  # harmless, or read as other values
KILLED_CLEANLY = "SIGKILL: nothing left 10 s after"
GOOD = ("exit 0", "one line, exit 2", "served until Ctrl-C, exit 0",
        "working at the bound; Ctrl-C: one line, exit 130", UNNOTICED, KILLED_CLEANLY)


def fingerprint(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file() and f.name not in IGNORED
            and not f.name.endswith(".link")}


# -- file readers -----------------------------------------------------------------------

def readers(i: dict[str, Path], out: Path,
            trained: list[int]) -> dict[str, tuple[list[Path], list[str]]]:
    """For each kind of file: the files, and a command that reads them (``trained``:
    the onset dataset's training people, whose shards train-predictor reads)."""
    from facetwin import profile as profiles
    from facetwin.agents.identify.poses import design

    shards = sorted((i["data"] / "shards").glob("*.parquet"))
    # The frame identify reads again: its before/after picture's pose.
    first_held_out = int(np.flatnonzero(design(profiles.load(PROFILE), 48).held_out)[0])
    return {
        "dataset": ([*shards, i["data"] / "meta.json"],
                    ["train", "--model", "ridge", "--data", str(i["data"]), "--out", str(out)]),
        "model": ([i["ridge"] / "model.json", i["ridge"] / "model.safetensors"],
                  ["evaluate", "--model", str(i["ridge"]), "--data", str(i["data"]),
                   "--closed-loop", "2"]),
        "mimicry model": ([i["mlp-mp"] / "model.json", i["mlp-mp"] / "model.safetensors"],
                          ["mimic", "--profile", PROFILE, "--model", str(i["mlp-mp"]),
                           "--source", str(i["picture"]), "--fps", "5", "--out", str(out)]),
        "pool and answers": ([i["pool"] / "pool.json", i["pool"] / "features.safetensors",
                              i["pool"] / "answers.jsonl",
                              sorted((i["pool"] / "images").glob("*.png"))[0]],
                             ["fit-preference", "--pool", str(i["pool"]), "--model",
                              "ranknet-image", "--folds", "1", "--epochs", "5",
                              "--out", str(out)]),
        "preference model": ([i["pref"] / "preference.json",
                              i["pref"] / "preference.safetensors"],
                             ["optimize", "--profile", PROFILE, "--target", "happiness",
                              "--preference", str(i["pref"]), "--budget", "2", "--workers",
                              "1", "--out", str(out)]),
        "run log": (sorted((i["run"] / "runs").glob("*.jsonl")),
                    ["optimize", "--profile", PROFILE, "--target", "happiness", "--method",
                     "random", "--budget", "3", "--workers", "1", "--out", str(i["run"])]),
        "journal": ([i["journal"]], ["replay", str(i["journal"])]),
        "picture": ([i["picture"]], ["optimize", "--profile", PROFILE, "--target-image",
                                     str(i["picture"]), "--budget", "1", "--workers", "1",
                                     "--out", str(out)]),
        "onset dataset": ([i["onsets"] / "shards" / f"person-{k:06d}.parquet"
                           for k in trained[:2]] + [i["onsets"] / "meta.json"],
                          ["train-predictor", "--data", str(i["onsets"]), "--steps", "20",
                           "--out", str(out)]),
        "predictor": ([i["predictor"] / "predictor.json",
                       i["predictor"] / "predictor.safetensors"],
                      ["evaluate-predictor", "--predictor", str(i["predictor"]), "--data",
                       str(i["onsets"])]),
        "robot file": ([i["robot"]], ["optimize", "--profile", PROFILE, "--target",
                                      "happiness", "--robot", str(i["robot"]), "--budget",
                                      "1", "--workers", "1", "--out", str(out)]),
        "identification": ([i["identify"] / "session.jsonl",
                            i["identify"] / "frames" / f"pose-{first_held_out:03d}.png"],
                           ["identify", "--profile", PROFILE, "--simulate", "realistic",
                            "--seed", "3", "--poses", "48", "--fit", "camera_offset",
                            "--workers", "1", "--name", "again", "--out",
                            str(i["identify"])]),
        "sweep": ([i["sweep"] / "sweep.json"],
                  ["sweep", "--profile", PROFILE, "--targets", "happiness", "--seeds", "1",
                   "--method", "random", "--budget", "2", "--workers", "1", "--out",
                   str(i["sweep"])]),
    }


def damage(path: Path, how: str, rng, donors: list[Path]) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:int(rng.integers(0, max(1, len(data))))])
    elif how == "bit-flipped":
        flipped = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(len(flipped)))
            flipped[k] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
    elif how == "empty":
        path.write_bytes(b"")
    else:  # another file's bytes under this name
        others = [d for d in donors if d.suffix != path.suffix] or donors
        path.write_bytes(others[int(rng.integers(len(others)))].read_bytes())


DAMAGES = ("truncated", "bit-flipped", "empty", "wrong format")


# -- main -------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300, help="argument trials in all")
    parser.add_argument("--variants", type=int, default=3,
                        help="damaged copies per file and kind of damage")
    parser.add_argument("--bound", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kills", type=int, default=3,
                        help="SIGKILLs of each command that starts workers")
    parser.add_argument("--parts", nargs="+", default=["arguments", "files", "killed"])
    args = parser.parse_args()
    become_subreaper()
    rng = np.random.default_rng(args.seed)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="facetwin-fuzz-") as tmp:
        root = Path(tmp)
        print("making the inputs ...", flush=True)
        inputs = make_inputs(root / "inputs")
        print(f"inputs made in {time.monotonic() - started:.0f} s", flush=True)
        tables, runs = {}, []
        if "arguments" in args.parts:
            tables["arguments"] = fuzz_arguments(args, rng, inputs, root, env, runs)
        if "files" in args.parts:
            tables["files"] = fuzz_files(args, rng, inputs, root, env, runs)
        if "killed" in args.parts:
            tables["killed"] = fuzz_killed(args, rng, root, env, runs)
    print(f"\n{sum(sum(c.values()) for t in tables.values() for c in t.values())} runs in "
          f"{time.monotonic() - started:.0f} s (bound {args.bound:g} s a run, seed "
          f"{args.seed})")
    for part, table in tables.items():
        outcomes = sorted({o for c in table.values() for o in c})
        print(f"\n| {part} | runs | " + " | ".join(outcomes) + " |")
        print("| --- | ---: |" + " ---: |" * len(outcomes))
        for name, counts in table.items():
            print(f"| {name} | {sum(counts.values())} | "
                  + " | ".join(str(counts[o]) for o in outcomes) + " |")
    broken = [r for r in runs if r[1] not in GOOD or r[2]]
    print(f"\nbroken contracts: {len(broken)} (a traceback, more than one line, exit other "
          "than 0/2/130, a hang, an orphan 10 s after the end or a changed input)")
    for argv, outcome, changed, err in broken[:40]:
        print(f"BROKEN {outcome}{' + changed ' + changed if changed else ''}: "
              f"facetwin {' '.join(a[:40] for a in argv)}\n  " + "\n  ".join(
                  facetwin_lines(err)[-4:] or err.strip().splitlines()[-3:]))


def fuzz_arguments(args, rng, inputs, root, env, runs) -> dict:
    table = collections.defaultdict(collections.Counter)
    scratch = root / "scratch"
    scratch.mkdir()
    commands = list(baselines(inputs, scratch / "o"))
    options = {c: options_of(c) for c in commands}
    before = fingerprint(root / "inputs")
    for trial in range(args.trials):
        command = commands[trial % len(commands)]
        out = scratch / f"out-{trial}"
        argv, what = mutate(baselines(inputs, out)[command], options[command], rng, inputs,
                            scratch, out)
        result = run([command, *argv], args.bound, env, scratch)
        outcome = verdict(command, result)
        after = fingerprint(root / "inputs")
        changed = ", ".join(k for k in before.keys() | after.keys()
                            if before.get(k) != after.get(k))
        if changed:
            outcome = "changed an input"
            before = after
        table[command][outcome] += 1
        runs.append(([command, *argv], outcome, changed, result["err"]))
        print(f"[{trial + 1}/{args.trials}] {command}: {what} -> {outcome} "
              f"({result['seconds']:.0f} s)", flush=True)
    return table


def fuzz_files(args, rng, inputs, root, env, runs) -> dict:
    table = collections.defaultdict(collections.Counter)
    donors = [f for f in (root / "inputs").rglob("*") if f.is_file()
              and f.name not in IGNORED and f.stat().st_size < 2**20]
    n = 0
    trained = json.loads((inputs["onsets"] / "meta.json").read_text())["splits"]["train"]
    for kind, (files, _) in readers(inputs, root / "o", trained).items():
        for path in files:
            for how in DAMAGES:
                for _ in range(args.variants):
                    n += 1
                    copy = root / f"copy-{n}"
                    shutil.copytree(root / "inputs", copy, symlinks=True)
                    moved = {k: copy / v.relative_to(root / "inputs") for k, v in
                             inputs.items()}
                    target = copy / path.relative_to(root / "inputs")
                    damage(target, how, rng, donors)
                    before = fingerprint(copy)
                    argv = readers(moved, root / f"out-f{n}", trained)[kind][1]
                    result = run(argv, args.bound, env, root)
                    outcome = verdict(argv[0], result)
                    if outcome == "exit 0":
                        outcome = UNNOTICED
                    after = fingerprint(copy)
                    changed = ", ".join(k for k in before.keys() | after.keys()
                                        if before.get(k) != after.get(k)
                                        and not k.startswith(RESUMED))
                    if changed:
                        outcome = "changed an input"
                    table[f"{kind}: {path.name}"][outcome] += 1
                    runs.append((argv, outcome, changed, result["err"]))
                    print(f"{kind} {path.name} {how} -> {outcome} "
                          f"({result['seconds']:.0f} s)", flush=True)
                    shutil.rmtree(copy, ignore_errors=True)
    return table


def fuzz_killed(args, rng, root, env, runs) -> dict:
    table = collections.defaultdict(collections.Counter)
    scratch = root / "killed"
    scratch.mkdir()
    for command, argv in KILLED.items():
        for k in range(args.kills):
            after = float(rng.uniform(4.0, 25.0))
            argv_k = [command, *argv, "--out", str(scratch / f"{command}-{k}")]
            result = run(argv_k, args.bound, env, scratch, kill_after_s=after)
            result["killed"] = True
            outcome = verdict(command, result)
            table[command][outcome] += 1
            runs.append((argv_k, outcome, "", result["err"]))
            print(f"{command} SIGKILL at {after:.1f} s -> {outcome}"
                  + "".join(f"\n  left: {name}" for name in result["left"]), flush=True)
    return table


if __name__ == "__main__":
    main()
