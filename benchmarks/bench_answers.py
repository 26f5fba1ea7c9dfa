#!/usr/bin/env python3
"""Benchmark the answer options (--count-by, --sort, --watch) on a namespace full of sockets.

    sudo python benchmarks/bench_answers.py [--size 100000] [--reps 5] [--netns NAME]
        [--cand 'python -m sockscope'] [--shared ../shared] [--watch-seconds 20] [--keep]

Without ``--netns``, ``../shared/tools/scenario.py up NAME SIZE`` fills a private
namespace first (about 89,000 TCP sockets for a size of 100,000). Reported:

* ``-tan`` (the listing) against ``-tan --count-by KEY`` for a key of about 1,000
  groups (``peer_prefix/26`` on the scenario) and ``-tan --sort``: median wall time
  of alternated runs, output to /dev/null, and the ratio to the listing;
* ``--watch=1``: the CPU (user + system, read from /proc/PID/stat) the watcher uses in
  steady state, over ``--watch-seconds`` after a warm-up of 5 s (baseline snapshot
  and start-up excluded), as a percentage of one core; with and without ``-i``.

Not a test: timings vary by ±15% on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (clock ticks)


def watch_cpu(prefix: list[str], args: list[str], seconds: float) -> float:
    """Percent of one core used by a --watch run in steady state."""
    proc = subprocess.Popen([*prefix, *args], stdout=subprocess.DEVNULL)
    try:
        time.sleep(5)
        c0, t0 = cpu_ticks(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_ticks(proc.pid), time.monotonic()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    hz = os.sysconf("SC_CLK_TCK")
    return 100.0 * (c1 - c0) / hz / (t1 - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--netns")
    ap.add_argument("--cand", default=f"{sys.executable} -m sockscope")
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--key", default="peer_prefix/26")
    ap.add_argument("--watch-seconds", type=float, default=20)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    scenario = Path(a.shared) / "tools" / "scenario.py"
    name = a.netns or f"bench-answers-{os.getpid()}"
    if a.netns is None:
        subprocess.run([sys.executable, str(scenario), "up", name, str(a.size)], check=True)
    prefix = ["nsenter", f"--net=/var/run/netns/{name}", *shlex.split(a.cand)]
    try:
        count = subprocess.run(
            [*prefix, "-tan", "--count-by", a.key, "-H"], capture_output=True, check=True
        ).stdout.count(b"\n")
        sockets = subprocess.run([*prefix, "-tanH"], capture_output=True, check=True).stdout.count(
            b"\n"
        )
        cmds = {
            "-tan": ["-tan"],
            f"-tan --count-by {a.key}": ["-tan", "--count-by", a.key],
            "-tan --sort -recv_q,peer_address": ["-tan", "--sort", "-recv_q,peer_address"],
        }
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for args in cmds.values():
            wall([*prefix, *args])  # warm-up
        for _ in range(a.reps):
            for k, args in cmds.items():
                times[k].append(wall([*prefix, *args]))
        base = statistics.median(times["-tan"])
        print(f"{sockets} TCP sockets; --count-by {a.key}: {count} groups; median of {a.reps}\n")
        print("| command | median (s) | vs -tan |")
        print("|---|---:|---:|")
        for k, ts in times.items():
            m = statistics.median(ts)
            print(f"| `{k}` | {m:.3f} | {m / base:.2f}x |")
        print()
        print("| watch | CPU (% of one core) |")
        print("|---|---:|")
        for args in (["-ta", "--watch=1"], ["-tai", "--watch=1"]):
            pct = watch_cpu(prefix, args, a.watch_seconds)
            print(f"| `{' '.join(args)}` | {pct:.1f} |")
    finally:
        if a.netns is None and not a.keep:
            subprocess.run([sys.executable, str(scenario), "down", name], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
