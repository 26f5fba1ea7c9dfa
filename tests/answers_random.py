"""A random socket mix for the answer checker (``python answers_random.py SEED N``).

Run inside a private namespace with ``lo`` up: adds 127.0.0.x / fd00::x addresses are
expected to be set up by the caller (``setup_commands``). Forks several workers with
distinct comm names (and uids when root) that each open a random mix of TCP listeners,
established pairs, time-wait, close-wait, syn-sent (to a blackholed address), UDP and
UNIX sockets, over IPv4, IPv6 and v4-mapped IPv6; one worker forks a child that shares
its sockets. Prints ``ready`` and holds until stdin closes.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sys
import time

V4 = [f"127.0.0.{i}" for i in range(1, 6)] + ["10.9.0.1", "10.9.1.7"]
V6 = ["::1", "fd00::1", "fd00::2", "fd00:0:0:1::5"]
BLACKHOLE4 = "10.77.0.1"
BLACKHOLE6 = "fd77::1"


def setup_commands() -> list[list[str]]:
    """What the caller runs inside the namespace before the fixture."""
    cmds = [["ip", "link", "set", "lo", "up"]]
    cmds += [["ip", "addr", "add", f"{a}/32", "dev", "lo"] for a in V4[5:]]
    cmds += [["ip", "-6", "addr", "add", f"{a}/128", "dev", "lo", "nodad"] for a in V6[1:]]
    cmds += [["ip", "-6", "addr", "add", "fe80::1/64", "dev", "lo", "nodad"]]
    cmds += [["ip", "route", "add", "10.77.0.0/16", "dev", "lo"]]
    cmds += [["ip", "-6", "route", "add", "fd77::/16", "dev", "lo"]]
    return cmds


def _name(comm: str) -> None:
    # prctl, not /proc/self/comm: after setuid the process is not dumpable and its /proc
    # files belong to root
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(15, comm.encode(), 0, 0, 0)  # PR_SET_NAME


def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _listen(rng: random.Random, addr: str) -> socket.socket:
    s = socket.socket(_family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, rng.choice([0, 0, 0, 8000 + rng.randrange(50)])))
    s.listen(128)
    return s


def _bind_listen(rng: random.Random, addr: str) -> socket.socket:
    for _ in range(20):
        try:
            return _listen(rng, addr)
        except OSError:
            continue
    raise RuntimeError("no port")


def work(rng: random.Random, keep: list[object]) -> None:
    """One worker's random mix (kept open in ``keep``)."""
    for _ in range(rng.randrange(1, 5)):
        try:
            _tcp(rng, keep)
        except OSError:
            pass  # a random clash (port in use): the mix is random anyway
    _others(rng, keep)


def _tcp(rng: random.Random, keep: list[object]) -> None:
    if True:
        fam = rng.choice(["4", "6", "m"])
        if fam == "4":
            server, client, src = rng.choice(V4), rng.choice(V4), rng.choice(V4)
        elif fam == "6":
            server, client, src = rng.choice(V6), rng.choice(V6), rng.choice(V6)
        else:  # v4-mapped: an IPv6 listener on :: reached over IPv4
            server, client, src = "::", rng.choice(V4[:5]), rng.choice(V4[:5])
        lsock = _bind_listen(rng, server)
        keep.append(lsock)
        port = lsock.getsockname()[1]
        for _ in range(rng.randrange(0, 6)):
            c = socket.socket(_family(src), socket.SOCK_STREAM)
            c.bind((src, 0))
            c.connect((client if fam == "m" else server, port))
            s, _a = lsock.accept()
            kind = rng.choice(["est", "est", "unread", "tw", "cw"])
            if kind == "unread":
                c.sendall(b"u" * rng.randrange(1, 3000))
                keep += [c, s]
            elif kind == "tw":
                c.close()  # client closes first: client TIME-WAIT after server closes
                time.sleep(0.01)
                s.close()
            elif kind == "cw":
                c.close()  # server side CLOSE-WAIT, client FIN-WAIT-2
                keep.append(s)
            else:
                keep += [c, s]


def _others(rng: random.Random, keep: list[object]) -> None:
    if rng.random() < 0.5:  # scoped ends: ss prints [fe80::1]%lo:PORT and 127.0.0.1%lo:PORT
        lo = socket.if_nametoindex("lo")
        ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        ls.bind(("fe80::1", 0, 0, lo))
        ls.listen(8)
        c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        c.connect(("fe80::1", ls.getsockname()[1], 0, lo))
        keep += [ls, c, ls.accept()[0]]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):  # SO_BINDTODEVICE needs CAP_NET_RAW
            u.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
        u.bind(("127.0.0.1", 0))
        keep.append(u)
    for _ in range(rng.randrange(0, 3)):
        target = rng.choice([BLACKHOLE4, BLACKHOLE6])
        c = socket.socket(_family(target), socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect((target, 80 + rng.randrange(3)))
        except OSError:
            pass
        keep.append(c)
    for _ in range(rng.randrange(0, 4)):
        addr = rng.choice(V4 + V6 + ["0.0.0.0", "::"])
        u = socket.socket(_family(addr), socket.SOCK_DGRAM)
        u.bind((addr, 0))
        if rng.random() < 0.5:
            u.connect((rng.choice(V4) if _family(addr) == socket.AF_INET else "::1", 9999))
        keep.append(u)
    for _ in range(rng.randrange(0, 3)):
        a, b = socket.socketpair(
            socket.AF_UNIX, rng.choice([socket.SOCK_STREAM, socket.SOCK_DGRAM])
        )
        keep += [a, b]


def main(seed: int, workers: int) -> None:
    rng = random.Random(seed)
    r, w = os.pipe()
    pids = []
    writers = 0
    for i in range(workers):
        uid = rng.choice([0, 0, 1000 + i])
        name = f"rnd-{rng.choice('abc')}{i}"
        shares = rng.random() < 0.4
        sub_seed = rng.randrange(1 << 30)
        writers += 2 if shares else 1
        pid = os.fork()
        if pid == 0:
            _name(name)
            if uid:  # sockets belong to the uid that creates them
                os.setgid(uid)
                os.setuid(uid)
            wrng = random.Random(sub_seed)
            keep: list[object] = []
            work(wrng, keep)
            if shares and os.fork() == 0:
                _name(name + "k")  # a forked child holding the same sockets
            os.write(w, b"x")
            while True:
                time.sleep(3600)
        pids.append(pid)
    for _ in range(writers):
        os.read(r, 1)
    time.sleep(0.3)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.read()
    for pid in pids:
        os.kill(pid, 9)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
