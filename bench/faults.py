"""How fast faults are noticed and handled on the hardware path, in milliseconds: the
figures the test suite does not assert (it checks what happens, not how fast).

    python bench/faults.py [--profile rena25] [--repeats 50]

Against the virtual bus on a pseudo-terminal:
- a silent, a corrupt and an erroring servo: from the read to the typed error;
- a servo fault in the serial backend: from a step at neutral (which reads the servos)
  to torque off on every servo, as the servos report it;
- the bus process killed: from the kill to the error of the next read;
- the watchdog: from the end of the idle time to the first neutral command on the wire;
- the journal: one record appended and fsynced.
Each row gives the median and the 95th percentile, beside the profile's control period.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.envs.serial_backend import HardwareError, SerialBackend
from facetwin.hardware.bus import FeetechBus
from facetwin.hardware.journal import Journal
from facetwin.hardware.protocol import BusError
from facetwin.hardware.virtual_bus import VirtualBus


def _ms(samples: list[float]) -> str:
    a = np.array(samples) * 1e3
    return f"{np.median(a):.2f} | {np.percentile(a, 95):.2f}"


def bus_faults(p, link: Path, repeats: int) -> dict[str, list[float]]:
    out = {"silent servo -> BusTimeout": [], "corrupt replies -> CorruptPacket": [],
           "error bits -> OverheatError": []}
    with VirtualBus.for_profile(p, link) as vbus, \
            FeetechBus.for_profile(str(link), p) as bus:
        ids = sorted(vbus.servos)
        for (name, samples), inject in zip(out.items(), (
                lambda: vbus.faults.silent.add(3), lambda: vbus.faults.corrupt.add(3),
                lambda: vbus.faults.error_bits.update({3: 0x04}))):
            inject()
            for _ in range(repeats):
                t = time.perf_counter()
                try:
                    bus.read_positions(ids)
                except BusError:
                    samples.append(time.perf_counter() - t)
            vbus.faults.silent.clear(), vbus.faults.corrupt.clear(), vbus.faults.error_bits.clear()
    return out


def backend_fault_to_torque_off(p, link: Path, repeats: int) -> list[float]:
    samples = []
    for k in range(repeats):
        with VirtualBus.for_profile(p, link) as vbus:
            backend = SerialBackend(p, str(link), None, 64, journal=link.with_suffix(f".{k}.jsonl"))
            vbus.faults.error_bits[9] = 0x20
            t = time.perf_counter()
            try:
                backend.step(p.neutral, "settle")  # its settle reads the servos
            except HardwareError:
                while any(s.torque_on for s in vbus.servos.values()):
                    time.sleep(0.0002)
                samples.append(time.perf_counter() - t)
            backend.close()
    return samples


def kill_to_error(p, link: Path, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        proc = subprocess.Popen([sys.executable, "-m", "facetwin.cli", "virtual-bus", "--profile",
                                 p.name, "--link", str(link)], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()
        with FeetechBus.for_profile(str(link), p) as bus:
            bus.read_positions([1])
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            t = time.perf_counter()
            try:
                bus.read_positions([1])
            except BusError:
                samples.append(time.perf_counter() - t)
    return samples


def watchdog_reaction(p, link: Path, repeats: int) -> list[float]:
    samples = []
    with VirtualBus.for_profile(p, link) as vbus:
        backend = SerialBackend(p, str(link), None, 64, journal=link.with_suffix(".wd.jsonl"))
        for _ in range(repeats):
            backend.step(p.expressions["surprise"], "period")
            sent = len(vbus.goal_log)
            idle_ends = time.monotonic() + p.watchdog_s
            while len(vbus.goal_log) == sent:
                time.sleep(0.0002)
            samples.append(vbus.goal_log[sent][0] - idle_ends)
        backend.close()
    return samples


def journal_append(path: Path, repeats: int) -> list[float]:
    journal, samples = Journal(path, "bench", "0"), []
    for k in range(repeats):
        t = time.perf_counter()
        journal.append("command", requested=[0.5] * 25, applied=[0.5] * 25, ticks={})
        journal.flush()
        samples.append(time.perf_counter() - t)
    journal.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="rena25")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    p = profiles.load(args.profile)
    warnings.simplefilter("ignore")  # the nominal-calibration warning, once per backend
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "bus"
        rows = bus_faults(p, link, args.repeats)
        rows["servo fault -> torque off on every servo"] = backend_fault_to_torque_off(
            p, link, max(5, args.repeats // 5))
        rows["bus process killed -> PortGone"] = kill_to_error(p, link, max(3, args.repeats // 10))
        rows["watchdog: idle time over -> neutral on the wire"] = watchdog_reaction(
            p, link, max(3, args.repeats // 10))
        rows["journal record appended and fsynced"] = journal_append(Path(tmp) / "j.jsonl",
                                                                     args.repeats)
    print(f"profile {p.name}: control period {p.control_period_s * 1e3:.0f} ms, reply timeout "
          f"{p.hardware.reply_timeout_s * 1e3:g} ms, one retry")
    print("| measure (ms) | median | p95 |")
    print("| --- | ---: | ---: |")
    for name, samples in rows.items():
        print(f"| {name} | {_ms(samples)} |")


if __name__ == "__main__":
    main()
