"""Benchmark the ``--watch`` snapshot/diff path: CPU per snapshot at N sockets.

    sudo python3 benchmarks/bench_watch.py [--size 90000] [--netns NAME] [--steps 10]
        [--rounds 5] [-i] [--keep]

Fills a private namespace with ``tests/tools/fill.py`` (or uses ``--netns``), builds a
:class:`sockscope.ops.watch.Watcher` inside it (TCP and UDP, every state, as ``-tua
--watch``; ``-i`` asks for tcp_info as ``-tuai --watch`` does), takes the baseline, then
measures the CPU (user and system, ``resource.getrusage``) of ``--steps`` snapshots and
diffs, for the compiled core and pure Python in alternating rounds (one child process
per measurement); prints the median per snapshot and the percent of one core at a 1 s
interval. The system time is mostly the kernel building the sock_diag dump (for TCP one
TCPDIAG_GETSOCK dump of both families, less than the per-family dumps of ``ss -tuan``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys
import sockscope
from sockscope.ops import watch
from sockscope.ops.netns import entered
name, steps, info = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
with entered(name):
    sel = sockscope.Query(tables={"tcp", "udp"}, states={"all"}).selection()
    w = watch.Watcher(sel, info, None, None, events=True)
w.baseline()
w.step()  # warm: the first diff sees every timer move
r0 = resource.getrusage(resource.RUSAGE_SELF)
for _ in range(steps):
    w.step()
    w.destroyed()
r1 = resource.getrusage(resource.RUSAGE_SELF)
n = sum(len(m) for m in w.prev.values())
print(json.dumps({"user": (r1.ru_utime - r0.ru_utime) / steps,
                  "sys": (r1.ru_stime - r0.ru_stime) / steps, "sockets": n,
                  "backend": sockscope.backend()}))
"""


def measure(name: str, steps: int, info: bool, pure: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    env.pop("SOCKSCOPE_PURE", None)
    if pure:
        env["SOCKSCOPE_PURE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(steps), "1" if info else "0"],
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=90000)
    ap.add_argument("--netns")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-i", dest="info", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    fill = [sys.executable, str(REPO / "tests/tools/fill.py")]
    name = a.netns or f"sockscope-benchwatch-{os.getpid()}"
    if a.netns is None:
        subprocess.run([*fill, "up", name, str(a.size)], check=True, stdout=subprocess.DEVNULL)
    try:
        runs: dict[str, list[dict[str, float]]] = {"compiled": [], "pure": []}
        for _ in range(a.rounds):  # alternating A/B rounds
            runs["compiled"].append(measure(name, a.steps, a.info, pure=False))
            runs["pure"].append(measure(name, a.steps, a.info, pure=True))
        print(
            "| backend | inet sockets | user ms/snapshot | sys ms/snapshot | % of a core at 1 s |"
        )
        print("|---|---|---|---|---|")
        for backend, got in runs.items():
            user = statistics.median(r["user"] for r in got) * 1000
            sys_ = statistics.median(r["sys"] for r in got) * 1000
            n = int(statistics.median(r["sockets"] for r in got))
            print(f"| {backend} | {n} | {user:.1f} | {sys_:.1f} | {(user + sys_) / 10:.1f} |")
    finally:
        if a.netns is None and not a.keep:
            subprocess.run([*fill, "down", name], check=False, stdout=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
