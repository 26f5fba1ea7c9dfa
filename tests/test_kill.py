"""``-K``: SOCK_DESTROY on the netlink path only, with ss's messages and fallbacks.

Live tests (marked ``live``) run in private namespaces (``ip netns add``, entered with
``nsenter``); each run gets a fresh namespace whose sockets belong to a holder process
the test starts, so only sockets the test created are killed. The 7.1 oracle runs on
an identical namespace and both the output and the kernel's state afterwards must
match. The offline tests check the request bytes and that ``/proc`` and
``TCPDIAG_FILE`` rows are never killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import netns
import sockscope
from sockscope.kernel import abi
from sockscope.ops.destroy import Killer, KillError, destroy_request
from sockscope.tables.inet.record import InetSocket, decode_inet, make_proc_inet

REASON = netns.live_reason()
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")
ORACLE, IS_71 = netns.oracle()
needs_71 = pytest.mark.skipif(not IS_71, reason="needs the iproute2 7.1 oracle")
REPO = Path(__file__).resolve().parent.parent
RECORDED = REPO / "tests" / "golden" / "scenario-5"

#: the holder: fixed ports everywhere (clients bind too) so two namespaces print alike
HOLDER = r"""
import socket, sys
A4, A6 = "127.0.0.1", "::1"
keep = []
def tcp(fam, addr, lport, cport):
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, lport)); l.listen(8)
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind((addr, cport)); c.connect((addr, lport))
    s, _ = l.accept()
    keep.extend([l, c, s])
    return c, s
def udp(fam, addr, port, peer=None):
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind((addr, port))
    if peer: u.connect((addr, peer))
    keep.append(u)
    return u
c4, s4 = tcp(socket.AF_INET, A4, 7200, 7201)
c6, s6 = tcp(socket.AF_INET6, A6, 7202, 7203)
udp(socket.AF_INET, A4, 7210, 7211); udp(socket.AF_INET, A4, 7211, 7210)
udp(socket.AF_INET6, A6, 7212)
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); keep.append(u)
keep.extend(socket.socketpair())
mode = sys.argv[1] if len(sys.argv) > 1 else "hold"
if mode == "many":  # more listeners than one datagram of a dump holds
    for port in range(7400, 7800):
        s = socket.socket(); s.bind((A4, port)); s.listen(); keep.append(s)
print("ready", flush=True)
if mode == "close":
    # for -E: close on request, in a fixed order, one line per step. The connected
    # pairs reset instead of exchanging FINs: with FINs, whether the peer's FIN is
    # counted in Recv-Q (rcv_nxt - copied_seq) at destruction depends on whether the
    # ACK of our own FIN was delayed, a race between two runs that showed under load.
    import struct
    for k in (c4, s4, c6, s6):
        k.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    for line in sys.stdin:
        what = line.strip()
        if what == "tcp4":
            s4.close(); c4.close()
        elif what == "tcp6":
            s6.close(); c6.close()
        elif what == "all":
            for k in keep: k.close()
        print("done", flush=True)
else:
    sys.stdin.read()
"""


class Holder:
    """The holder process inside ``ns``."""

    def __init__(self, ns: netns.Netns, mode: str = "hold") -> None:
        self.proc = subprocess.Popen(
            [*ns.enter(), sys.executable, "-c", HOLDER, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        if self.readline(30) != b"ready\n":
            self.close()
            raise RuntimeError("holder did not start")

    def readline(self, timeout: float) -> bytes:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else b""

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        assert self.readline(10) == b"done\n"

    def close(self) -> None:
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


_COUNTER = [0]


@contextlib.contextmanager
def populated(mode: str = "hold"):  # type: ignore[no-untyped-def]
    """A fresh namespace with the holder's sockets; deleted afterwards."""
    _COUNTER[0] += 1
    ns = netns.Netns(f"sockscope-ops-{os.getpid()}-{_COUNTER[0]}")
    holder = None
    try:
        holder = Holder(ns, mode)
        yield ns, holder
    finally:
        if holder is not None:
            holder.close()
        ns.close()


