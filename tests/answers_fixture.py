"""Scripts run inside the answer tests' private namespace (``python answers_fixture.py MODE``).

``fleet``: known connections with fixed counts per peer, per port and per process. The
server process (comm ``agg-srv``) listens on 127.0.0.1:7001, 127.0.0.1:7002 and
[::1]:7003 and accepts everything; ``agg-cli-a`` opens 3 connections to :7001 from
127.0.0.1 and 2 to :7002 from 127.0.0.2; ``agg-cli-b`` opens 4 to :7002 from 127.0.0.3
and 1 to [::1]:7003. Two of :7001's server sockets hold unread bytes (Recv-Q). It prints
``ready`` when everything is open and keeps it until its stdin closes.

``script``: the watch timeline (see ``tests/test_answers.py::test_watch_script``), one
JSON line per phase with its monotonic time.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

FLEET = {
    "agg-cli-a": [("127.0.0.1", 7001, 3), ("127.0.0.2", 7002, 2)],
    "agg-cli-b": [("127.0.0.3", 7002, 4), ("::1", 7003, 1)],
}
UNREAD = (700, 300)  # bytes left unread on two of :7001's server sockets


def _name(comm: str) -> None:
    with open("/proc/self/comm", "w") as f:
        f.write(comm)


def _listener(family: int, addr: str, port: int) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    return s


def _client(comm: str, plan: list[tuple[str, int, int]], ready: int) -> None:
    _name(comm)
    keep = []
    for source, port, n in plan:
        for _ in range(n):
            family = socket.AF_INET6 if ":" in source else socket.AF_INET
            c = socket.socket(family, socket.SOCK_STREAM)
            c.bind((source, 0))
            c.connect((source if family == socket.AF_INET6 else "127.0.0.1", port))
            keep.append(c)
    if comm == "agg-cli-a":
        for c, size in zip(keep, UNREAD, strict=False):
            c.sendall(b"u" * size)
    os.write(ready, b"x")
    while True:
        time.sleep(3600)


def fleet() -> None:
    _name("agg-srv")
    listeners = [
        _listener(socket.AF_INET, "127.0.0.1", 7001),
        _listener(socket.AF_INET, "127.0.0.1", 7002),
        _listener(socket.AF_INET6, "::1", 7003),
    ]
    ready_r, ready_w = os.pipe()
    pids = []
    for comm, plan in FLEET.items():
        pid = os.fork()
        if pid == 0:
            listeners.clear()
            _client(comm, plan, ready_w)
            os._exit(0)
        pids.append(pid)
    for _ in FLEET:
        os.read(ready_r, 1)
    total = sum(n for plan in FLEET.values() for _s, _p, n in plan)
    accepted = []
    for lsock in listeners:
        lsock.setblocking(False)
    while len(accepted) < total:
        for lsock in listeners:
            try:
                accepted.append(lsock.accept()[0])
            except BlockingIOError:
                pass
        time.sleep(0.01)
    time.sleep(0.2)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.read()
    for pid in pids:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def _mark(phase: str) -> None:
    sys.stdout.write(json.dumps({"phase": phase, "t": time.monotonic()}) + "\n")
    sys.stdout.flush()


def _pair(lsock: socket.socket) -> tuple[socket.socket, socket.socket]:
    c = socket.create_connection(("127.0.0.1", lsock.getsockname()[1]))
    s, _ = lsock.accept()
    return c, s


def script(gap: float) -> None:
    """The watch timeline: each phase is followed by ``gap`` seconds (over two intervals)."""
    lsock = _listener(socket.AF_INET, "127.0.0.1", 7100)
    _mark("listen")
    time.sleep(gap)
    a_c, a_s = _pair(lsock)
    _mark("a-open")
    time.sleep(gap)
    t0 = time.monotonic()
    b_c, b_s = _pair(lsock)
    b_s.sendall(b"b" * 3000)
    got = 0
    while got < 3000:
        got += len(b_c.recv(4096))
    b_c.close()
    b_s.close()
    _mark("b-short")
    assert time.monotonic() - t0 < 0.05
    time.sleep(gap)
    c_c, c_s = _pair(lsock)
    _mark("c-open")
    time.sleep(gap)
    c_c.shutdown(socket.SHUT_WR)
    _mark("c-half-closed")
    time.sleep(gap)
    # paced data over A: 2000 bytes every 10 ms (200,000 B/s) for 4 s
    _mark("a-data")
    start = time.monotonic()
    # per write (epoch seconds, the watcher's clock): when it started, when its data had
    # reached A's server end (the recv that reads it returned: the kernel counted it in
    # bytes_received before), and the bytes sent by then; on a loaded machine the pace
    # slips, and the rates are checked against this
    sent = []
    for i in range(400):
        delay = start + i * 0.01 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        writing = time.time()
        a_c.sendall(b"d" * 2000)  # one segment on loopback
        a_s.recv(65536)
        sent.append((writing, time.time(), 2000 * (i + 1)))
    sys.stdout.write(json.dumps({"sent": sent}) + "\n")
    _mark("a-data-end")
    time.sleep(gap)
    _mark("close")
    a_c.close()
    a_s.close()
    c_s.close()
    c_c.close()
    time.sleep(gap)
    lsock.close()
    _mark("listen-closed")
    time.sleep(gap)
    _mark("end")


if __name__ == "__main__":
    if sys.argv[1] == "fleet":
        fleet()
    else:
        script(float(sys.argv[2]))
