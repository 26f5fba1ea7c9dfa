#!/usr/bin/env python3
"""Record the ``scenario-extinfo`` goldens (-i/-m/-o/-e and -p/-T) from upstream ss 7.1.

    python tests/tools/record_extinfo.py --ss /path/to/ss-7.1

Root only.  Creates a private netns (lo only), runs ``extinfo_holder.py`` in it
(bbr/cubic/reno connections, zero-window senders with persist timers, an ECN
connection, a TCP-MD5 listener, an MPTCP pair whose subflows carry the mptcp
ULP, SYN-SENT sockets retransmitting into a full accept queue), dumps its TCP
sockets with ``ss -tanoemi -D``, copies ``/proc/net/tcp{,6}``, builds a fake
process tree under ``proc/`` (pids, ``fd/N -> socket:[INODE]`` links, ``stat``
files with odd task names: control bytes, high bytes, a ``)``, 20 characters;
one owner per socket so that directory order cannot matter; multi-owner
order is tested against the oracle on tmp trees in test_procmap.py) and records the
oracle's output for every line of ARGS below.  The netns is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "golden" / "scenario-extinfo"
BASE_ENV = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C", "HOME": "/root"}
# t: TCPDIAG_FILE=tcpdiag.bin   p: PROC_ROOT=proc
ARGS = """
t -tani
t -tanin
t -tanie
t -tanio
t -tanim
t -tani -O
t -tanm
t -tanmO
t -tanoemi
t -tanoemi -O
t -tanei
t -tani -H
t -tin state listening
t -tmi state established
t -tani state syn-sent
t -tanoi sport = :7105
t -tani dport = :7101
t -tanb
t -tan --inet-sockopt -i
t -tane --tos --cgroup -i
t COLUMNS=100 -tani
t -tanp
t -tanpi
t -tanpT
p -tani
p -tanie
p -tanoi
p -tanim
p -tanp
p -tanpT
p -tanpe
p -tanpi -O
p -tnp state listening
""".strip().splitlines()

NAMES = [
    b"python3",
    b"esc\x1b[31mX\xe9",
    b"a)b",
    b"twenty-characters-xx",
    b"tab\there",
    b"del\x7fx",
]


def fake_procs(proc: Path) -> None:
    """pid dirs owning the inodes of proc/net/tcp (one owner each), with odd comms."""
    inodes = []
    for name in ("tcp", "tcp6"):
        path = proc / "net" / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            f = line.split()
            if len(f) > 9 and f[9] != "0":
                inodes.append(int(f[9]))
    for i, ino in enumerate(inodes):
        pid = 100 + i % len(NAMES)
        fd_dir = proc / str(pid) / "fd"
        fd_dir.mkdir(parents=True, exist_ok=True)
        (proc / str(pid) / "stat").write_bytes(b"%d (%s) S 1 1 1 0" % (pid, NAMES[i % len(NAMES)]))
        os.symlink(f"socket:[{ino}]", fd_dir / str(3 + i))
        if i % 3 == 0:  # a non-socket fd
            os.symlink("/dev/null", fd_dir / str(1000 + i))
    # a thread of pid 100 (only seen with -T, through proc/<tid>/)
    (proc / "100" / "task" / "100").mkdir(parents=True, exist_ok=True)
    (proc / "100" / "task" / "150").mkdir(parents=True, exist_ok=True)
    (proc / "150" / "fd").mkdir(parents=True, exist_ok=True)
    (proc / "150" / "stat").write_bytes(b"150 (worker) S 1")
    # proc/150 is also scanned as a pid of its own, so a socket there would have two
    # owners whose order is the root's readdir order (file-system dependent)
    os.symlink("/dev/null", proc / "150" / "fd" / "9")
    (proc / "self").mkdir(exist_ok=True)  # not a pid
    # git keeps no empty directories: give each one a file
    (proc / "100" / "task" / "100" / "stat").write_bytes(b"100 (python3) S 1\n")
    (proc / "100" / "task" / "150" / "stat").write_bytes(b"150 (worker) S 1\n")
    (proc / "self" / "README").write_bytes(b"not a pid\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ss", required=True)
    a = ap.parse_args()
    ns = f"sockscope-ext-{os.getpid()}"
    nsx = ["nsenter", f"--net=/var/run/netns/{ns}"]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    holder = None
    try:
        subprocess.run([*nsx, "ip", "link", "set", "lo", "up"], check=True)
        holder = subprocess.Popen(
            [*nsx, sys.executable, str(HERE / "extinfo_holder.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert holder.stdout is not None
        if not holder.stdout.readline().startswith(b"ready"):
            raise SystemExit("holder failed")
        time.sleep(0.5)
        shutil.rmtree(OUT, ignore_errors=True)
        (OUT / "proc" / "net").mkdir(parents=True)
        subprocess.run([*nsx, a.ss, "-tanoemi", "-D", str(OUT / "tcpdiag.bin")], check=True)
        for name in ("tcp", "tcp6"):
            data = subprocess.run(
                [*nsx, "cat", f"/proc/net/{name}"], capture_output=True, check=False
            ).stdout
            (OUT / "proc" / "net" / name).write_bytes(data)
    finally:
        if holder is not None:
            holder.communicate(timeout=30)
        subprocess.run(["ip", "netns", "del", ns], check=False)
    fake_procs(OUT / "proc")
    lines = [ln.split(None, 1) for ln in ARGS]
    counters = {"t": 0, "p": 0}
    for kind, rest in lines:
        words = shlex.split(rest)
        extra = {}
        while words and "=" in words[0] and not words[0].startswith("-"):
            k, _, v = words.pop(0).partition("=")
            extra[k] = v
        var, val = ("TCPDIAG_FILE", "tcpdiag.bin") if kind == "t" else ("PROC_ROOT", "proc")
        env = dict(BASE_ENV, **extra, **{var: str(OUT / val)})
        p = subprocess.run(
            [a.ss, *words], env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False
        )
        case = OUT / "cases" / ("%s%03d" % (kind, counters[kind]))
        counters[kind] += 1
        case.mkdir(parents=True)
        (case / "argv").write_text("".join(w + "\n" for w in words))
        (case / "env").write_text("".join(f"{k}={v}\n" for k, v in {**extra, var: val}.items()))
        (case / "stdout").write_bytes(p.stdout)
        (case / "status").write_text(f"{p.returncode}\n")
    (OUT / "RECORDED").write_text(
        f"tests/tools/record_extinfo.py --ss {a.ss} ({len(lines)} cases)\n"
        f"kernel: {os.uname().release}\n"
    )
    print(f"recorded {len(lines)} cases in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
