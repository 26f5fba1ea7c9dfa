#!/usr/bin/env python3
"""Benchmark a ``--metrics`` scrape on namespaces full of sockets.

    sudo python benchmarks/bench_metrics.py [--sizes 10000,90000] [--reps 5]
        [--cand 'python -m sockscope'] [--cmd '-ta --metrics' ...] [--keep]

For each size, ``benchmarks/fill.py up NAME N`` fills a private namespace (loopback
only) with about N TCP sockets. The listing ``-tan`` and each metrics command then run
inside it alternately (``--reps`` times after one untimed warm-up, output to
/dev/null), with the compiled core and with SOCKSCOPE_PURE=1. Reported per command
and size: median wall time, median CPU time (user + system) and peak RSS (GNU time's,
see bench.py's ``run_once``). "Flat memory" is the peak RSS staying the same from the
small size to the large one: the metrics keep one counter per series, never a record
per socket. Target (issue 16): a scrape at ~90k sockets in at most 0.5 s.
The result is a Markdown table on stdout (progress on stderr). Not run in CI.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import log, run_once

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CMDS = ["-tan", "-ta --metrics", "-tai --metrics", "-ta --metrics=otlp-json"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,90000")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cand", default=f"{sys.executable} -m sockscope")
    ap.add_argument("--cmd", action="append", dest="cmds")
    ap.add_argument("--keep", action="store_true", help="leave the namespaces filled")
    args = ap.parse_args()
    cmds = args.cmds or DEFAULT_CMDS
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    backends = {"compiled": env, "pure": {**env, "SOCKSCOPE_PURE": "1"}}
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        name = f"sockscope-bench-metrics-{size}"
        filler = [sys.executable, str(REPO / "benchmarks" / "fill.py")]
        log(f"filling {name} with ~{size} sockets")
        subprocess.run([*filler, "up", name, str(size)], check=True, stdout=subprocess.DEVNULL)
        try:
            enter = ["nsenter", f"--net=/var/run/netns/{name}"]
            for cmd in cmds:
                for backend, benv in backends.items():
                    argv = [*enter, *shlex.split(args.cand), *shlex.split(cmd)]
                    run_once(argv, benv)  # warm-up
                    walls, cpus, rss = [], [], []
                    for _ in range(args.reps):
                        status, wall, peak, cpu = run_once(argv, benv)
                        if status != 0:
                            raise SystemExit(f"{cmd}: exit status {status}")
                        walls.append(wall)
                        cpus.append(cpu)
                        rss.append(peak)
                    rows.append(
                        (
                            size,
                            cmd,
                            backend,
                            statistics.median(walls),
                            statistics.median(cpus),
                            max(rss) / 1024,
                        )
                    )
                    log(f"{size} {cmd!r} {backend}: {rows[-1][3]:.3f} s, {rows[-1][5]:.1f} MiB")
        finally:
            if not args.keep:
                subprocess.run([*filler, "down", name], check=False)
    print("| sockets | command | backend | wall (s) | CPU (s) | peak RSS (MiB) |")
    print("|---:|---|---|---:|---:|---:|")
    for size, cmd, backend, wall, cpu, rss in rows:
        print(f"| {size} | `{cmd}` | {backend} | {wall:.3f} | {cpu:.3f} | {rss:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
