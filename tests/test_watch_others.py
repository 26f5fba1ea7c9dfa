"""``--watch`` of UNIX, PACKET and NETLINK sockets (snapshot difference; no destruction
events exist for them in the kernel).

Live (root): a private namespace where a holder process, step by step on the test's
command, opens a UNIX stream listener (a path in a temporary directory), an unbound
UNIX stream socket, a UNIX datagram socket (abstract name), a PACKET socket for one
ethertype and a NETLINK_ROUTE socket; then listens on the unbound one (a state change) and
connects a client to the listener (two new ESTAB ends); then closes everything. The
watcher's events must be exactly those, and each event's socket fields (Netid, State,
Local and Peer Address:Port) must be what ss 7.1 lists for the same namespace at that
moment. Text lines and JSON lines, both backends; ``--all-netns`` (each namespace read
from inside) and ``/proc`` rows (keyed by inode, no cookie) too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netns
from test_answers import validate

REASON = netns.live_reason()
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")
pytestmark = pytest.mark.live
INTERVAL = 0.25
#: long enough for two snapshots after a step of the holder
SETTLE = 0.9

HOLD = """
import json, os, socket, sys
d = sys.argv[1]
socks = {}
def ino(s):
    return os.fstat(s.fileno()).st_ino
for cmd in sys.stdin:
    cmd = cmd.strip()
    if cmd == "open":
        socks["listener"] = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        socks["listener"].bind(d + "/srv.sock")
        socks["listener"].listen(4)
        socks["unbound"] = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        socks["dgram"] = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        socks["dgram"].bind(b"\\0sockscope-watch-dgram")
        # no bind(): a bind that rehooks a running socket shows it as protocol 0 for a
        # while (packet_do_bind), and a snapshot may list it so
        socks["packet"] = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
        socks["netlink"] = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        socks["netlink"].bind((0, 0))
    elif cmd == "change":
        socks["unbound"].bind(b"\\0sockscope-watch-late")
        socks["unbound"].listen(1)
        socks["client"] = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        socks["client"].connect(d + "/srv.sock")
        socks["server"] = socks["listener"].accept()[0]
    elif cmd == "close":
        for s in socks.values():
            s.close()
        socks = {}
    print(json.dumps({k: ino(s) for k, s in socks.items()}), flush=True)
"""


class Holder:
    def __init__(self, ns: netns.Netns, directory: Path) -> None:
        self.proc = subprocess.Popen(
            [*ns.enter(), sys.executable, "-c", HOLD, str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=netns.tool_env(),
        )

    def do(self, cmd: str) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()
        got: dict[str, int] = json.loads(self.proc.stdout.readline())
        return got

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _oracle(ns: netns.Netns, numeric: bool) -> list[str]:
    """What ss 7.1 lists there: ``NETID STATE LOCAL PEER`` per socket (queues dropped,
    blanks folded; ss's own sock_diag socket left out)."""
    path, _is71 = netns.oracle()
    flags = "-an" if numeric else "-a"
    out = ns.run([path, flags, "-A", "unix,packet,netlink"], check=True, env=netns.tool_env())
    rows = []
    for line in netns.drop_self_diag(out.stdout).decode().splitlines()[1:]:
        words = line.split()
        rows.append(" ".join(words[:2] + words[4:]))
    return rows


def _ignored(text: str, pid: int) -> bool:
    """A NETLINK socket not the holder's: the oracle's own (sock_diag, and rtnl for
    interface names), if a snapshot catches one while ss runs."""
    if not text.startswith("nl "):
        return False
    local = text.split()[2]
    return not local.endswith((f"/{pid}", f":{pid}"))


def _text_events(out: bytes, pid: int) -> list[tuple[str, str]]:
    """(kind, ``NETID STATE LOCAL PEER``) of every text line (lifetime dropped)."""
    found = []
    for line in out.decode().splitlines():
        words = line.split()
        if words[-1].startswith("lifetime:"):
            words = words[:-1]
        found.append((words[1], " ".join(words[2:])))
    return [(k, t) for k, t in found if not _ignored(t, pid)]


def _cells(sock: dict[str, object]) -> str:
    """``NETID STATE LOCAL PEER`` from an event's socket object, as ss -n prints them."""
    netid, state = sock["netid"], sock["state"]
    if sock["family"] == "unix":
        local = f"{sock['local_address']} {sock['local_port']}"
        peer = f"{sock['peer_address']} {sock['peer_port']}"
    elif sock["family"] == "packet":
        local, peer = f"{sock['local_address']}:{sock.get('interface', '*')}", "*"
    else:  # -n: the protocol's number
        local, peer = f"{sock['protocol']}:{sock['local_port']}", "*"
    return f"{netid} {state} {local} {peer}"


def _json_events(out: bytes, pid: int) -> list[tuple[str, str]]:
    found = []
    for line in out.decode().splitlines():
        ev = json.loads(line)
        text = _cells(ev["socket"])
        if ev["event"] == "state":
            netid, state, rest = text.split(" ", 2)
            text = f"{netid} {ev['old_state']}->{state} {rest}"
        found.append((ev["event"], text))
    return [(k, t) for k, t in found if not _ignored(t, pid)]


def _rows_of(rows: list[str], inodes: dict[str, int], pid: int) -> dict[str, str]:
    """The oracle's row of each socket the holder reported: by inode, or by what only it
    can be (the one PACKET row; the NETLINK row whose port is the holder's pid)."""
    mine: dict[str, str] = {}
    for name, ino in inodes.items():
        if name == "packet":
            hits = [r for r in rows if r.startswith("p_raw ")]
        elif name == "netlink":
            hits = [r for r in rows if r.startswith("nl ") and not _ignored(r, pid)]
        else:
            hits = [r for r in rows if r.startswith("u_") and r.split()[3] == str(ino)]
        assert len(hits) == 1, (name, ino, rows)
        mine[name] = hits[0]
    return mine


def _run(
    tmp_path: Path, ns: netns.Netns, cmd: list[str], env: dict[str, str], numeric: bool
) -> tuple[bytes, list[dict[str, str]], int]:
    """The watcher's output around the holder's three steps, the oracle's rows of the
    holder's sockets after the first two, and the holder's pid."""
    sink = (tmp_path / "watch.out").open("wb")
    watcher = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.PIPE, env=env)
    holder = Holder(ns, tmp_path)
    seen: list[dict[str, str]] = []
    try:
        time.sleep(1.5)  # start-up and the baseline
        for step in ("open", "change", "close"):
            inodes = holder.do(step)
            time.sleep(SETTLE)
            if inodes:
                seen.append(_rows_of(_oracle(ns, numeric), inodes, holder.proc.pid))
        watcher.send_signal(signal.SIGINT)
        _out, err = watcher.communicate(timeout=10)
    finally:
        holder.close()
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        sink.close()
    assert watcher.returncode in (130, -signal.SIGINT), err
    return (tmp_path / "watch.out").read_bytes(), seen, holder.proc.pid


