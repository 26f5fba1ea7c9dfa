#!/usr/bin/env python3
"""Fill a private network namespace with real sockets of every kind (loopback only).

The project's own socket filler, for the live tests and ``benchmarks/bench.py``; it needs
only root, ``ip`` and ``nsenter``::

    sudo python3 tests/tools/fill.py up NAME N [--seed S]   # netns NAME, about N sockets
    sudo python3 tests/tools/fill.py count NAME             # sockets by state, now
    sudo python3 tests/tools/fill.py down NAME              # stop the holders, delete NAME

From Python (tests, the benchmark)::

    with fill.Filled(20000) as lab:        # lab.name, lab.enter(), lab.counts
        subprocess.run([*lab.enter(), "ss", "-tan"])

``up`` creates the namespace (``ip netns add``, ``lo`` up) and starts a holder inside it
(``nsenter --net=/var/run/netns/NAME``, never ``ip netns exec``, which remounts /sys).
The holder forks workers, each opening its share of the sockets and keeping them until
``down``. One process may hold no more descriptors than RLIMIT_NOFILE's hard limit allows
(raising it needs CAP_SYS_RESOURCE), so 100,000 sockets take several workers; each worker
has its own TCP listeners. ``up`` returns when every worker is ready, after printing one
JSON line: the holder's pid and the sockets counted by state from /proc/net.

The mix, for N sockets (the shares are of N; the small kinds have at least one each):

* TCP: listeners on 127.0.0.1, [::1] (v6only) and [::] (dual stack); established
  client/server pairs (most of N: 70% IPv4, 20% ::1, 10% IPv4 into the dual-stack listener,
  so v4-mapped addresses), 1% of them with unread data (Recv-Q); CLOSE-WAIT/FIN-WAIT-2
  pairs (1%); TIME-WAIT (5%, the client closes first; re-created every 50 s, the kernel
  keeps them 60 s); SYN-SENT behind a listener whose accept queue is full (backlog 0, one
  connection never accepted: the kernel drops new SYNs, the clients keep retrying);
  SYN-RECV behind a ``TCP_DEFER_ACCEPT`` listener (the kernel drops the bare ACK and keeps
  the request); a few bound-inactive sockets;
* UDP (6%): bound IPv4 and IPv6 sockets, some with an unread datagram, connected pairs;
* UNIX (20%): a path listener with accepted connections, an abstract seqpacket listener,
  stream/dgram/seqpacket socketpairs, bound datagram sockets;
* RAW (ICMP, ICMPv6), PACKET (ETH_P_ALL on lo), NETLINK (route with groups, generic) and
  MPTCP (a listener, two connections) sockets, a few each, when the kernel allows them.

Ports are fixed by worker (TCP from 20000 + 64 * worker, UDP from 10000 + 2000 * worker);
ephemeral ports of clients vary. Which addresses the clients use depends only on ``--seed``. Standard library
only; nothing leaves the namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")
RUN_DIR = Path("/run/sockscope-tests-fill")
HERE = Path(__file__).resolve()
IPPROTO_MPTCP = 262
TCP_BASE, UDP_BASE = 20000, 10000  # below the ephemeral range (32768-60999)
PER_LISTENER = 8000  # connections per listener: far below the ephemeral port range
BATCH = 256  # connects before accepting them (below the listen backlog)
TW_REFRESH = 50.0  # seconds; the kernel keeps TIME-WAIT sockets 60 s
#: holders started by this process, reaped by down() (a Popen must not outlive its child)
_HOLDERS: dict[str, subprocess.Popen[bytes]] = {}
TCP_STATES = {
    "01": "ESTAB", "02": "SYN-SENT", "03": "SYN-RECV", "04": "FIN-WAIT-1",
    "05": "FIN-WAIT-2", "06": "TIME-WAIT", "07": "UNCONN", "08": "CLOSE-WAIT",
    "09": "LAST-ACK", "0A": "LISTEN", "0B": "CLOSING",
}  # fmt: skip


def plan(n: int) -> dict[str, int]:
    """How many of each kind make about ``n`` sockets."""
    small = max(1, min(64, n // 200))
    p = {
        "time_wait": n * 5 // 100,
        "close_wait_pairs": max(1, n // 100),
        "syn_sent": max(1, min(16, n // 500)),
        "syn_recv": small,
        "bound": max(1, min(8, n // 1000)),
        "udp": max(4, n * 6 // 100),
        "unix": max(8, n * 20 // 100),
        "listeners": 3,
    }
    rest = n - sum(p.values()) - p["close_wait_pairs"] - p["syn_recv"] - 8
    p["estab_pairs"] = max(1, rest // 2)
    return p


def _share(total: int, workers: int, w: int) -> int:
    return total // workers + (1 if w < total % workers else 0)


# ---------------------------------------------------------------------------- the holder
class Worker:
    """One process's share of the sockets."""

    def __init__(self, w: int, workers: int, p: dict[str, int], seed: int, rundir: Path):
        self.w, self.rng, self.rundir = w, random.Random(seed * 1000 + w), rundir
        self.plan = p
        self.share = {k: _share(v, workers, w) for k, v in p.items()}
        self.keep: list[socket.socket] = []
        self.next_port = TCP_BASE + 64 * w
        self.listeners: dict[str, list[socket.socket]] = {"v4": [], "v6": [], "dual": []}
        self.tw_listener: socket.socket | None = None
        self.used: dict[int, int] = {}  # connections made into each listener (by fd)

    def port(self) -> int:
        self.next_port += 1
        return self.next_port - 1

    def listener(self, kind: str, backlog: int = 4096) -> socket.socket:
        fam = socket.AF_INET if kind == "v4" else socket.AF_INET6
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(kind == "v6"))
        s.bind(("127.0.0.1" if kind == "v4" else "::1" if kind == "v6" else "::", self.port()))
        s.listen(backlog)
        self.keep.append(s)
        return s

    def pairs(self, kind: str, count: int, *, keep: bool = True) -> list[tuple[socket.socket, socket.socket]]:  # fmt: skip
        """``count`` connections into listeners of ``kind`` (new listeners as they fill)."""
        fam = socket.AF_INET6 if kind == "v6" else socket.AF_INET
        dst = "::1" if kind == "v6" else "127.0.0.1"
        out = []
        while count > 0:
            lst = self.listeners[kind]
            if not lst or self.used.get(lst[-1].fileno(), 0) >= PER_LISTENER:
                lst.append(self.listener(kind))
            li = lst[-1]
            used = self.used.get(li.fileno(), 0)
            n = min(count, BATCH, PER_LISTENER - used)
            port = li.getsockname()[1]
            clients = []
            for _ in range(n):
                c = socket.socket(fam, socket.SOCK_STREAM)
                c.connect((dst, port))
                clients.append(c)
            for c in clients:
                s, _ = li.accept()
                out.append((c, s))
                if keep:
                    self.keep += [c, s]
            self.used[li.fileno()] = used + n
            count -= n
        return out

    def tcp(self) -> None:
        sh = self.share
        for kind in ("v4", "v6", "dual"):
            self.listeners[kind].append(self.listener(kind))
        n = sh["estab_pairs"]
        v6, dual = n * 2 // 10, n // 10
        for kind, count in (("v4", n - v6 - dual), ("v6", v6), ("dual", dual)):
            for i, (c, _s) in enumerate(self.pairs(kind, count)):
                if i % 100 == 7:
                    c.send(b"x" * (100 + self.rng.randrange(900)))  # unread: Recv-Q
        for c, _s in self.pairs("v4", sh["close_wait_pairs"]):
            c.shutdown(socket.SHUT_WR)  # client FIN-WAIT-2, server CLOSE-WAIT
        for _ in range(sh["bound"]):
            b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            b.bind(("127.0.0.1", 0))  # bound, never listening: bound-inactive
            self.keep.append(b)
        self.time_wait()
        if self.w == 0:
            self.handshakes()

    def time_wait(self) -> None:
        if self.tw_listener is None:
            self.tw_listener = self.listener("v4")
        lst, count = self.tw_listener, self.share["time_wait"]
        while count > 0:
            n = min(count, BATCH)
            clients = []
            for _ in range(n):
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.connect(lst.getsockname())
                clients.append(c)
            servers = [lst.accept()[0] for _ in clients]
            for c in clients:
                c.close()  # the client closes first: it goes to TIME-WAIT
            for s in servers:
                s.close()
            count -= n

    def handshakes(self) -> None:
        """SYN-SENT behind a listener with a full accept queue, SYN-RECV behind one that defers."""
        sh = self.plan  # worker 0 makes them all
        full = self.listener("v4", backlog=0)
        addr = full.getsockname()
        first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        first.connect(addr)  # fills the accept queue; never accepted
        self.keep.append(first)
        for _ in range(sh["syn_sent"]):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 127)  # keep trying for hours
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                c.connect(addr)
            self.keep.append(c)
        deferred = self.listener("v4", backlog=1024)
        deferred.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 3600)
        for _ in range(sh["syn_recv"]):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.connect(deferred.getsockname())  # ESTAB here, SYN-RECV at the listener
            self.keep.append(c)

    def udp(self) -> None:
        count, port = self.share["udp"], UDP_BASE + 2000 * self.w
        pairs = count // 4
        for i in range(pairs):
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            a.bind(("127.0.0.1", port + 2 * i))
            b.bind(("127.0.0.1", port + 2 * i + 1))
            a.connect(b.getsockname())
            b.connect(a.getsockname())
            self.keep += [a, b]
        rest = count - 2 * pairs
        for i in range(rest):
            fam = socket.AF_INET6 if i % 3 == 2 else socket.AF_INET
            u = socket.socket(fam, socket.SOCK_DGRAM)
            u.bind(("::1" if fam == socket.AF_INET6 else "127.0.0.1", 0))
            if i % 10 == 0:
                with socket.socket(fam, socket.SOCK_DGRAM) as tx:
                    tx.sendto(b"d" * 64, u.getsockname()[:2])  # unread: Recv-Q
            self.keep.append(u)

    def unix(self) -> None:
        count = self.share["unix"]
        d = self.rundir / f"w{self.w}"
        d.mkdir(parents=True, exist_ok=True)
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(str(d / "stream.sock"))
        lst.listen(4096)
        seq = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        seq.bind(f"\0sockscope-fill-{os.getpid()}")
        seq.listen(16)
        self.keep += [lst, seq]
        count -= 2
        conns = count // 4  # accepted connections: 2 sockets each
        for _ in range(conns):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(str(d / "stream.sock"))
            self.keep += [c, lst.accept()[0]]
        count -= 2 * conns
        kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET)
        i = 0
        while count >= 2:
            a, b = socket.socketpair(socket.AF_UNIX, kinds[i % 3])
            if i % 20 == 0:
                a.send(b"u" * 32)  # unread
            self.keep += [a, b]
            count -= 2
            i += 1
        for j in range(count):
            u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            u.bind(str(d / f"dgram{j}.sock"))
            self.keep.append(u)

    def misc(self) -> None:
        """RAW, PACKET and NETLINK sockets (worker 0), each only if the kernel allows it."""
        if self.w:
            return
        makers = [
            lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
            lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
            _bound_packet,
            _netlink_route,
            lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16),  # generic
        ]
        for make in makers:
            with contextlib.suppress(OSError):
                self.keep.append(make())
        with contextlib.suppress(OSError):
            self.mptcp()

    def mptcp(self) -> None:
        """An MPTCP listener with two connections, when the kernel has MPTCP."""
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
        lst.bind(("127.0.0.1", self.port()))
        lst.listen(8)
        self.keep.append(lst)
        for _ in range(2):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
            c.connect(lst.getsockname())
            self.keep += [c, lst.accept()[0]]

    def build(self) -> None:
        self.tcp()
        self.udp()
        self.unix()
        self.misc()


