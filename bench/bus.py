"""Servo-bus throughput over a pseudo-terminal: sustained 25-servo sync writes of goal
positions and sync-read round trips against the virtual bus, beside the wire's limit at
the profile's baud rate.

    python bench/bus.py [--profile rena25] [--seconds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.hardware.bus import FeetechBus
from facetwin.hardware.calibration import Calibration
from facetwin.hardware.protocol import encode, sync_write_packet
from facetwin.hardware.servo_models import servo_model
from facetwin.hardware.virtual_bus import VirtualBus

BITS_PER_BYTE = 10  # start + 8 data + stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="rena25")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    p = profiles.load(args.profile)
    cal = Calibration.load(p)
    rng = np.random.default_rng(0)
    commands = [cal.to_ticks(rng.uniform(p.low, p.high)) for _ in range(256)]
    goal = servo_model(p.hardware.model).register("Goal_Position")
    packet_bytes = len(sync_write_packet(goal.address, {i: encode(goal, 0) for i in cal.ids}))
    wire_ms = packet_bytes * BITS_PER_BYTE / p.hardware.baudrate * 1e3

    with tempfile.TemporaryDirectory() as tmp, \
            VirtualBus.for_profile(p, Path(tmp) / "bus") as vbus, \
            FeetechBus.for_profile(str(vbus.link), p) as bus:
        bus.torque(cal.ids, True)
        sent, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            bus.write_positions(commands[sent % len(commands)])
            sent += 1
        elapsed = time.perf_counter() - start
        time.sleep(0.05)
        received = sum(len(g) == len(cal.ids) for _, g in vbus.goal_log)
        rtts = []
        for _ in range(300):
            t = time.perf_counter()
            bus.read_positions(cal.ids)
            rtts.append((time.perf_counter() - t) * 1e3)

    print(f"profile {p.name}: {len(cal.ids)} servos, {p.hardware.baudrate / 1e6:g} Mbps wire")
    print("| measure | pseudo-terminal | wire limit |")
    print("| --- | ---: | ---: |")
    print(f"| sync write of {len(cal.ids)} goal positions ({packet_bytes} B) | "
          f"{sent / elapsed:,.0f} cmds/s ({received:,} of {sent:,} parsed by the servos) | "
          f"{1e3 / wire_ms:,.0f} cmds/s ({wire_ms:.2f} ms each) |")
    # The request (8 bytes + one per id) and one 8-byte status packet per servo.
    read_wire_ms = (8 + 9 * len(cal.ids)) * BITS_PER_BYTE / p.hardware.baudrate * 1e3
    print(f"| sync-read round trip, {len(cal.ids)} positions | median "
          f"{statistics.median(rtts):.2f} ms, p99 {np.percentile(rtts, 99):.2f} ms | "
          f"{read_wire_ms:.2f} ms |")


if __name__ == "__main__":
    main()
