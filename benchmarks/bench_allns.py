#!/usr/bin/env python3
"""Benchmark ``sockscope --all-netns`` against a shell loop running ss once per namespace.

Usage (as root): ``bench_allns.py [--namespaces 50] [--sockets 200] [--reps 5]
[--ss /work/oracle/ss71] [--cmd "-tan"]...``

So that only the benchmark's namespaces are walked, the script re-runs itself in a
private mount and pid namespace (``unshare --mount --pid --fork --mount-proc``) with a
tmpfs over /run/netns: there it creates N named namespaces (lo up), and one holder
process opens S sockets in each (a TCP listener, established pairs, a UDP socket; it
enters each namespace with setns, the sockets keep theirs). Both sides then list the
same namespaces (the N plus the caller's own):

* ``sockscope --all-netns ARGS`` (the console script next to this interpreter, else
  ``python -m sockscope``);
* ``sh -c 'for h in HANDLES; do nsenter --net=$h SS ARGS; done'``, HANDLES being
  /var/run/netns/NAME for each and /proc/1/ns/net for the caller's.

Runs alternate; the table gives medians of wall time and the peak RSS (``ru_maxrss``) of
sockscope and of the largest process of the loop. Output goes to /dev/null.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HOLD = r"""
import ctypes, os, resource, socket, sys
names, per = sys.argv[2:], int(sys.argv[1])
def setns(fd):
    if hasattr(os, "setns"):
        os.setns(fd, os.CLONE_NEWNET)
    elif ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns")
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
home = os.open("/proc/self/ns/net", os.O_RDONLY)
keep = []
for name in names:
    fd = os.open("/var/run/netns/" + name, os.O_RDONLY)
    setns(fd)
    os.close(fd)
    l = socket.socket()
    l.bind(("127.0.0.1", 7000))
    l.listen(1024)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 7001))
    keep += [l, u]
    for _ in range((per - 2) // 2):
        c = socket.create_connection(("127.0.0.1", 7000))
        s, _a = l.accept()
        keep += [c, s]
print("ready", flush=True)
sys.stdin.read()
"""


def sockscope_cmd() -> list[str]:
    script = Path(sys.executable).with_name("sockscope")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sockscope"]


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one run (its children included)."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _pid, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{argv[:3]} failed: {status}")
    return wall, usage.ru_maxrss


def inner(args: argparse.Namespace) -> int:
    subprocess.run(["mount", "-t", "tmpfs", "sockscope-bench", "/run/netns"], check=True)
    names = [f"b{i}" for i in range(args.namespaces)]
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(args.sockets), *names],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        if holder.stdout.readline() != b"ready\n":
            raise SystemExit("holder failed")
        handles = ["/proc/1/ns/net"] + [f"/var/run/netns/{n}" for n in names]
        rows = []
        for cmd in args.cmd:
            words = cmd.split()
            ours = [*sockscope_cmd(), "--all-netns", *words]
            loop = [
                "sh",
                "-c",
                'ss=$1; shift; for h in "$@"; do nsenter --net="$h" "$ss" '
                + " ".join(words)
                + "; done",
                "loop",
                args.ss,
                *handles,
            ]
            timed(ours)
            timed(loop)  # warm caches
            t_ours, t_loop, m_ours, m_loop = [], [], [], []
            for _ in range(args.reps):
                w, m = timed(loop)
                t_loop.append(w)
                m_loop.append(m)
                w, m = timed(ours)
                t_ours.append(w)
                m_ours.append(m)
            rows.append((cmd, statistics.median(t_loop), statistics.median(t_ours),
                         max(m_loop) / 1024, max(m_ours) / 1024))  # fmt: skip
        n = len(handles)
        print(f"{n} namespaces ({args.namespaces} x {args.sockets} sockets + the caller's),"
              f" median of {args.reps} alternated runs, output to /dev/null\n")  # fmt: skip
        print("| command | ss loop (s) | sockscope --all-netns (s) | ratio | loop peak RSS (MiB)"
              " | sockscope RSS (MiB) |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        for cmd, tl, to, ml, mo in rows:
            print(f"| `{cmd}` | {tl:.3f} | {to:.3f} | {to / tl:.2f}x | {ml:.1f} | {mo:.1f} |")
    finally:
        if holder.stdin:
            holder.stdin.close()
        holder.wait()
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--sockets", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ss", default=os.environ.get("SOCKSCOPE_ORACLE", "/work/oracle/ss71"))
    ap.add_argument("--cmd", action="append")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.cmd = args.cmd or ["-tan", "-tanp", "-an"]
    if args.inner:
        return inner(args)
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise SystemExit("needs root and unshare")
    argv = [sys.executable, os.path.abspath(__file__), "--inner", *sys.argv[1:]]
    cmd = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private"]
    return subprocess.run([*cmd, *argv], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
