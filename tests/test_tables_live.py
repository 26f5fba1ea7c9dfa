"""Live comparison with upstream ss 7.1 for the UNIX, PACKET and NETLINK tables.

Marked ``live``: needs root, ``ip``/``nsenter`` and the 7.1 oracle (``$SOCKSCOPE_ORACLE``,
see conftest.py); outputs must match byte for byte. A holder process (this file,
run as ``python test_tables_live.py hold DIR``) opens, inside a private network namespace:

* UNIX: a path listener with two connections it never accepts (``-e`` ``peers:``), an
  abstract name with embedded NULs, an autobound name, a path with non-ASCII bytes, a
  long path, stream/dgram/seqpacket pairs, a stream pair with unread data and one side
  shut down (``<->`` variants), a dgram socket connected to a bound one;
* PACKET: ETH_P_ALL unbound and on ``lo``, ARP raw, IP dgram on ``lo``, CFM and an
  unknown protocol, one with a classic BPF filter, one in a fanout group, one with an RX
  ring and auxdata;
* NETLINK: route sockets with groups, a connected one, generic and usersock sockets.

The listing tool's own sock_diag socket differs by nature (``tcpdiag:ss/PID`` versus
``tcpdiag:python3/PID``): for netlink listings that row is dropped and blanks are folded
on both sides (``netns.drop_self_diag``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

import goldtest  # noqa: E402
import netns  # noqa: E402
from conftest import ORACLE_REASON  # noqa: E402

#: every test here runs against both backends, compiled and pure (conftest.py)
pytestmark = pytest.mark.usefixtures("backend")

REASON = netns.live_reason()
ORACLE, IS71 = netns.oracle()
live = pytest.mark.live
needs = pytest.mark.skipif(REASON is not None or not IS71, reason=REASON or ORACLE_REASON)

SOL_PACKET = 263
PACKET_FANOUT = 18
PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_AUXDATA = 8
SO_ATTACH_FILTER = 26


# ---------------------------------------------------------------- the holder
def _unix_sockets(d: Path, keep: list[object], info: dict[str, object]) -> None:
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(str(d / "listen.sock"))
    lst.listen(8)
    pending = []
    for _ in range(2):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(str(d / "listen.sock"))
        pending.append(c)
    ab = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ab.bind(b"\0tbl\0live\0x")
    auto = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    auto.bind(b"")
    odd = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    odd.bind(os.fsencode(str(d)) + b"/caf\xc3\xa9-\xff.sock")
    odd.listen(1)
    long_name = str(d / ("L" * (100 - len(str(d)) - 1)))
    lng = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lng.bind(long_name)
    lng.listen(2)
    pairs = [socket.socketpair(socket.AF_UNIX, t) for t in (1, 2, 5)]
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.sendall(b"hello")
    b.shutdown(socket.SHUT_WR)
    c, e = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    c.shutdown(socket.SHUT_RDWR)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(d / "dgram.sock"))
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    cli.connect(str(d / "dgram.sock"))
    cli.send(b"x" * 10)
    keep += [lst, *pending, ab, auto, odd, lng, *[s for p in pairs for s in p], a, b, c, e]
    keep += [srv, cli]
    info["listen_ino"] = os.fstat(lst.fileno()).st_ino
    info["pending_ino"] = [os.fstat(p.fileno()).st_ino for p in pending]


def _packet_sockets(keep: list[object]) -> None:
    lo = socket.if_nametoindex("lo")

    def pk(kind: int, proto: int, bind: bool = True) -> socket.socket:
        s = socket.socket(socket.AF_PACKET, kind, socket.htons(proto))
        if bind:
            s.bind(("lo", proto))
        keep.append(s)
        return s

    pk(socket.SOCK_RAW, 3, bind=False)
    pk(socket.SOCK_RAW, 3)
    pk(socket.SOCK_RAW, 0x0806)
    pk(socket.SOCK_DGRAM, 0x0800)
    pk(socket.SOCK_RAW, 0x8902)
    pk(socket.SOCK_DGRAM, 0x1234)
    f = pk(socket.SOCK_RAW, 0x0806, bind=False)
    prog = [(0x28, 0, 0, 12), (0x15, 0, 1, 0x0806), (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0)]
    code = b"".join(struct.pack("=HBBI", *i) for i in prog)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    f.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    keep.append(buf)
    fan = pk(socket.SOCK_RAW, 3)
    fan.setsockopt(SOL_PACKET, PACKET_FANOUT, 7 | (1 << 16))
    ring = pk(socket.SOCK_RAW, 3)
    ring.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    ring.setsockopt(SOL_PACKET, PACKET_VERSION, 1)
    ring.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("=IIII", 4096, 4, 2048, 8))
    del lo


def _netlink_sockets(keep: list[object]) -> None:
    r = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    r.bind((0, 0x51))
    r2 = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    r2.bind((0, 0))
    conn = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
    conn.connect((0, 0))
    g = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    g.bind((0, 0))
    u = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)
    u.bind((424242, 0))
    keep += [r, r2, conn, g, u]


def hold(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    keep: list[object] = []
    info: dict[str, object] = {"pid": os.getpid()}
    _unix_sockets(directory, keep, info)
    optional = []
    with contextlib.suppress(OSError):
        _packet_sockets(keep)
        optional.append("packet")
    _netlink_sockets(keep)
    info["optional"] = optional
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    deadline = time.monotonic() + 600
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sys.stdin], [], [], min(left, 5))
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break
    return 0


# ---------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def lab():
    if REASON or not IS71:
        pytest.skip(REASON or "needs the ss 7.1 oracle")
    ns = netns.Netns(f"sockscope-tables-{os.getpid()}")
    d = Path(f"/run/sockscope-tables-{os.getpid()}")
    proc = subprocess.Popen(
        [*ns.enter(), sys.executable, __file__, "hold", str(d)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError("holder did not start")
        yield ns, json.loads(line), d
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        ns.close()
        subprocess.run(["rm", "-rf", str(d)], check=False)


# (id, arguments, flags): "nl" drop the tool's own sock_diag row and fold blanks
CASES = [
    ("xa", "-xa", ""),
    ("xan", "-xan", ""),
    ("x", "-x", ""),
    ("xl", "-xl", ""),
    ("xae", "-xae", ""),
    ("xam", "-xam", ""),
    ("xaem", "-xaem", ""),
    ("xaep", "-xaep", ""),
    ("xaH-O-Q", "-xaHOQ", ""),
    ("u_dgr", "-A unix_dgram -a", ""),
    ("u_seq-str", "-A unix_seqpacket,unix_stream -a", ""),
    ("x-state", "-x state listening", ""),
    ("x-excl", "-xa exclude established", ""),
    ("x-src-glob", "-xa src @tbl*", ""),
    ("x-src-path", "-xa src /run/*", ""),
    ("x-dst", "-xa dst *", ""),
    ("x-dst-path", "-xa dst /run/*", ""),
    ("x-src-bytes", "-xa src /run/*/caf*", ""),
    ("x-inode", "-xa sport = :1 or dport gt :1", ""),
    ("x-auto", "-xa autobound", ""),
    ("x-not-auto", "-xa ! autobound", ""),
    ("x-sport-gt", "-xa sport gt :1", ""),
    ("0a", "-0a", ""),
    ("0an", "-0an", ""),
    ("0ae", "-0ae", ""),
    ("0aeO", "-0aeO", ""),
    ("0ab", "-0ab", ""),
    ("0abem", "-0abem", ""),
    ("0am", "-0am", ""),
    ("0ap", "-0ap", ""),
    ("p_raw", "-A packet_raw -a", ""),
    ("p_dgr", "-A packet_dgram -a", ""),
    ("0-dev", "-0a dev lo", ""),
    ("0-auto", "-0a autobound", ""),
    ("nl", "-A netlink -a", "nl"),
    ("nl-n", "-A netlink -an", "nl"),
    ("nl-e", "-A netlink -ae", "nl"),
    ("nl-ep", "-A netlink -aep", "nl"),
    ("nl-m", "-A netlink -am", "nl"),
    ("nl-mp", "-A netlink -amp", "nl"),
    ("nl-sport0", "-A netlink -a sport = :0", ""),
    ("nl-auto", "-A netlink -a autobound", "nl"),
    ("vsock-none", "--vsock -a", ""),
    ("tipc-none", "--tipc -a --tipcinfo", ""),
    ("xdp-none", "--xdp -ae", ""),
    ("sctp-none", "-A sctp -a", ""),
    ("dccp-none", "-A dccp -a", ""),
    ("all-tipc", "-A all,tipc -a", "nl"),
    ("all", "-a", "nl"),
    ("all-n-O", "-anO", "nl"),
]


def _run(ns, argv):
    p = ns.run(argv, env=netns.tool_env())
    return p.returncode, p.stdout, p.stderr


@live
@needs
@pytest.mark.parametrize(("args", "flags"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_same_as_ss(lab, args, flags):
    ns, info, _d = lab
    if args.startswith("-0") and "packet" not in info["optional"]:
        pytest.skip("no AF_PACKET here")
    argv = args.split()
    for attempt in range(3):
        rs, rout, rerr = _run(ns, [ORACLE, *argv])
        cs, cout, cerr = _run(ns, [*netns.sockscope_cmd(), *argv])
        if "nl" in flags:
            rout, cout = netns.drop_self_diag(rout), netns.drop_self_diag(cout)
        if (rs, rout, rerr) == (cs, cout, cerr):
            return
        time.sleep(0.3 * (attempt + 1))
    pytest.fail(
        f"ss {args!r}: status {rs} vs {cs}, stderr {rerr!r} vs {cerr[-800:]!r}\n"
        + goldtest.visible_diff(rout, cout),
        pytrace=False,
    )


@live
@needs
def test_pending_peers_listed(lab):
    """-e lists the inodes of connections waiting in a listener's accept queue."""
    ns, info, _d = lab
    _, out, _ = _run(ns, [*netns.sockscope_cmd(), "-xle"])
    line = next(x for x in out.decode("latin-1").splitlines() if f" {info['listen_ino']} " in x)
    assert line.rstrip().endswith("peers: " + " ".join(map(str, sorted(info["pending_ino"]))))


@live
@needs
def test_proc_root_live_matches(lab):
    """PROC_ROOT=/proc forces the /proc parsers of unix, packet and netlink on both sides."""
    ns, _info, _d = lab
    for args in (["-xa"], ["-0a"], ["-A", "netlink", "-a"], ["-xae"], ["-0ae"]):
        env = netns.tool_env(PROC_ROOT="/proc")
        r = ns.run([ORACLE, *args], env=env)
        c = ns.run([*netns.sockscope_cmd(), *args], env=env)
        want, got = r.stdout, c.stdout
        if "netlink" in args:
            want, got = netns.drop_self_diag(want), netns.drop_self_diag(got)
        if args[0].startswith("-x"):
            # sockscope's own sock_diag socket is not a unix socket: exact comparison
            pass
        assert (r.returncode, want) == (c.returncode, got), goldtest.visible_diff(want, got)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "hold":
        sys.exit(hold(Path(sys.argv[2])))
    sys.exit(pytest.main([__file__, "-v"]))