def _expected(seen: list[dict[str, str]]) -> list[tuple[str, str]]:
    """The events the three steps make, from the oracle's rows: everything opened is
    new, the listen is a state change, the two connected ends are new, and every
    socket closes as ss last listed it."""
    first, second = seen
    out = [("new", row) for row in first.values()]
    for name, row in second.items():
        if name not in first:
            out.append(("new", row))
        elif first[name] != row:
            netid, old, _rest = first[name].split(" ", 2)
            _n, new, rest = row.split(" ", 2)
            out.append(("state", f"{netid} {old}->{new} {rest}"))
    out += [("closed", row) for row in second.values()]
    return sorted(out)


@needs_root
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_watch_unix_packet_netlink(backend: str, fmt: str, tmp_path: Path) -> None:
    ns = netns.Netns(f"sockscope-wux-{os.getpid()}")
    try:
        numeric = fmt == "json"  # the JSON has the netlink port id, ss -n prints it
        flags = ["-a", "-A", "unix,packet,netlink", f"--watch={INTERVAL}"]
        if fmt == "json":
            flags += ["-n", "--json-lines"]
        cmd = [*ns.enter(), *netns.sockscope_cmd(), *flags]
        out, seen, pid = _run(tmp_path, ns, cmd, netns.tool_env(), numeric)
    finally:
        ns.close()
    events = _text_events(out, pid) if fmt == "text" else _json_events(out, pid)
    assert sorted(events) == _expected(seen)
    # the listen is a state change UNCONN -> LISTEN of the socket the first step opened
    assert [t.split()[1] for k, t in events if k == "state"] == ["UNCONN->LISTEN"]
    if fmt == "json":
        docs = [json.loads(line) for line in out.decode().splitlines()]
        for d in docs:
            validate(d)
        docs = [d for d in docs if not _ignored(_cells(d["socket"]), pid)]
        assert all(isinstance(d["cookie"], int) and d["cookie"] > 0 for d in docs)
        keys = {(d["netns_inode"], d["cookie"]) for d in docs if d["event"] == "new"}
        assert len(keys) == len([d for d in docs if d["event"] == "new"])
        closed = [d for d in docs if d["event"] == "closed"]
        assert {(d["netns_inode"], d["cookie"]) for d in closed} == keys
        assert all(d["lifetime_s"] > 0 for d in closed)


