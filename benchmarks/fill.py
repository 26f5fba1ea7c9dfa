#!/usr/bin/env python3
"""Fill a private network namespace with real TCP (and a few UDP) sockets, for bench.py.

    sudo python benchmarks/fill.py up NAME N     # netns NAME with about N TCP sockets
    sudo python benchmarks/fill.py down NAME     # stop the holders, delete the netns

Stdlib only, loopback only. About 70% of the sockets are IPv4 and 30% IPv6; nearly all
are ESTABLISHED client/server pairs spread over 16 listeners and several source
addresses (127.0.0.x), as on a busy server; a few UDP sockets are bound too. The sockets
are held by daemonised processes inside the namespace (each keeps at most its
RLIMIT_NOFILE soft limit minus a margin, so 100k sockets take several), which write
their pids to /run/sockscope-fill/NAME.pids and wait for ``down``.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time

RUN = "/run/sockscope-fill"
PORTS = tuple(range(7000, 7016))


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _listeners() -> list[socket.socket]:
    out = []
    for i, port in enumerate(PORTS):
        fam, addr = (socket.AF_INET6, "::1") if i % 3 == 2 else (socket.AF_INET, "0.0.0.0")
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(4096)
        out.append(s)
    for port in (5353, 5354):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", port))
        out.append(u)
    return out


def _hold(pairs: int, first: int, listeners: list[socket.socket]) -> list[socket.socket]:
    """Open ``pairs`` connections (client and accepted server socket each)."""
    held = []
    for k in range(first, first + pairs):
        idx = k % len(PORTS)
        lst = listeners[idx]
        if lst.family == socket.AF_INET6:
            c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            c.connect(("::1", PORTS[idx]))
        else:
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.bind((f"127.0.0.{1 + k % 8}", 0))
            c.connect(("127.0.0.1", PORTS[idx]))
        srv, _ = lst.accept()
        held += (c, srv)
    return held


def up(name: str, n: int) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")
    os.makedirs(RUN, exist_ok=True)
    pidfile = f"{RUN}/{name}.pids"
    holder = subprocess.Popen(
        ["ip", "netns", "exec", name, sys.executable, __file__, "_hold", str(n), pidfile],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # a caller's captured stderr must see its EOF
        start_new_session=True,
    )
    assert holder.stdout is not None
    if holder.stdout.readline().strip() != b"ready":
        sys.exit("fill.py: the holders did not start")
    print(f"netns={name} tcp~{n} holders in {pidfile}")


def _hold_main(n: int, pidfile: str) -> None:
    """Inside the namespace: listeners here, connections in forked holders."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per_proc = max(1000, (hard - 256) // 2)  # pairs per holder
    total = max(0, (n - len(PORTS) - 2) // 2)
    listeners = _listeners()
    pids = [os.getpid()]
    done = 0
    while done < total:
        count = min(per_proc, total - done)
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(r)
            held = _hold(count, done, listeners)
            os.write(w, b"1")
            os.close(w)
            signal.pause()
            del held
            os._exit(0)
        os.close(w)
        os.read(r, 1)
        os.close(r)
        pids.append(child)
        done += count
    with open(pidfile, "w") as f:
        f.write(" ".join(map(str, pids)))
    time.sleep(0.2)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    while True:
        signal.pause()


def down(name: str) -> None:
    pidfile = f"{RUN}/{name}.pids"
    try:
        with open(pidfile) as f:
            pids = [int(p) for p in f.read().split()]
        os.unlink(pidfile)
    except OSError:
        pids = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "up":
        up(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "_hold":
        _hold_main(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "down":
        down(sys.argv[2])
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
