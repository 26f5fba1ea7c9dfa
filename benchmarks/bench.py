#!/usr/bin/env python3
"""Benchmark sockscope against ss on namespaces full of real sockets.

    sudo python benchmarks/bench.py [--sizes 300,10000,90000] [--reps 5]
        [--ss /usr/bin/ss] [--cand 'python -m sockscope'] [--filler CMD]
        [--cmd '-tan' --cmd '-tani' ...] [--keep]

For each size, ``benchmarks/fill.py up NAME N`` (in this repository) fills a private
network namespace (loopback only) with about N TCP sockets (``--filler`` takes another
filler with the same ``up NAME N`` / ``down NAME`` interface).
sockscope runs twice per command, with its compiled core and with SOCKSCOPE_PURE=1.  Each
command then runs inside it (``nsenter --net=...``, which execs the tool in place,
so ``os.wait4`` reports the tool's own peak RSS) alternately for ss and sockscope,
``--reps`` times each after one untimed warm-up run, output to /dev/null.
Reported per command: median wall time of each, the ratio to ss, median CPU time
(user+sys, of the tool and its threads) and its ratio to ss (the steadier figure on a
shared machine), and peak RSS (``ru_maxrss``). A command a tool
rejects (non-zero exit) is shown as n/a.
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
DEFAULT_CMDS = ["-tan", "-tanp", "-tani", "-tan dport = :7003", "-tan --json-lines", "-an", "-s"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_once(argv: list[str], env: dict[str, str]) -> tuple[int, float, int, float]:
    """(exit status, wall seconds, peak RSS in KiB, CPU seconds) of one run.

    The peak RSS comes from GNU time when it is installed: a child forked straight from
    this driver would carry the driver's own pages into its ru_maxrss (it survives
    exec), a floor of about 15 MiB here. Without /usr/bin/time, os.wait4 is used.
    """
    gnu_time = "/usr/bin/time"
    use_time = os.access(gnu_time, os.X_OK)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        cmd = [gnu_time, "-f", "%U %S %M", "-o", rss.name, *argv] if use_time else argv
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
        cpu = usage.ru_utime + usage.ru_stime
        if use_time:
            text = rss.read().split()
            # GNU time writes "Command exited with non-zero status N" before its fields
            if len(text) >= 3 and text[-1].isdigit():
                # only the peak: GNU time's %U/%S have 10 ms steps, while os.wait4 on it
                # counts the tool (its waited-for child) in microseconds
                peak = int(text[-1])
    return code, wall, peak, cpu


class Tool:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env


def bench_command(netns: str, tools: list[Tool], args: str, reps: int) -> dict[str, dict]:
    enter = ["nsenter", f"--net=/var/run/netns/{netns}"]
    words = shlex.split(args)
    results: dict[str, dict] = {}
    for tool in tools:  # warm-up, and drop tools that reject the command
        status, _, _, _ = run_once([*enter, *tool.argv, *words], tool.env)
        results[tool.name] = {"ok": status == 0, "wall": [], "rss": [], "cpu": []}
    for _ in range(reps):
        for tool in tools:  # alternate, so drift hits both alike
            res = results[tool.name]
            if res["ok"]:
                status, wall, rss, cpu = run_once([*enter, *tool.argv, *words], tool.env)
                res["ok"] = status == 0
                res["wall"].append(wall)
                res["rss"].append(rss)
                res["cpu"].append(cpu)
    return results


def fmt_time(res: dict) -> str:
    return f"{statistics.median(res['wall']):.3f}" if res["ok"] and res["wall"] else "n/a"


def fmt_cpu(res: dict) -> str:
    return f"{statistics.median(res['cpu']):.3f}" if res["ok"] and res["cpu"] else "n/a"


def fmt_rss(res: dict) -> str:
    return f"{max(res['rss']) / 1024:.1f}" if res["ok"] and res["rss"] else "n/a"


def ratio(cand: dict, ref: dict, key: str = "wall") -> str:
    if not (cand["ok"] and ref["ok"] and cand[key] and ref[key]):
        return "n/a"
    base = statistics.median(ref[key])
    if base <= 0:
        return "n/a"
    return f"{statistics.median(cand[key]) / base:.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="300,10000,90000")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ss", default="/usr/bin/ss")
    ap.add_argument(
        "--cand",
        default=f"{shlex.quote(sys.executable)} -m sockscope",
        help="sockscope command (default: %(default)s, with PYTHONPATH=<repo>/src); "
        "'sockscope' runs the installed console script",
    )
    ap.add_argument(
        "--filler",
        default=shlex.join([sys.executable, str(REPO / "benchmarks" / "fill.py")]),
        help="socket filler command taking `up NAME N` and `down NAME` (default: %(default)s)",
    )
    ap.add_argument("--cmd", action="append", help=f"ss arguments (default: {DEFAULT_CMDS})")
    ap.add_argument("--keep", action="store_true", help="leave the namespaces up")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.py: needs root (network namespaces)")
    filler = shlex.split(a.filler)
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "HOME": os.environ.get("HOME", "/root"),
    }
    version = subprocess.run(
        [a.ss, "-V"], capture_output=True, text=True, check=False
    ).stdout.strip()
    cand_env = dict(base)
    if a.cand.endswith("-m sockscope"):
        cand_env["PYTHONPATH"] = str(REPO / "src")
    tools = [
        Tool("ss", [a.ss], base),
        Tool("compiled", shlex.split(a.cand), cand_env),
        Tool("pure", shlex.split(a.cand), dict(cand_env, SOCKSCOPE_PURE="1")),
    ]
    cmds = a.cmd or DEFAULT_CMDS
    print(
        f"ss: `{a.ss}` ({version}); sockscope: `{a.cand}` (compiled core, and pure with "
        f"SOCKSCOPE_PURE=1); median of {a.reps} alternated "
        f"runs, output to /dev/null; RSS = peak `ru_maxrss`; kernel {os.uname().release}, "
        f"{os.cpu_count()} CPUs.\n"
    )
    print(
        "| sockets | command | ss (s) | compiled (s) | ratio | pure (s) | ratio "
        "| CPU ss / compiled / pure (s) | CPU ratio compiled / pure "
        "| RSS ss / compiled / pure (MiB) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|---|---|")
    for size in (int(s) for s in a.sizes.split(",")):
        netns = f"sockscope-bench-{size}"
        log(f"{a.filler} up {netns} {size} ...")
        subprocess.run([*filler, "down", netns], capture_output=True, check=False)
        up = subprocess.run(
            [*filler, "up", netns, str(size)], capture_output=True, text=True, check=False
        )
        if up.returncode:
            sys.exit(f"bench.py: filler up failed: {up.stderr or up.stdout}")
        log(up.stdout.strip())
        try:
            for args in cmds:
                log(f"  {size}: ss {args}")
                res = bench_command(netns, tools, args, a.reps)
                ss, comp, pure = res["ss"], res["compiled"], res["pure"]
                print(
                    f"| {size:,} | `{args}` | {fmt_time(ss)} | {fmt_time(comp)} | "
                    f"{ratio(comp, ss)} | {fmt_time(pure)} | {ratio(pure, ss)} | "
                    f"{fmt_cpu(ss)} / {fmt_cpu(comp)} / {fmt_cpu(pure)} | "
                    f"{ratio(comp, ss, 'cpu')} / {ratio(pure, ss, 'cpu')} | "
                    f"{fmt_rss(ss)} / {fmt_rss(comp)} / {fmt_rss(pure)} |",
                    flush=True,
                )
        finally:
            if not a.keep:
                subprocess.run([*filler, "down", netns], capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