def run_in(
    ns: netns.Netns, cmd: list[str], argv: list[str], *, user: bool = False
) -> tuple[bytes, bytes, int]:
    if not user:
        return _run(ns, cmd, argv, netns.tool_env())
    with netns.as_nobody(cmd) as (cmd_as_nobody, env):  # a private checkout is fine
        return _run(ns, cmd_as_nobody, argv, env, cwd="/")


def _run(
    ns: netns.Netns, cmd: list[str], argv: list[str], env: dict[str, str], cwd: str | None = None
) -> tuple[bytes, bytes, int]:
    r = subprocess.run(
        [*ns.enter(), *cmd, *argv],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    return r.stdout, r.stderr, r.returncode


def kill_both(argv: list[str], *, user: bool = False, mode: str = "hold") -> None:
    """Run ``argv`` with the oracle and with sockscope on identical namespaces; compare
    their output, then the sockets left (listed by the oracle on both sides)."""
    results = []
    for cmd in ([ORACLE], netns.sockscope_cmd()):
        with populated(mode) as (ns, _holder):
            out = run_in(ns, cmd, argv, user=user)
            after = run_in(ns, [ORACLE], ["-tuan"])
            results.append((out, after))
    (theirs, their_after), (ours, our_after) = results
    assert comparable(ours) == comparable(theirs)
    assert comparable(our_after) == comparable(their_after)


_VOLATILE = re.compile(rb" ino:\d+ sk:[0-9a-f]+")


def comparable(
    result: tuple[bytes, bytes, int],
) -> tuple[bytes, list[tuple[int, list[bytes]]], bytes, int]:
    """Header, then the rows sorted: the kernel's hash order (and so the dump order) of
    the same sockets differs from one namespace to the next. Inode numbers and socket
    cookies differ too."""
    out, err, status = mask_unix(result)
    lines = _VOLATILE.sub(b" ino:I sk:K", out).split(b"\n")
    return lines[0], sorted(map(_unordered, lines[1:])), err, status


def _unordered(row: bytes) -> tuple[int, list[bytes]]:
    """A row as (its length, its words with the two endpoints sorted).

    When both ends of a connection match, whichever the kernel dumps first is killed
    and printed, and its peer, reset by then, is gone: which one depends on the hash
    order, so the endpoints are compared as a set. The length still checks the widths.
    """
    words = row.split()
    ends = [i for i, w in enumerate(words) if b":" in w][-2:]
    if len(ends) == 2:
        i, j = ends
        words[i], words[j] = sorted((words[i], words[j]))
    return len(row), words


_INODE = re.compile(rb"(?<= )\d{3,}(?= |$)")


def mask_unix(result: tuple[bytes, bytes, int]) -> tuple[bytes, bytes, int]:
    """Unix socket inodes differ from one namespace to the next: mask them (u_* rows)."""
    out, err, status = result
    if b"\nu_" not in out:
        return result
    lines = [_INODE.sub(b"N", ln) if ln.startswith(b"u_") else ln for ln in out.split(b"\n")]
    return netns.fold_blanks(b"\n".join(lines)), err, status


# --- live, against the oracle -----------------------------------------------------------

KILL_CASES = [
    ("one-client", ["-K", "-tn", "sport", "=", ":7201"]),
    ("one-v6-pair", ["-K", "-tn", "sport", "=", ":7202", "or", "dport", "=", ":7202"]),
    ("default", ["-K", "-n"]),
    ("tcp-all-states", ["-K", "-tan"]),
    ("udp", ["-K", "-uan"]),
    ("v4-only", ["-K", "-4", "-n"]),
    ("unix-listed-not-killed", ["-K", "-xa"]),
    ("nothing-matches", ["-K", "-tn", "dport", "=", ":1"]),
    ("with-extended", ["-K", "-tne", "sport", "=", ":7200"]),
]


@pytest.mark.live
@needs_root
@needs_71
@pytest.mark.parametrize("argv", [c[1] for c in KILL_CASES], ids=[c[0] for c in KILL_CASES])
def test_kill_like_ss(argv: list[str]) -> None:
    kill_both(argv)


USER_CASES = [
    ("tcp", ["-K", "-tn"]),
    ("udp-falls-back-to-proc", ["-K", "-un"]),
    ("default-message-per-table", ["-K", "-n"]),
    ("filtered", ["-K", "-tuan", "sport", "=", ":7210"]),
]


@pytest.mark.live
@needs_root
@needs_71
@pytest.mark.parametrize("argv", [c[1] for c in USER_CASES], ids=[c[0] for c in USER_CASES])
def test_kill_without_privilege(argv: list[str]) -> None:
    """``SOCK_DESTROY answers: Operation not permitted`` once per table; TCP's dump is
    abandoned, UDP falls back to /proc and lists its sockets; exit 0."""
    kill_both(argv, user=True)


#: with more sockets than the first datagram of the dump holds, ss's retry (the legacy
#: request on the same socket) reads more of the first dump: the kill fails again, and
#: TCP falls back to /proc
USER_MANY_CASES = [
    ("tcp-all", ["-K", "-tan"]),
    ("tcp-filtered", ["-K", "-ta", "sport", ">=", ":7700"]),
    ("tcp-v4", ["-K", "-4ta"]),  # no -e: /proc sk: values vary in length
    ("all-tables", ["-K", "-tuwan"]),
]


@pytest.mark.live
@needs_root
@needs_71
@pytest.mark.parametrize(
    "argv", [c[1] for c in USER_MANY_CASES], ids=[c[0] for c in USER_MANY_CASES]
)
def test_kill_without_privilege_many_sockets(argv: list[str]) -> None:
    kill_both(argv, user=True, mode="many")


@pytest.mark.live
@needs_root
def test_kill_without_privilege_many_sockets_pinned() -> None:
    """As ss 7.1 does on this kernel (checked with the oracle by the test above)."""
    with populated("many") as (ns, _h):
        out, err, status = run_in(ns, netns.sockscope_cmd(), ["-K", "-tan"], user=True)
    assert status == 0
    assert err == b"SOCK_DESTROY answers: Operation not permitted\n" * 2
    ports = {ln.split()[3].rsplit(b":", 1)[1] for ln in out.splitlines()[1:]}
    assert {str(p).encode() for p in range(7400, 7800)} <= ports  # all of them, from /proc


@pytest.mark.live
@needs_root
def test_kill_without_privilege_pinned() -> None:
    with populated() as (ns, _h):
        out, err, status = run_in(ns, netns.sockscope_cmd(), ["-K", "-tun"], user=True)
    assert status == 0
    assert err == b"SOCK_DESTROY answers: Operation not permitted\n" * 2
    lines = out.decode().splitlines()
    assert lines[0].split() == [
        "Netid",
        "State",
        "Recv-Q",
        "Send-Q",
        "Local",
        "Address:Port",
        "Peer",
        "Address:Port",
    ]
    assert [ln.split()[0] for ln in lines[1:]] == ["udp", "udp"]  # from /proc/net/udp, not killed


@pytest.mark.live
@needs_root
def test_library_kill() -> None:
    with populated() as (ns, _h):
        killed = sockscope.kill("sport = :7201", netns=ns.name)
        assert [(r.lport, r.rport, r.state_name) for r in killed] == [(7201, 7200, "ESTAB")]
        left = {
            (s.lport, s.rport): s.state_name
            for s in sockscope.sockets(tables=["tcp"], netns=ns.name)
        }
        # the owner still holds the killed socket, now closed (listed as bound-inactive)
        assert left.get((7201, 7200), "UNCONN") == "UNCONN" and (7200, 7201) not in left
        assert sockscope.kill("sport = :7201", netns=ns.name) == []
        # UDP too, and only inet sockets
        killed = sockscope.kill("sport = :7210", tables=["udp", "unix"], netns=ns.name)
        assert [(r.netid, r.lport) for r in killed] == [("udp", 7210)]


@pytest.mark.live
@needs_root
def test_library_kill_refused() -> None:
    """Without CAP_NET_ADMIN the library raises KillError (ss's text)."""

    with populated() as (ns, _h):
        code = (
            "import sockscope, sys\n"
            "try:\n"
            "    sockscope.kill('sport = :7201')\n"
            "except sockscope.NetlinkError as e:\n"
            "    print(type(e).__name__, e.errno, e.message)\n"
        )
        out, err, status = run_in(ns, [sys.executable, "-c", code], [], user=True)
    assert (out, err, status) == (
        b"KillError 1 SOCK_DESTROY answers: Operation not permitted\n",
        b"",
        0,
    )
    assert issubclass(KillError, sockscope.NetlinkError)


# --- offline ----------------------------------------------------------------------------
def _message(family: int = abi.AF_INET, attrs: bytes = b"") -> bytes:
    body = (
        abi.INET_DIAG_MSG.pack(
            family,
            1,
            0,
            0,
            0x1234,
            0x5678,
            b"S" * 16,
            b"D" * 16,
            7,
            0xAABBCCDD,
            0x11223344,
            0,
            0,
            0,
            0,
            99,
        )
        + attrs
    )
    return abi.NLMSGHDR.pack(16 + len(body), abi.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body


def _record(data: bytes, protocol: int) -> InetSocket:
    return next(decode_inet([(abi.SOCK_DIAG_BY_FAMILY, data, 0, len(data))], protocol))


def test_destroy_request_bytes() -> None:
    rec = _record(_message(), abi.IPPROTO_TCP)
    req = destroy_request(rec, abi.IPPROTO_TCP, 77)
    assert req is not None
    length, mtype, flags, seq, pid = abi.NLMSGHDR.unpack_from(req)
    assert (length, mtype, flags, seq, pid) == (72, abi.SOCK_DESTROY, 0x5, 77, 0)
    fam, proto, ext, pad, states = struct.unpack_from("=BBBBI", req, 16)
    assert (fam, proto, ext, pad, states) == (abi.AF_INET, 6, 0, 0, 0)
    # the id is the reply's, byte for byte (ports, addresses, ifindex, cookie)
    assert req[24:] == _message()[20:68]


def test_destroy_request_raw_protocol() -> None:
    """raw: sdiag_raw_protocol from INET_DIAG_PROTOCOL, 0 when absent."""
    attr = struct.pack("=HHB3x", 5, abi.INET_DIAG_PROTOCOL, 1)
    rec = _record(_message(attrs=attr), abi.IPPROTO_RAW)
    req = destroy_request(rec, abi.IPPROTO_RAW, 1)
    assert req is not None and req[17:20] == bytes((255, 0, 1))
    rec = _record(_message(), abi.IPPROTO_RAW)
    req = destroy_request(rec, abi.IPPROTO_RAW, 1)
    assert req is not None and req[17:20] == bytes((255, 0, 0))


def test_destroy_request_raw_protocol_as_parse_rtattr() -> None:
    """kill_inet_sock sends parse_diag_msg's raw_prot: parse_rtattr (no NLA_F_NESTED
    masked, so a flagged type is not INET_DIAG_PROTOCOL: 0), and rta_getattr_u8 with no
    length check (an empty payload reads the next header's first byte, its rta_len)."""
    flagged = struct.pack("=HHB3x", 5, abi.INET_DIAG_PROTOCOL | 0x8000, 17)
    rec = _record(_message(attrs=flagged), abi.IPPROTO_RAW)
    req = destroy_request(rec, abi.IPPROTO_RAW, 1)
    assert req is not None and req[19] == 0
    empty = struct.pack("=HH", 4, abi.INET_DIAG_PROTOCOL) + struct.pack("=HHI", 8, 1, 0)
    rec = _record(_message(attrs=empty), abi.IPPROTO_RAW)
    req = destroy_request(rec, abi.IPPROTO_RAW, 1)
    assert req is not None and req[19] == 8


def test_destroy_request_protocol_is_a_byte() -> None:
    """-E -K hands IPPROTO_MAX (262) to kill_inet_sock: the u8 field holds 6 (TCP)."""
    rec = _record(_message(), 262)
    req = destroy_request(rec, 262, 1)
    assert req is not None and req[17] == 6


def test_proc_rows_are_not_killed() -> None:
    rec = make_proc_inet(abi.AF_INET, 1, 1, 2, bytes(16), bytes(16), 0, 0, 0, 5, 6)
    k = Killer()
    assert k(rec, abi.IPPROTO_TCP) is True and k.killed == [] and k._sock is None


def _cli(argv: list[str], env: dict[str, str]) -> tuple[bytes, bytes, int]:
    full = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PYTHONPATH": str(REPO / "src"), **env}
    r = subprocess.run(
        [sys.executable, "-m", "sockscope", *argv],
        env=full,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return r.stdout, r.stderr, r.returncode


@pytest.mark.parametrize(
    "env",
    [{"TCPDIAG_FILE": str(RECORDED / "tcpdiag.bin")}, {"PROC_ROOT": str(RECORDED / "proc")}],
    ids=["tcpdiag-file", "proc-root"],
)
def test_recorded_inputs_are_listed_not_killed(env: dict[str, str]) -> None:
    """ss only kills on its netlink path: -K changes nothing for recorded inputs."""
    plain = _cli(["-tan"], env)
    assert _cli(["-K", "-tan"], env) == plain
    if IS_71:
        r = subprocess.run(
            [ORACLE, "-K", "-tan"],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            check=False,
        )
        assert (r.stdout, r.stderr, r.returncode) == plain


#: --bpf-maps: ss's requests carry an INET_DIAG_REQ_SK_BPF_STORAGES nest
BPF_CASES = [
    ("tcp", ["--bpf-maps", "-tan"]),
    ("tcp-mem", ["--bpf-maps", "-tanm"]),
    ("udp-mem", ["--bpf-maps", "-uanm"]),
    ("tcp-udp-filtered", ["--bpf-maps", "-tuan", "sport", ">", ":7000"]),
]


@pytest.mark.live
@needs_root
@needs_71
@pytest.mark.parametrize("argv", [c[1] for c in BPF_CASES], ids=[c[0] for c in BPF_CASES])
def test_bpf_maps_without_privilege(argv: list[str]) -> None:
    """Without CAP_BPF the kernel refuses ss's requests (EPERM) and ss falls back: the
    legacy TCP dump, both families in the kernel's order (not IPv4 first), and /proc for
    UDP (no skmem); sockscope left the nest out, so its dumps succeeded (found by
    attack7). Both run on the same namespace: the order is compared too."""
    with populated() as (ns, _h):
        ours = run_in(ns, netns.sockscope_cmd(), argv, user=True)
        theirs = run_in(ns, [ORACLE], argv, user=True)
    assert ours == theirs


@pytest.mark.live
@needs_root
def test_bpf_maps_without_privilege_pinned() -> None:
    """As ss 7.1 does on this kernel (checked with the oracle by the test above): the UDP
    rows come from /proc, which has no socket memory to show."""
    with populated() as (ns, _h):
        out, err, status = run_in(ns, netns.sockscope_cmd(), ["--bpf-maps", "-uanm"], user=True)
        plain, _err, _status = run_in(ns, netns.sockscope_cmd(), ["-uanm"], user=True)
    assert (err, status) == (b"", 0)
    assert b"skmem" in plain and b"skmem" not in out
    assert len(out.splitlines()) == len(plain.splitlines()) // 2 + 1  # a row each, no skmem line
