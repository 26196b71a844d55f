"""A resumed identification against an uninterrupted one (issue 37).

`facetwin identify --simulate realistic --seed S --poses 48` is run once through, then
again killed at three points (5 poses in, 30 poses in, during the Jacobian) with SIGKILL
and with Ctrl-C (SIGINT to its process group, as a terminal sends it), and each run
again to its end. Printed: the held-out landmark error each reached, against the
uninterrupted run's, and how many lines of MuJoCo's instability warning reached the
terminal in all.

    python bench/identify_resume.py [--seeds 3 7] [--out bench/out/identify_resume]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

POINTS = {"5 poses": ("poses", 5), "30 poses": ("poses", 30), "jacobian": ("jacobian", 0)}
SIGNALS = {"SIGKILL": signal.SIGKILL, "Ctrl-C": signal.SIGINT}


def command(seed: int, out: Path) -> list[str]:
    return [sys.executable, "-m", "facetwin.cli", "identify", "--profile", "emo11",
            "--simulate", "realistic", "--seed", str(seed), "--poses", "48", "--out", str(out)]


def poses_done(out: Path) -> int:
    try:
        return len((out / "session.jsonl").read_text().splitlines()) - 1
    except OSError:
        return 0


def finish(seed: int, out: Path) -> tuple[float, float, str]:
    done = subprocess.run(command(seed, out), capture_output=True, text=True)
    said = done.stdout + done.stderr
    found = re.search(r"nominal twin ([\d.]+) px, identified ([\d.]+) px", said)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"identify failed ({done.returncode}): {said[-600:]}")
    return float(found[1]), float(found[2]), said


def interrupted(seed: int, out: Path, point: tuple[str, int], sig: int) -> str:
    """Run until ``point``, then send ``sig``; what the run printed."""
    log = out.with_name(out.name + ".log")
    with open(log, "w") as said:
        child = subprocess.Popen(command(seed, out), stdout=said, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        stage, n = point
        while child.poll() is None:
            if stage == "poses" and poses_done(out) >= n:
                break
            if stage == "jacobian" and poses_done(out) >= 48:
                time.sleep(8.0)  # well into the Jacobian
                break
            time.sleep(0.02)
        if child.poll() is None:
            if sig == signal.SIGINT:
                os.killpg(child.pid, sig)
            else:
                child.send_signal(sig)
        child.wait()
    return log.read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 7],
                        help="hidden robots (3: the issue's)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/identify_resume"))
    args = parser.parse_args()
    rows, warnings = [], 0
    for seed in args.seeds:
        whole = args.out / f"s{seed}-whole"
        shutil.rmtree(whole, ignore_errors=True)
        nominal, reference, said = finish(seed, whole)
        warnings += said.count("QACC")
        rows.append((seed, "uninterrupted", "", nominal, reference, 1.0))
        for where, point in POINTS.items():
            for name, sig in SIGNALS.items():
                out = args.out / f"s{seed}-{where.replace(' ', '')}-{name}"
                shutil.rmtree(out, ignore_errors=True)
                first = interrupted(seed, out, point, sig)
                at = poses_done(out)
                nominal, identified, said = finish(seed, out)
                warnings += first.count("QACC") + said.count("QACC")
                rows.append((seed, f"{name} at {where} ({at} recorded)", "", nominal,
                             identified, identified / reference))
                print(rows[-1], flush=True)
    print("\n| robot (seed) | run | held-out error, nominal twin (px) | identified (px) "
          "| against uninterrupted |")
    print("|---|---|---:|---:|---:|")
    for seed, run, _, nominal, identified, ratio in rows:
        print(f"| {seed} | {run} | {nominal:.2f} | {identified:.2f} | {ratio:.2f} |")
    worst = max(abs(r[5] - 1) for r in rows)
    print(f"\nworst resumed run: {100 * worst:.1f} % from the uninterrupted one's error; "
          f"MuJoCo instability warnings on the terminal: {warnings}")


if __name__ == "__main__":
    main()
