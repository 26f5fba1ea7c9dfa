#!/usr/bin/env python3
"""Benchmark sockscope against ss on namespaces full of real sockets.

    sudo python benchmarks/bench.py [--sizes 1000,10000,100000] [--reps 5]
        [--ss /usr/bin/ss] [--cand 'python -m sockscope']
        [--cmd '-tan' --cmd '-tani' ...] [--keep]

Runs from a clone: nothing outside the repository is needed but root, ``ip``, ``nsenter``
and the ss to compare with.  For each size, the project's ``tests/tools/fill.py``
fills a private network namespace (loopback only) with about N sockets of every kind
(``fill.py up NAME N --seed S``).  Each
command then runs inside it (``nsenter --net=...``, which execs the tool in place,
so ``os.wait4`` reports the tool's own peak RSS) alternately for ss and sockscope,
``--reps`` times each after one untimed warm-up run, output to /dev/null.
Reported per command: median wall time of each, the ratio sockscope/ss, and peak
RSS (``ru_maxrss``).  A command a tool rejects (non-zero exit) is shown as n/a.
The result is a Markdown table on stdout (progress goes to stderr).
Not run in CI: it needs root and minutes per size.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "tools"))
import fill  # noqa: E402

DEFAULT_CMDS = ["-tan", "-tanp", "-tani", "-tan dport = :6379", "-tan --json-lines", "-an", "-s"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_once(argv: list[str], env: dict[str, str]) -> tuple[int, float, int]:
    """(exit status, wall seconds, peak RSS in KiB) of one run.

    The peak RSS comes from GNU time when it is installed: a child forked straight from
    this driver would carry the driver's own pages into its ru_maxrss (it survives
    exec), a floor of about 15 MiB here. Without /usr/bin/time, os.wait4 is used.
    """
    gnu_time = "/usr/bin/time"
    use_time = os.access(gnu_time, os.X_OK)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        cmd = [gnu_time, "-f", "%M", "-o", rss.name, *argv] if use_time else argv
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss
        if use_time:
            text = rss.read().split()
            # GNU time writes "Command exited with non-zero status N" before %M
            peak = int(text[-1]) if text and text[-1].isdigit() else peak
    return code, wall, peak


class Tool:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env


def bench_command(netns: str, tools: list[Tool], args: str, reps: int) -> dict[str, dict]:
    enter = ["nsenter", f"--net=/var/run/netns/{netns}"]
    words = shlex.split(args)
    results: dict[str, dict] = {}
    for tool in tools:  # warm-up, and drop tools that reject the command
        status, _, _ = run_once([*enter, *tool.argv, *words], tool.env)
        results[tool.name] = {"ok": status == 0, "wall": [], "rss": []}
    for _ in range(reps):
        for tool in tools:  # alternate, so drift hits both alike
            res = results[tool.name]
            if res["ok"]:
                status, wall, rss = run_once([*enter, *tool.argv, *words], tool.env)
                res["ok"] = status == 0
                res["wall"].append(wall)
                res["rss"].append(rss)
    return results


def fmt_time(res: dict) -> str:
    return f"{statistics.median(res['wall']):.3f}" if res["ok"] and res["wall"] else "n/a"


def fmt_rss(res: dict) -> str:
    return f"{max(res['rss']) / 1024:.1f}" if res["ok"] and res["rss"] else "n/a"


def ratio(cand: dict, ref: dict) -> str:
    if not (cand["ok"] and ref["ok"] and cand["wall"] and ref["wall"]):
        return "n/a"
    return f"{statistics.median(cand['wall']) / statistics.median(ref['wall']):.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ss", default="/usr/bin/ss")
    ap.add_argument(
        "--cand",
        default=f"{shlex.quote(sys.executable)} -m sockscope",
        help="sockscope command (default: %(default)s, with PYTHONPATH=<repo>/src); "
        "'sockscope' runs the installed console script",
    )
    ap.add_argument("--cmd", action="append", help=f"ss arguments (default: {DEFAULT_CMDS})")
    ap.add_argument("--keep", action="store_true", help="leave the namespaces up")
    a = ap.parse_args()
    problem = fill.live_problem()
    if problem:
        sys.exit(f"bench.py: {problem}")
    if not os.access(a.ss, os.X_OK):
        sys.exit(f"bench.py: {a.ss} is not executable (use --ss)")
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "HOME": os.environ.get("HOME", "/root"),
    }
    version = subprocess.run(
        [a.ss, "-V"], capture_output=True, text=True, check=False
    ).stdout.strip()
    tools = [
        Tool("ss", [a.ss], base),
        Tool("sockscope", shlex.split(a.cand), dict(base, PYTHONPATH=str(REPO / "src"))),
    ]
    cmds = a.cmd or DEFAULT_CMDS
    print(
        f"ss: `{a.ss}` ({version}); sockscope: `{a.cand}`; median of {a.reps} alternated "
        f"runs, output to /dev/null; RSS = peak `ru_maxrss`; kernel {os.uname().release}, "
        f"{os.cpu_count()} CPUs.\n"
    )
    print(
        "| sockets | command | ss (s) | sockscope (s) | ratio | ss RSS (MiB) "
        "| sockscope RSS (MiB) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in a.sizes.split(",")):
        netns = f"sockscope-bench-{os.getpid()}-{size}"
        log(f"fill.py up {netns} {size} --seed {a.seed} ...")
        try:
            report = fill.up(netns, size, a.seed)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            sys.exit(f"bench.py: fill up failed: {e}")
        log(str(report["counts"]))
        try:
            for args in cmds:
                log(f"  {size}: ss {args}")
                res = bench_command(netns, tools, args, a.reps)
                ss, cand = res["ss"], res["sockscope"]
                print(
                    f"| {size:,} | `{args}` | {fmt_time(ss)} | {fmt_time(cand)} | "
                    f"{ratio(cand, ss)} | {fmt_rss(ss)} | {fmt_rss(cand)} |",
                    flush=True,
                )
        finally:
            if not a.keep:
                fill.down(netns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