def _bound_packet() -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind(("lo", 0))
    return s


def _netlink_route() -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    s.bind((0, 1 | 4))  # RTMGRP_LINK | RTMGRP_IPV4_IFADDR
    return s


def count_sockets() -> dict[str, int]:
    """Sockets by kind and TCP state, read from /proc/net (this process's namespace)."""
    counts: dict[str, int] = {}
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/net/{name}") as f:
            next(f)
            for line in f:
                state = TCP_STATES.get(line.split()[3], "?")
                counts[f"tcp {state}"] = counts.get(f"tcp {state}", 0) + 1
    for name in ("udp", "udp6", "raw", "raw6", "unix", "packet", "netlink"):
        with contextlib.suppress(OSError), open(f"/proc/net/{name}") as f:
            kind = name.rstrip("6")
            counts[kind] = counts.get(kind, 0) + sum(1 for _ in f) - 1
    counts["total"] = sum(v for k, v in counts.items())
    return dict(sorted(counts.items()))


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_forever(worker: Worker | None) -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(TW_REFRESH)
        if worker is not None and worker.share["time_wait"]:
            with contextlib.suppress(OSError):
                worker.time_wait()


def hold(n: int, seed: int, rundir: Path) -> int:
    """The holder (inside the namespace): fork the workers, report, then wait for SIGTERM."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cap = max(256, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 512)
    p = plan(n)
    workers = max(1, -(-(n - p["time_wait"]) // cap))
    pids = []
    for w in range(workers):  # one after the other: their ports never race
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _die_with_parent()
            status = 0
            try:
                worker = Worker(w, workers, p, seed, rundir)
                worker.build()
                os.write(wfd, b"ok\n")
            except BaseException as e:  # report, never fall back into the parent's code
                os.write(wfd, f"worker {w}: {e!r}\n".encode())
                status = 1
            os.close(wfd)
            if status:
                os._exit(status)
            _wait_forever(worker)
        os.close(wfd)
        pids.append(pid)
        with os.fdopen(r) as f:
            answer = f.read().strip()
        if answer != "ok":
            for q in pids:
                with contextlib.suppress(OSError):
                    os.kill(q, signal.SIGTERM)
            print(json.dumps({"error": answer}), flush=True)
            return 1
    time.sleep(0.3)  # let closing handshakes settle (TIME-WAIT, FIN-WAIT-2)
    report = {"pid": os.getpid(), "workers": workers, "plan": p, "counts": count_sockets()}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.close(1)

    def stop(*_: object) -> None:
        for q in pids:
            with contextlib.suppress(OSError):
                os.kill(q, signal.SIGTERM)
        for q in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(q, 0)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


# ---------------------------------------------------------------------------- control
def _netns_path(name: str) -> str:
    return str(NETNS_DIR / name)


def enter(name: str) -> list[str]:
    """The command prefix that runs a program inside namespace ``name``."""
    return ["nsenter", f"--net={_netns_path(name)}"]


def up(name: str, n: int, seed: int = 0, timeout: float = 900) -> dict[str, object]:
    """Create namespace ``name`` holding about ``n`` sockets; returns the holder's report.

    A namespace of that name left by an earlier fill.py run is replaced; any other one is
    left alone (RuntimeError)."""
    rundir = RUN_DIR / name
    if (NETNS_DIR / name).exists():
        if not rundir.is_dir():
            raise RuntimeError(f"network namespace {name} exists and is not fill.py's")
        down(name)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    subprocess.run([*enter(name), "ip", "link", "set", "lo", "up"], check=True)
    rundir.mkdir(parents=True, exist_ok=True)
    log = open(rundir / "holder.log", "wb")  # noqa: SIM115 - handed to the child
    holder = subprocess.Popen(
        [*enter(name), sys.executable, str(HERE), "_hold", str(n), "--seed", str(seed),
         "--dir", str(rundir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    assert holder.stdout is not None
    ready, _, _ = select.select([holder.stdout], [], [], timeout)
    line = holder.stdout.readline() if ready else b""
    holder.stdout.close()
    report = json.loads(line) if line.startswith(b"{") else {"error": "no report"}
    if "error" in report:
        holder.kill()
        holder.wait()
        err = (rundir / "holder.log").read_text(errors="replace")[-2000:]
        down(name)
        raise RuntimeError(f"fill up {name} {n}: {report['error']} {err}")
    (rundir / "pid").write_text(f"{report['pid']}\n")
    _HOLDERS[name] = holder
    return report


def down(name: str) -> None:
    """Stop namespace ``name``'s holder and delete the namespace (only one fill.py made)."""
    rundir = RUN_DIR / name
    if not rundir.is_dir():
        return
    with contextlib.suppress(OSError, ValueError):
        pid = int((rundir / "pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if HERE.name.encode() in cmdline and b"_hold" in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)
    holder = _HOLDERS.pop(name, None)
    if holder is not None:
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    shutil.rmtree(rundir, ignore_errors=True)


def live_problem() -> str | None:
    """Why this machine cannot fill a namespace, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


class Filled:
    """A filled namespace for the length of a ``with`` block."""

    def __init__(self, n: int, name: str | None = None, seed: int = 0) -> None:
        self.n, self.seed = n, seed
        self.name = name or f"sockscope-fill-{os.getpid()}-{n}"
        self.report: dict[str, object] = {}

    def __enter__(self) -> Filled:
        self.report = up(self.name, self.n, self.seed)
        return self

    def __exit__(self, *_: object) -> None:
        down(self.name)

    @property
    def counts(self) -> dict[str, int]:
        return self.report.get("counts", {})  # type: ignore[return-value]

    def enter(self) -> list[str]:
        return enter(self.name)


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="create NAME holding about N sockets")
    u.add_argument("name")
    u.add_argument("n", type=int)
    u.add_argument("--seed", type=int, default=0)
    sub.add_parser("down", help="stop the holder and delete NAME").add_argument("name")
    sub.add_parser("count", help="sockets by state in NAME").add_argument("name")
    h = sub.add_parser("_hold")
    h.add_argument("n", type=int)
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--dir", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "_hold":
        return hold(a.n, a.seed, Path(a.dir))
    problem = live_problem()
    if problem:
        sys.exit(f"fill.py: {problem}")
    if a.cmd == "up":
        try:
            report = up(a.name, a.n, a.seed)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
            sys.exit(f"fill.py: {e}")
        print(json.dumps(report["counts"]))
    elif a.cmd == "down":
        down(a.name)
    else:
        if not Path(_netns_path(a.name)).exists():
            sys.exit(f"fill.py: no namespace {a.name}")
        out = subprocess.run(
            [*enter(a.name), sys.executable, "-c",
             f"import sys; sys.path.insert(0, {str(HERE.parent)!r}); import fill, json; "
             "print(json.dumps(fill.count_sockets()))"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        sys.stdout.write(out.stdout or out.stderr)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main(sys.argv[1:]))
    sys.exit(errno.EPIPE)
