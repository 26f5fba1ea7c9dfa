#!/usr/bin/env python3
"""Benchmark ``-p`` (process owners) against ss on a fake ``PROC_ROOT`` of many socket links.

    python benchmarks/bench_procroot.py [--sockets 100000] [--links 100000,300000]
        [--procs 2000] [--reps 5] [--ss /usr/bin/ss] [--cand 'python -m sockscope']
        [--cmd '-tanp' ...] [--keep DIR]

``-p`` costs ss one walk of ``$PROC_ROOT/*/fd/*`` (a readlink per descriptor) and a hash
of ``socket:[INODE]`` links; on a host with many processes that walk, not the socket
dump, is most of the time. A real host with 300k descriptors is hard to stage, so this
builds one on disk, deterministically, with no namespace and no privilege:

* ``net/tcp`` with ``--sockets`` lines (ESTABLISHED and LISTEN rows on 127.0.0.x, the
  kernel's format) and ``net/tcp6`` with its header only. With ``PROC_ROOT`` set, ss
  and sockscope both read these files instead of asking sock_diag (ss.c's tcp_show), so
  the listing is the same on any machine;
* ``--procs`` process directories ``PID/stat`` (``PID (name) S ...``) and ``PID/fd/N``
  symbolic links, ``--links`` of them in all: most point at ``socket:[INODE]`` of a row
  (several owners per socket, as with pre-forked servers), the rest at pipes,
  ``anon_inode:[eventpoll]`` and files, which the walk must read and skip.

For each link count every command runs first once per tool and the outputs are
compared (a mismatch is reported and the row marked), then ``--reps`` alternated timed
runs; the table gives medians of wall and CPU (user+sys) and the peak RSS, for ss,
the compiled core and the pure-Python backend (``SOCKSCOPE_PURE=1``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import REPO, Tool, fmt_cpu, fmt_rss, fmt_time, log, ratio, run_once

TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode\n"
)
TCP6_HEADER = (
    "  sl  local_address                         remote_address                        st"
    " tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)
FIRST_INODE = 1_000_000
NAMES = ("nginx", "postgres", "envoy", "redis-server", "java", "python3", "sshd", "node")


def _hex_addr(last_octet: int, port: int) -> str:
    # /proc/net/tcp prints the address as the host-order u32 of the network-order
    # bytes: on little-endian 127.0.0.x reads 0x0X00007F
    return f"{last_octet:02X}00007F:{port:04X}"


def write_tcp(root: Path, sockets: int) -> None:
    lines = [TCP_HEADER]
    listeners = 16
    for sl in range(sockets):
        inode = FIRST_INODE + sl
        if sl < listeners:
            local, remote, state = _hex_addr(1, 7000 + sl), "00000000:0000", "0A"
        else:
            k = sl - listeners
            server = 7000 + k % listeners
            client = 20000 + k // 8 % 40000
            octet = 1 + k % 8
            if k % 2:
                local, remote = _hex_addr(1, server), _hex_addr(octet, client)
            else:
                local, remote = _hex_addr(octet, client), _hex_addr(1, server)
            state = "01"
        lines.append(
            f"{sl:4d}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000"
            f"  1000        0 {inode} 1 0000000000000000 20 4 30 10 -1\n"
        )
    net = root / "net"
    net.mkdir(parents=True, exist_ok=True)
    (net / "tcp").write_text("".join(lines))
    (net / "tcp6").write_text(TCP6_HEADER)


def write_procs(root: Path, sockets: int, links: int, procs: int) -> None:
    per_proc, extra = divmod(links, procs)
    others = ("pipe:[4026]", "anon_inode:[eventpoll]", "/dev/null", "/var/log/app.log")
    n = 0
    for i in range(procs):
        pid = 1000 + i
        fd_dir = root / str(pid) / "fd"
        fd_dir.mkdir(parents=True)
        name = NAMES[i % len(NAMES)]
        (root / str(pid) / "stat").write_text(f"{pid} ({name}) S 1 {pid} {pid} 0 -1 4194560\n")
        for fd in range(per_proc + (1 if i < extra else 0)):
            # one descriptor in ten is not a socket; the sockets are dealt round-robin,
            # so with links > sockets most sockets have several owners
            target = (
                others[n % len(others)] if n % 10 == 9 else f"socket:[{FIRST_INODE + n % sockets}]"
            )
            os.symlink(target, fd_dir / str(fd + 3))
            n += 1


def build(root: Path, sockets: int, links: int, procs: int) -> None:
    log(f"building {root}: {sockets:,} sockets, {links:,} links in {procs:,} processes")
    write_tcp(root, sockets)
    write_procs(root, sockets, links, procs)


def same_output(tools: list[Tool], words: list[str], root: Path) -> str:
    outs = {}
    for tool in tools:
        env = dict(tool.env, PROC_ROOT=str(root))
        proc = subprocess.run([*tool.argv, *words], env=env, capture_output=True, check=False)
        outs[tool.name] = (proc.returncode, proc.stdout)
    ref = outs["ss"]
    bad = [name for name, out in outs.items() if out != ref]
    return ", ".join(bad)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sockets", type=int, default=100_000)
    ap.add_argument("--links", default="100000,300000")
    ap.add_argument("--procs", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ss", default="/usr/bin/ss")
    ap.add_argument("--cand", default=f"{shlex.quote(sys.executable)} -m sockscope")
    ap.add_argument("--cmd", action="append", help="ss arguments (default: -tanp, -tnp)")
    ap.add_argument("--keep", metavar="DIR", help="build the trees under DIR and keep them")
    a = ap.parse_args()
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    cand_env = dict(base)
    if a.cand.endswith("-m sockscope"):
        cand_env["PYTHONPATH"] = str(REPO / "src")
    tools = [
        Tool("ss", [a.ss], base),
        Tool("compiled", shlex.split(a.cand), cand_env),
        Tool("pure", shlex.split(a.cand), dict(cand_env, SOCKSCOPE_PURE="1")),
    ]
    cmds = a.cmd or ["-tanp", "-tnp"]
    print(
        f"ss: `{a.ss}`; sockscope: `{a.cand}`; fake PROC_ROOT with {a.sockets:,} TCP rows "
        f"and {a.procs:,} processes; median of {a.reps} alternated runs, output to "
        f"/dev/null; kernel {os.uname().release}, {os.cpu_count()} CPUs.\n"
    )
    print(
        "| fd links | command | same output | ss (s) | compiled (s) | ratio | pure (s) | ratio "
        "| CPU ss / compiled / pure (s) | RSS ss / compiled / pure (MiB) |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---|---|")
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    for links in (int(x) for x in a.links.split(",")):
        if a.keep:
            root = Path(a.keep) / f"proc-{links}"
            cleanup = None
        else:
            cleanup = tempfile.TemporaryDirectory(prefix="sockscope-procroot-", dir=shm)
            root = Path(cleanup.name)
        try:
            if not (root / "net" / "tcp").exists():
                build(root, a.sockets, links, a.procs)
            for args in cmds:
                words = shlex.split(args)
                mismatch = same_output(tools, words, root)
                results: dict[str, dict] = {
                    t.name: {"ok": True, "wall": [], "rss": [], "cpu": []} for t in tools
                }
                for _ in range(a.reps):
                    for tool in tools:
                        res = results[tool.name]
                        status, wall, rss, cpu = run_once(
                            [*tool.argv, *words], dict(tool.env, PROC_ROOT=str(root))
                        )
                        res["ok"] = res["ok"] and status == 0
                        res["wall"].append(wall)
                        res["rss"].append(rss)
                        res["cpu"].append(cpu)
                ss, comp, pure = results["ss"], results["compiled"], results["pure"]
                print(
                    f"| {links:,} | `{args}` | {'yes' if not mismatch else 'NO: ' + mismatch} | "
                    f"{fmt_time(ss)} | {fmt_time(comp)} | {ratio(comp, ss)} | "
                    f"{fmt_time(pure)} | {ratio(pure, ss)} | "
                    f"{fmt_cpu(ss)} / {fmt_cpu(comp)} / {fmt_cpu(pure)} | "
                    f"{fmt_rss(ss)} / {fmt_rss(comp)} / {fmt_rss(pure)} |",
                    flush=True,
                )
        finally:
            if cleanup is not None:
                cleanup.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