@needs_root
def test_watch_proc_rows_keyed_by_inode(backend: str, tmp_path: Path) -> None:
    """``PROC_NET_UNIX``, ``PROC_NET_NETLINK``: the tables come from /proc/net/unix and
    /proc/net/netlink, whose rows have no cookie: the UNIX events have ``cookie`` 0 and
    the ``inode`` (their key) too; the NETLINK rows have no inode either (ss's
    scanf skips it) and are keyed by kernel address, protocol and port id."""
    ns = netns.Netns(f"sockscope-wuxp-{os.getpid()}")
    try:
        flags = ["-an", "-A", "unix,netlink", f"--watch={INTERVAL}", "--json-lines"]
        cmd = [*ns.enter(), *netns.sockscope_cmd(), *flags]
        env = netns.tool_env(PROC_NET_UNIX="/proc/net/unix", PROC_NET_NETLINK="/proc/net/netlink")
        out, seen, pid = _run(tmp_path, ns, cmd, env, True)
    finally:
        ns.close()
    docs = [json.loads(line) for line in out.decode().splitlines()]
    for d in docs:
        validate(d)
    assert all(d["cookie"] == 0 for d in docs)
    nl = [d for d in docs if d["socket"]["netid"] == "nl"]
    docs = [d for d in docs if d["socket"]["netid"] != "nl"]
    unix = {name for name in seen[1] if name not in ("packet", "netlink")}
    assert len([d for d in docs if d["event"] == "new"]) == len(unix)
    assert len([d for d in docs if d["event"] == "closed"]) == len(unix)
    for d in docs:
        assert d["inode"] == d["socket"]["local_port"]
    inodes = {d["inode"] for d in docs}
    assert inodes == {int(seen[1][name].split()[3]) for name in unix}
    # the holder's NETLINK_ROUTE socket (port id: its pid), once new, once closed; the
    # kernel's sockets (port id 0, inode 0 in the file) never moved
    mine = [(d["event"], d["socket"]["protocol"]) for d in nl if d["socket"]["local_port"] == pid]
    assert mine == [("new", 0), ("closed", 0)]
    assert not [d for d in nl if d["socket"]["local_port"] == 0]
    assert not [d for d in nl if "inode" in d]


@needs_root
def test_watch_all_netns_reads_others_inside(backend: str, tmp_path: Path) -> None:
    """``--all-netns``: the namespace's UNIX/PACKET/NETLINK sockets are read from inside
    it (its lines carry its label), with the same events as a watch run there."""
    ns = netns.Netns(f"sockscope-wuxa-{os.getpid()}")
    try:
        label = f"net:[{os.stat(ns.path).st_ino}]"
        flags = ["--all-netns", "-a", "-A", "unix,packet,netlink", f"--watch={INTERVAL}"]
        cmd = [*netns.sockscope_cmd(), *flags]
        out, seen, pid = _run(tmp_path, ns, cmd, netns.tool_env(), False)
    finally:
        ns.close()
    mine = b"\n".join(
        b" ".join(w for i, w in enumerate(line.split()) if i != 2)
        for line in out.splitlines()
        if line.split()[2:3] == [label.encode()]
    )
    assert sorted(_text_events(mine, pid)) == _expected(seen)


LIB_HOLD = """
import json, os, socket, sys, time
time.sleep(1.0)
a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
a.bind(sys.argv[1] + "/lib.sock")
a.listen(1)
b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
b.bind(b"\\0sockscope-watch-lib")
print(json.dumps([os.fstat(s.fileno()).st_ino for s in (a, b)]), flush=True)
time.sleep(1.0)
a.close()
b.close()
time.sleep(5)
"""


@needs_root
def test_library_watch_unix(backend: str, tmp_path: Path) -> None:
    """``sockscope.watch(Query(netns=NAME, tables={"unix"}))``: typed changes whose
    socket is the UnixSocket record, keyed by (namespace inode, udiag cookie)."""
    import sockscope
    from sockscope.tables.unix import UnixSocket

    ns = netns.Netns(f"sockscope-wuxl-{os.getpid()}")
    inode = os.stat(ns.path).st_ino
    holder = None

    def alarm(_sig: int, _frame: object) -> None:
        raise TimeoutError("no change came")

    old = signal.signal(signal.SIGALRM, alarm)
    try:
        query = sockscope.Query(netns=ns.name, tables={"unix"}, states={"all"})
        stream = sockscope.watch(query, 0.2)
        holder = subprocess.Popen(
            [*ns.enter(), sys.executable, "-c", LIB_HOLD, str(tmp_path)],
            stdout=subprocess.PIPE,
            env=netns.tool_env(),
        )
        signal.alarm(30)
        changes = [next(stream) for _ in range(4)]
        signal.alarm(0)
        stream.close()  # type: ignore[attr-defined]
        assert holder.stdout is not None
        inodes = json.loads(holder.stdout.readline())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        if holder is not None:
            holder.kill()
            holder.wait()
            if holder.stdout is not None:
                holder.stdout.close()
        ns.close()
    assert [c.kind for c in changes] == ["new", "new", "closed", "closed"]
    assert all(isinstance(c.socket, UnixSocket) for c in changes)
    assert sorted(c.socket.inode for c in changes[:2]) == sorted(inodes)  # type: ignore[union-attr]
    assert {c.cookie for c in changes[:2]} == {c.cookie for c in changes[2:]}
    for c in changes:
        assert c.cookie == c.socket.cookie and c.cookie
        assert c.netns == inode
        d = c.to_dict()
        assert d["cookie"] == c.cookie and d["socket"]["local_port"] == c.socket.inode  # type: ignore[index,union-attr]
    names = sorted(str(c.socket.to_dict()["local_address"]) for c in changes[:2])
    assert names == sorted([f"{tmp_path}/lib.sock", "@sockscope-watch-lib"])
