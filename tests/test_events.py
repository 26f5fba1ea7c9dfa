"""``-E``: socket-destruction events, rendered and flushed one by one.

Live (marked ``live``): a namespace holds the test's sockets (see test_kill.Holder);
``-E`` runs in the background with its stdout on a pipe; the holder closes sockets on
request; the lines read back are compared with what the 7.1 oracle prints for the
same steps in a twin namespace. Events of one step may arrive in either order, so
rows are compared as sorted lists (with their lengths, which carry the widths).
"""

from __future__ import annotations

import errno
import os
import select
import signal
import struct
import subprocess
import sys
import time

import pytest

import netns
from sockscope.kernel import abi
from sockscope.ops import follow as follow_module
from sockscope.ops import watch as watch_module
from sockscope.ops.follow import IPPROTO_MAX, EventError, groups_for, messages, shown
from test_kill import ORACLE, REASON, _message, comparable, populated

needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")
IS_71 = netns.oracle()[1]
needs_71 = pytest.mark.skipif(not IS_71, reason="needs the iproute2 7.1 oracle")
SETTLE = 0.4


def read_available(proc: subprocess.Popen[bytes], quiet: float = SETTLE) -> bytes:
    """What the process wrote until it stays silent for ``quiet`` seconds."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], quiet)
        if not ready:
            return data
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def follow(cmd: list[str], argv: list[str], steps: list[str]) -> tuple[list[bytes], bytes, int]:
    """Run ``cmd -E argv`` in a fresh namespace, perform ``steps``; returns the output
    read after each step, stderr and the status after SIGTERM."""
    with populated("close") as (ns, holder):
        proc = subprocess.Popen(
            [*ns.enter(), *cmd, *argv],
            env=netns.tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(1.0)  # subscribed by then (python startup included)
            chunks = []
            for step in steps:
                holder.say(step)
                chunks.append(read_available(proc))
            proc.send_signal(signal.SIGTERM)
            _rest, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return chunks, err, proc.returncode


def both(argv: list[str], steps: list[str]) -> tuple[list[bytes], list[bytes]]:
    """The chunks of ours and of the oracle, checked to be comparable."""
    theirs, their_err, their_status = follow([ORACLE], argv, steps)
    ours, our_err, our_status = follow(netns.sockscope_cmd(), argv, steps)
    assert (our_err, our_status) == (their_err, their_status)
    for mine, ref in zip(ours, theirs, strict=True):
        assert comparable((mine, b"", 0)) == comparable((ref, b"", 0))
    return ours, theirs


CASES = [
    ("all", ["-E", "-n"]),
    ("tcp6-only", ["-E", "-t", "-6", "-n"]),
    ("udp-only", ["-E", "-u", "-n"]),
    ("filter", ["-E", "-n", "sport", "=", ":7200", "or", "sport", "=", ":7212"]),
    ("no-header", ["-E", "-H", "-n"]),
    ("header-with-first-dropped-event", ["-E", "-n", "sport", "=", ":9999"]),
    ("state-mask-ignored", ["-E", "-t", "-n", "state", "listening"]),
    ("names", ["-E", "-t"]),
    ("kill-hides-everything", ["-E", "-K", "-n"]),
    ("no-queues", ["-E", "-Q", "-n"]),
]


@pytest.mark.live
@needs_root
@needs_71
@pytest.mark.parametrize("argv", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_events_like_ss(argv: list[str]) -> None:
    both(argv, ["tcp4", "all"])


@pytest.mark.live
@needs_root
def test_events_flushed_per_event() -> None:
    """Each step's rows are readable before the next step (7.1 flushes per event), the
    header comes with the first event, the state is UNCONN, Send-Q of UDP is -1."""
    chunks, err, status = follow(netns.sockscope_cmd(), ["-E", "-n"], ["tcp4", "tcp6", "all"])
    assert err == b"" and status == -signal.SIGTERM
    first = chunks[0].decode().splitlines()
    assert first[0].split()[:2] == ["Netid", "State"] and len(first) == 3
    assert sorted(ln.split()[4] for ln in first[1:]) == ["127.0.0.1:7200", "127.0.0.1:7201"]
    assert all(ln.split()[:2] == ["tcp", "UNCONN"] for ln in first[1:])
    assert len(chunks[1].splitlines()) == 2  # the v6 pair, no header again
    udp = [ln.split() for ln in chunks[2].decode().splitlines() if ln.startswith("udp")]
    assert sorted(w[4] for w in udp) == ["127.0.0.1:7210", "127.0.0.1:7211", "[::1]:7212"]
    assert {w[3] for w in udp} == {"-1"}


@pytest.mark.live
@needs_root
def test_events_interrupt_is_quiet() -> None:
    with populated("close") as (ns, holder):
        proc = subprocess.Popen(
            [*ns.enter(), *netns.sockscope_cmd(), "-E", "-n"],
            env=netns.tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        holder.say("tcp4")
        got = read_available(proc)
        os.kill(proc.pid, signal.SIGINT)  # nsenter forwards it
        rest, err = proc.communicate(timeout=10)
    assert len((got + rest).splitlines()) == 3
    assert err == b""


def _follow_into(cmd: list[str], argv: list[str], stdout: str) -> tuple[bytes, int | None]:
    """(stderr, status) of ``cmd -E argv`` with stdout ``stdout`` after two steps of
    events, then SIGTERM (None: it had ended before the signal)."""
    with populated("close") as (ns, holder), open(stdout, "wb") as out:
        proc = subprocess.Popen(
            [*ns.enter(), *cmd, *argv],
            env=netns.tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(1.0)
            for step in ("tcp4", "all"):
                holder.say(step)
                time.sleep(SETTLE)
            ended = proc.poll() is not None
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return err, None if ended else proc.returncode


@pytest.mark.live
@needs_root
@pytest.mark.parametrize("argv", [["-E", "-n"], ["-E", "-u", "-H"]], ids=["all", "udp-H"])
def test_events_into_a_full_stdout_listen_on(argv: list[str]) -> None:
    """``-E >/dev/full``: ss never checks its writes and listens on until it is killed;
    sockscope ended at the first failed flush with status 0 (found by attack7)."""
    got = _follow_into(netns.sockscope_cmd(), argv, "/dev/full")
    assert got == (b"", -signal.SIGTERM)
    if IS_71:
        assert _follow_into([ORACLE], argv, "/dev/full") == got


def test_nothing_to_follow_exits_255() -> None:
    """``-E -x``: no tcp/udp group, exit 255 and no output (needs no privilege)."""
    env = netns.tool_env()
    r = subprocess.run(
        [*netns.sockscope_cmd(), "-E", "-x"],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=30,
    )
    assert (r.stdout, r.stderr, r.returncode) == (b"", b"", 255)
    if IS_71:
        o = subprocess.run([ORACLE, "-E", "-x"], env=env, capture_output=True, check=False)
        assert (o.stdout, o.stderr, o.returncode) == (b"", b"", 255)


@pytest.mark.parametrize("mode", ["--json", "--json-lines"])
def test_nothing_to_follow_as_json_writes_nothing(mode: str) -> None:
    """``--json -E -x``: the same status, 255, and no half document on stdout (it wrote
    the document's first key before it found nothing to follow); a line on stderr says
    why (JSON is sockscope's own, ss has no message to keep)."""
    r = subprocess.run(
        [*netns.sockscope_cmd(), mode, "-E", "-x"],
        env=netns.tool_env(),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=30,
    )
    assert (r.stdout, r.stderr, r.returncode) == (
        b"",
        b"-E: no tcp/udp events to follow with these tables and families\n",
        255,
    )


def test_groups() -> None:
    inet, inet6 = 1 << abi.AF_INET, 1 << abi.AF_INET6
    tcp, udp = 1 << abi.TCP_DB, 1 << abi.UDP_DB
    assert groups_for(inet | inet6, tcp | udp) == 0xF
    assert groups_for(inet6, tcp) == 0x4
    assert groups_for(inet, udp) == 0x2
    assert groups_for(inet | inet6, 1 << abi.RAW_DB) == 0
    assert IPPROTO_MAX == abi.IPPROTO_MPTCP  # so a missing INET_DIAG_PROTOCOL reads "mptcp"


def _event(attrs: bytes) -> tuple[int, bytes, int, int]:
    data = _message(attrs=attrs)
    return (abi.SOCK_DIAG_BY_FAMILY, data, 0, len(data))


def test_event_netid_from_protocol_attribute() -> None:
    """-E's Netid is inet_show_sock's s->type: INET_DIAG_PROTOCOL found with NLA_F_NESTED
    masked off, read by rta_getattr_u8 with no length check (an empty payload reads the
    next header's first byte); IPPROTO_MAX stays without the attribute. -E and --watch
    share this rule."""
    inet = 1 << abi.AF_INET
    cases = [
        (b"", IPPROTO_MAX),
        (struct.pack("=HHB3x", 5, abi.INET_DIAG_PROTOCOL, abi.IPPROTO_UDP), abi.IPPROTO_UDP),
        (struct.pack("=HHB3x", 5, abi.INET_DIAG_PROTOCOL | 0x8000, 17), 17),
        (struct.pack("=HH", 4, abi.INET_DIAG_PROTOCOL) + struct.pack("=HHI", 8, 1, 0), 8),
    ]
    for attrs, want in cases:
        (rec,) = shown(_event(attrs), inet, None, None)
        assert rec.protocol == want, attrs
    assert watch_module.with_diag_protocol is follow_module.with_diag_protocol


LIBRARY = r"""
import sys, sockscope
events = sockscope.events(
    tables=["tcp"], families=["inet"], filter=sys.argv[1], netns=sys.argv[2]
)
for rec in events:
    print(rec.netid, rec.state_name, rec.lport, rec.rport, flush=True)
"""


@pytest.mark.live
@needs_root
def test_library_events() -> None:
    with populated("close") as (ns, holder):
        proc = subprocess.Popen(
            [sys.executable, "-c", LIBRARY, "sport = :7201", ns.name],
            env=netns.tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(1.0)
            holder.say("tcp6")
            holder.say("tcp4")
            got = read_available(proc)
        finally:
            proc.terminate()
            _out, err = proc.communicate(timeout=10)
    assert got == b"tcp UNCONN 7201 7200\n"
    assert err == b""


class FakeSock:
    """recvmsg() replays datagrams, then raises the given error."""

    def __init__(self, datagrams: list[tuple[bytes, int]], error: int) -> None:
        self.datagrams = datagrams
        self.error = error

    def recvmsg(self, _size: int) -> tuple[bytes, list[object], int, tuple[int, int]]:
        if not self.datagrams:
            raise OSError(self.error, os.strerror(self.error))
        data, sender = self.datagrams.pop(0)
        return data, [], 0, (sender, 0)


def _nlmsg(seq: int, pid: int, mtype: int = abi.SOCK_DIAG_BY_FAMILY) -> bytes:
    return abi.NLMSGHDR.pack(20, mtype, 0, seq, pid) + b"\0" * 4


def test_messages_filter_and_receive_error() -> None:
    """Only the kernel's multicast messages (pid 0, seq 0) count; a receive error ends
    the stream with libnetlink's text (ss then exits 255)."""
    sock = FakeSock(
        [
            (_nlmsg(0, 0) + _nlmsg(5, 0) + _nlmsg(0, 7) + _nlmsg(0, 0, abi.NLMSG_DONE), 0),
            (_nlmsg(0, 0), 1234),  # not from the kernel
            (_nlmsg(0, 0), 0),
        ],
        errno.ENOBUFS,
    )
    got = []
    with pytest.raises(EventError) as info:
        for mtype, _buf, off, length in messages(sock):  # type: ignore[arg-type]
            got.append((mtype, off, length))
    assert got == [(abi.SOCK_DIAG_BY_FAMILY, 0, 20), (abi.SOCK_DIAG_BY_FAMILY, 0, 20)]
    assert info.value.message == "netlink receive error No buffer space available (105)"


#: -E whose receive fails at once (ENOBUFS: the kernel dropped events), as
#: libnetlink's rtnl_listen sees it
_RECEIVE_FAILS = """
import errno, sys
from sockscope.cli import main
from sockscope.ops import follow
def messages(sock):
    raise follow.EventError("netlink receive error No buffer space available (105)",
                            errno.ENOBUFS)
    yield
follow.messages = messages
sys.exit(main(["-E"]))
"""


@needs_root
def test_events_receive_error_is_printed() -> None:
    """A receive error ends ``-E`` with rtnl_listen's message on stderr and status 255
    (ss exits with handle_follow_request's -1); the message was lost when the error was
    taken for a -K failure (EventError is a NetlinkError)."""
    r = subprocess.run(
        [sys.executable, "-c", _RECEIVE_FAILS],
        env=netns.tool_env(),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=30,
    )
    assert (r.stderr, r.returncode) == (
        b"netlink receive error No buffer space available (105)\n",
        255,
    )


@pytest.mark.live
@needs_root
@pytest.mark.parametrize("mode", ["--json", "--json-lines"])
def test_events_as_json(mode: str) -> None:
    """-E with --json/--json-lines: one object per event, streamed; --json stays one
    valid document when the run is interrupted; the data is the text's (UNCONN rows of
    the sockets the holder closed)."""
    import json

    text, _err, _status = follow(netns.sockscope_cmd(), ["-E", "-n"], ["tcp4", "all"])
    rows = [line.split() for c in text for line in c.splitlines() if line[:3] in (b"tcp", b"udp")]
    chunks, rest, err, status = _follow_all(["-E", "-n", mode], ["tcp4", "all"])
    assert err == b""
    assert status == 0
    data = b"".join(chunks) + rest
    if mode == "--json-lines":
        objs = [json.loads(line) for line in data.splitlines()]
        assert all(o["schema_version"] for o in objs)
        # the first step's objects were readable before the second step ran
        assert chunks[0].count(b"\n") >= 1
    else:
        # read what followed the interrupt too: the closing of the document
        assert data.startswith(b'{"schema_version":')
        assert objs_of_document(data)
    got = sorted(
        (o["netid"], o["state"], str(o["local_port"]), str(o["peer_port"]))
        for o in (objs if mode == "--json-lines" else [])
    )
    want = sorted((r[0].decode(), r[1].decode(), _port(r[4]), _port(r[5])) for r in rows)
    if mode == "--json-lines":
        assert got == want


def _port(cell: bytes) -> str:
    port = cell.rsplit(b":", 1)[1].decode()
    return "0" if port == "*" else port


def objs_of_document(data: bytes) -> list[object]:
    """The sockets of a --json document read after the run ended (it must be whole)."""
    import json

    return list(json.loads(data)["sockets"])


def _follow_all(argv: list[str], steps: list[str]) -> tuple[list[bytes], bytes, bytes, int]:
    """follow() for sockscope, keeping what it writes after SIGTERM too."""
    with populated("close") as (ns, holder):
        proc = subprocess.Popen(
            [*ns.enter(), *netns.sockscope_cmd(), *argv],
            env=netns.tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(1.0)
            chunks = []
            for step in steps:
                holder.say(step)
                chunks.append(read_available(proc))
            proc.send_signal(signal.SIGTERM)
            rest, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return chunks, rest, err, proc.returncode
