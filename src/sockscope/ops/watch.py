"""``--watch`` / ``sockscope.watch()``: what changes between snapshots of the socket tables.

Every ``interval`` seconds the selected inet tables (TCP, UDP, MPTCP, RAW) are dumped
over sock_diag and compared with the previous snapshot, socket by socket, keyed by
(network namespace, socket cookie); so are the selected UNIX, PACKET and NETLINK tables
(:class:`Others`: their records as a listing reads them, keyed by the cookie of their
diag message, or by the inode for a ``/proc`` row, which has none). In between, the
kernel's destruction events (the multicast groups of ``ss -E``,
:mod:`sockscope.ops.follow`) are read as they come, so a connection that opens and
closes between two snapshots is still reported, with the counters the kernel sent when
it destroyed it. The kernel has those events for inet sockets only (its
``sock_diag_destroy_group`` knows TCP and UDP groups, no UNIX, PACKET or NETLINK one): a
socket of the other tables that closes is seen by the next snapshot, and one that opens
and closes between two snapshots is not seen at all. A :class:`Change` is one of:

* ``new``: a socket that was not in the previous snapshot;
* ``closed``: a socket that went away: from its destruction event (TCP and UDP, at once,
  with its last ``tcp_info`` counters) or because the next snapshot no longer has it
  (the only way for UNIX, PACKET and NETLINK sockets);
  ``lifetime`` is the time since the first snapshot that listed it (None if none did:
  then ``lifetime_max`` bounds it by the time since the last snapshot);
* ``state``: a socket whose state changed (``old_state`` -> ``socket.state_name``);
* ``rate`` (when tcp_info is asked for): a connection whose counters moved, with
  ``bytes_acked``, ``bytes_received`` and ``retrans`` per second since the last snapshot.

The first snapshot is the baseline and reports nothing. Cost: a snapshot compares the
raw messages of the dump with the last snapshot's (:class:`Table`; in C, in step: the
kernel lists the sockets in the same order every time); only sockets that are new, gone
or whose message changed where it matters become Python objects, and only those are
decoded. A TIME-WAIT socket that takes over the cookie of a
connection already reported closed, or that appears already in TIME-WAIT (the remnant of
a connection that closed, reported by its event), is followed silently.
"""

from __future__ import annotations

import errno as _errno
import os
import select
import socket
import struct
import time
from operator import itemgetter

from sockscope.accel import core as compiled_core
from sockscope.errors import FilterError, NetlinkError
from sockscope.kernel import abi, netlink
from sockscope.ops import follow
from sockscope.tables.inet.layout import BUF, PROTOCOL
from sockscope.tables.inet.plan import inet_request, legacy_request
from sockscope.tables.inet.record import InetSocket, decode_inet, with_diag_protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable
    from typing import TypeAlias

    from sockscope.ops.namespaces import Namespace, Visit
    from sockscope.query.filter import Filter
    from sockscope.query.selection import Selection
    from sockscope.query.tree import Node
    from sockscope.render.view import View
    from sockscope.tables.netlink import NetlinkSocket
    from sockscope.tables.packet import PacketSocket
    from sockscope.tables.unix import UnixSocket

    #: what a Table's finish() returns: (changed, gone)
    Diff: TypeAlias = tuple[list[tuple[bytes, bytes, bytes | None]], list[tuple[bytes, bytes]]]
    #: a record of the tables watched by snapshot difference only
    Other: TypeAlias = UnixSocket | PacketSocket | NetlinkSocket
    #: (table name, 0, cookie), or (table name, 1, inode) for a record without a cookie
    #: (see other_key)
    OtherKey: TypeAlias = tuple[str | int, ...]

_HDR = abi.NLMSGHDR
_HDR_SIZE = _HDR.size
_MIN = _HDR_SIZE + abi.INET_DIAG_MSG_SIZE
#: where the cookie and the state are in a reply message (nlmsghdr + inet_diag_msg)
_COOKIE = slice(_HDR_SIZE + 44, _HDR_SIZE + 52)
_STATE = _HDR_SIZE + 1
_TIME_WAIT = abi.SS_TIME_WAIT
#: how many cookies reported closed by a snapshot wait for their late destruction event
_GONE_MAX = 1 << 16
#: the inet tables a snapshot dumps: table bit -> protocol
TABLES = {
    abi.TCP_DB: abi.IPPROTO_TCP,
    abi.UDP_DB: abi.IPPROTO_UDP,
    abi.MPTCP_DB: abi.IPPROTO_MPTCP,
    abi.RAW_DB: abi.IPPROTO_RAW,
}
#: the other tables a snapshot lists (ss's order), as (name in tables.walk.ORDER, table bits)
OTHER_TABLES = (
    ("netlink", 1 << abi.NETLINK_DB),
    ("packet", abi.PACKET_DBM),
    ("unix", abi.UNIX_DBM),
)


class Change:
    """One change: ``kind`` (``new``, ``closed``, ``state``, ``rate``), ``time`` (epoch
    seconds), ``netns`` (the namespace's nsfs inode) and ``cookie`` (the key; 0 for a
    UNIX, PACKET or NETLINK record read from ``/proc``, keyed by its ``inode``), the
    ``socket`` record (inet, UNIX, PACKET or NETLINK; for ``closed``: as last listed,
    else from its destruction event), and per kind ``old_state``,
    ``lifetime``/``lifetime_max`` (seconds), ``counters`` (last ``bytes_acked``,
    ``bytes_received``, ``retrans``) and ``rates`` (the same per second); ``space``: the
    :class:`~sockscope.ops.namespaces.Namespace` when every namespace is watched, else
    None."""

    __slots__ = (
        "cookie",
        "counters",
        "kind",
        "lifetime",
        "lifetime_max",
        "netns",
        "old_state",
        "rates",
        "socket",
        "space",
        "time",
    )

    def __init__(self, kind: str, when: float, netns: int, rec: InetSocket | Other) -> None:
        self.kind = kind
        self.time = when
        self.netns = netns
        self.cookie = rec.cookie
        self.socket = rec
        self.old_state: str | None = None
        self.lifetime: float | None = None
        self.lifetime_max: float | None = None
        self.counters: dict[str, int] | None = None
        self.rates: dict[str, float] | None = None
        #: the namespace (``--all-netns``, ``watch(netns="all")``), else None
        self.space: Namespace | None = None

    def __repr__(self) -> str:
        s = self.socket
        return (
            f"<Change {self.kind} {s.netid} {s.state_name} {s.local_address}:{s.local_port}"
            f" {s.peer_address}:{s.peer_port} cookie={self.cookie}>"
        )

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        """What ``--watch --json-lines`` prints for the change (schema 1.1 ``event``)."""
        out: dict[str, object] = {
            "time": round(self.time, 6),
            "event": self.kind,
            "netns_inode": self.netns,
            "cookie": self.cookie,
        }
        if not self.cookie and self.socket.inode:  # a /proc row: keyed by its inode
            out["inode"] = self.socket.inode
        if self.space is not None:
            out["netns"] = self.space.to_dict()
        if self.old_state is not None:
            out["old_state"] = self.old_state
        if self.lifetime is not None:
            out["lifetime_s"] = round(self.lifetime, 6)
        if self.lifetime_max is not None:
            out["lifetime_max_s"] = round(self.lifetime_max, 6)
        if self.counters is not None:
            out["counters"] = dict(self.counters)
        if self.rates is not None:
            out["rates"] = {f"{k}_per_s": round(v, 3) for k, v in self.rates.items()}
        out["socket"] = self.socket.to_dict(view)
        return out


#: tcpi_total_retrans (offset 100), then tcpi_bytes_acked and tcpi_bytes_received (120, 128)
_INFO_COUNTERS = struct.Struct("=I16xQQ")
_INFO_AT = 100
_RTA = abi.RTATTR


def counters(rec: InetSocket) -> dict[str, int] | None:
    """``bytes_acked``, ``bytes_received``, ``retrans`` of a TCP record with tcp_info."""
    if rec[PROTOCOL] != abi.IPPROTO_TCP or rec[BUF] is None:
        return None
    span = rec.spans().get(abi.INET_DIAG_INFO)
    if span is None or span[1] - span[0] < _INFO_AT + _INFO_COUNTERS.size:
        return None
    retrans, acked, received = _INFO_COUNTERS.unpack_from(rec[BUF], span[0] + _INFO_AT)
    return {"bytes_acked": acked, "bytes_received": received, "retrans": retrans}


def netns_inode() -> int:
    """The nsfs inode of the caller's network namespace (0 when unreadable)."""
    try:
        return os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:
        try:
            return os.stat("/proc/self/ns/net").st_ino
        except OSError:
            return 0


def _decode(msg: bytes, protocol: int) -> InetSocket | None:
    for rec in decode_inet(((0, msg, 0, len(msg)),), protocol):
        return rec
    return None


def _rate(
    rec: InetSocket,
    when: float,
    netns: int,
    then: tuple[int, int, int],
    now: tuple[int, int, int],
    dt: float,
) -> Change:
    change = Change("rate", when, netns, rec)
    names = ("retrans", "bytes_acked", "bytes_received")
    change.counters = {"bytes_acked": now[1], "bytes_received": now[2], "retrans": now[0]}
    deltas = dict(zip(names, (b - a for a, b in zip(then, now, strict=True)), strict=True))
    change.rates = {k: deltas[k] / dt for k in ("bytes_acked", "bytes_received", "retrans")}
    return change


class Table:
    """One protocol's replies in a snapshot, compared with the last snapshot's table
    ``old`` (None for the baseline): the pure-Python reference of ``_core.DiagTable``,
    which must behave the same (tests/test_core.py fuzzes the two against each other).

    :meth:`feed` takes the dump's datagrams as they come; a reply is keyed by the 8 bytes
    at ``key_off`` (the socket cookie), one shorter than ``min_len`` is skipped, and a
    cookie listed twice (a socket that moved while the kernel walked) keeps its first
    place and its last message, as in a dict. :meth:`finish` then says what differs from
    ``old``: ``changed``, ``[(cookie, message, old's message or None)]`` in this dump's
    order, the new sockets and those whose bytes ``sig_start:sig_stop`` moved (every
    changed one when ``sig_start`` is -1: a reply whose timer or queue moved and nothing
    else is not reported without ``-i``); ``gone``, ``[(cookie, old's message)]`` in
    old's order. Between snapshots the table is a mapping cookie -> message (``get``,
    ``pop``: a destruction event takes its socket out, ``in``, ``len``, ``keys()``,
    ``values()``)."""

    def __init__(
        self,
        old: Table | None,
        key_off: int,
        min_len: int,
        sig_start: int = -1,
        sig_stop: int = -1,
    ) -> None:
        if key_off < 0 or min_len < key_off + 8:
            raise ValueError("Table: the key must lie within min_len")
        min_len = max(min_len, _HDR_SIZE)
        if sig_start >= 0 and not sig_start < sig_stop <= min_len:
            raise ValueError("Table: the significant bytes must lie within min_len")
        self.msgs: dict[bytes, bytes] = {}
        self._old = old
        self._key = itemgetter(slice(key_off, key_off + 8))
        self._min = min_len
        self._sig = slice(sig_start, sig_stop) if sig_start >= 0 else None
        self._finished = False
        #: reply size -> the Structs that split a datagram of replies of that size
        self._split: dict[int, tuple[struct.Struct, struct.Struct]] = {}

    def feed(self, buf: bytes, off: int = 0) -> int:
        """The replies of ``buf`` from ``off`` on; returns the offset of the first control
        message (type < 16: DONE, ERROR ...) there, or ``len(buf)`` if none (a malformed
        header ends the datagram)."""
        if self._finished:
            raise RuntimeError("Table: fed after finish()")
        msgs, end = self.msgs, len(buf)
        off = max(off, 0)
        if off == 0 and end >= _HDR_SIZE:
            length, mtype = _LEN_TYPE.unpack_from(buf, 0)
            if length >= self._min and not length & 3 and not end % length:
                split = self._split.get(length)
                if split is None:
                    split = self._split[length] = (
                        struct.Struct(f"=IH{length - 6}x"),
                        struct.Struct(f"{length}s"),
                    )
                heads, chunks = split
                if mtype >= netlink.NLMSG_MIN_TYPE and set(heads.iter_unpack(buf)) == {
                    (length, mtype)
                }:
                    # every message of the datagram is a reply of the same size
                    parts = list(map(_first, chunks.iter_unpack(buf)))
                    msgs.update(zip(map(self._key, parts), parts, strict=True))
                    return end
        while off + _HDR_SIZE <= end:
            length, mtype = _LEN_TYPE.unpack_from(buf, off)
            if length < _HDR_SIZE or length > end - off:
                break
            if mtype < netlink.NLMSG_MIN_TYPE:
                return off
            if length >= self._min:
                msg = buf[off : off + length]
                msgs[self._key(msg)] = msg
            off += (length + 3) & ~3
        return end

    def finish(self) -> tuple[list[tuple[bytes, bytes, bytes | None]], list[tuple[bytes, bytes]]]:
        """(changed, gone) against ``old``, which the table then lets go."""
        if self._finished:
            raise RuntimeError("Table: finish() called twice")
        old = self._old.msgs if self._old is not None else {}
        get, sig, msgs = old.get, self._sig, self.msgs
        differ = [(k, v, get(k)) for k, v in msgs.items() if get(k) != v]
        changed = [c for c in differ if c[2] is None or sig is None or c[1][sig] != c[2][sig]]
        added = sum(1 for c in differ if c[2] is None)
        # msgs holds what old still holds plus the new cookies: when those add up,
        # nothing went away, and old's cookies need not be looked up one by one
        gone = []
        if len(msgs) - added < len(old):
            gone = [(k, v) for k, v in old.items() if k not in msgs]
        self._old = None
        self._finished = True
        return changed, gone

    def get(self, cookie: bytes, default: bytes | None = None) -> bytes | None:
        return self.msgs.get(cookie, default)

    def pop(self, cookie: bytes, default: bytes | None = None) -> bytes | None:
        return self.msgs.pop(cookie, default)

    def __contains__(self, cookie: object) -> bool:
        return cookie in self.msgs

    def __len__(self) -> int:
        return len(self.msgs)

    def keys(self) -> list[bytes]:
        return list(self.msgs)

    def values(self) -> list[bytes]:
        return list(self.msgs.values())


_LEN_TYPE = struct.Struct("=IH")
_first = itemgetter(0)


class Snapshotter:
    """The dumps of one snapshot: a (family, protocol) request each, on one socket."""

    def __init__(self, sel: Selection, info: bool, bytecode: bytes | None) -> None:
        ext = 0
        if info:
            ext = (1 << (abi.INET_DIAG_INFO - 1)) | (1 << (abi.INET_DIAG_CONG - 1))
        self.info = info
        #: (protocol, request, the requests to send instead if the kernel refuses it)
        self.requests: list[tuple[int, bytes, list[bytes]]] = []
        both = (1 << abi.AF_INET) | (1 << abi.AF_INET6)
        for db, protocol in TABLES.items():
            if not sel.dbs & (1 << db):
                continue
            per_family = [
                inet_request(family, protocol, sel.states, ext, bytecode)
                for family in (abi.AF_INET, abi.AF_INET6)
                if sel.families & (1 << family)
            ]
            legacy = legacy_request(protocol, sel.states, ext, bytecode)
            if legacy is not None and sel.families & both == both:
                # TCPDIAG_GETSOCK dumps both families in one walk of the kernel's hash
                # tables (AF_UNSPEC): a SOCK_DIAG_BY_FAMILY request per family walks
                # them twice (every socket, then the bind table for bound-inactive
                # ones), about a quarter of the kernel's time at 70k TCP sockets
                self.requests.append((protocol, legacy, per_family))
            else:
                self.requests += [(protocol, req, []) for req in per_family]
        self.sock = netlink.open_diag()
        #: protocol -> when the kernel read its sockets in the last take (monotonic): the
        #: middle of the first request's send(), where the kernel fills the dump's first
        #: batch; a clock read before take() is late by as long as the process waited for
        #: a CPU, which on a loaded machine skews a rate by tens of percent
        self.sampled: dict[int, float] = {}

    def close(self) -> None:
        self.sock.close()

    def table(self, protocol: int, old: Table | None) -> Table:
        """An empty table of ``protocol`` to compare with ``old``: the compiled core's
        when built. Only the state byte of a reply matters when no counters are read
        (without ``-i``, and for any protocol but TCP)."""
        sig = (-1, -1) if self.info and protocol == abi.IPPROTO_TCP else (_STATE, _STATE + 1)
        core = compiled_core()
        if core is None:
            return Table(old, _COOKIE.start, _MIN, *sig)
        made: Table = core.DiagTable(old, _COOKIE.start, _MIN, *sig)
        return made

    def take(self, prev: dict[int, Table]) -> tuple[dict[int, Table], dict[int, Diff]]:
        """protocol -> its table, and protocol -> what changed since ``prev``'s table
        (:meth:`Table.finish`; a protocol of ``prev`` no longer dumped has every socket
        gone); a table the kernel refuses (no raw_diag ...) is dropped from later
        snapshots."""
        out: dict[int, Table] = {}
        self.sampled = {}
        keep: list[tuple[int, bytes, list[bytes]]] = []
        pending = list(self.requests)
        while pending:
            protocol, request, instead = pending.pop(0)
            table = out.get(protocol)
            if table is None:
                table = out[protocol] = self.table(protocol, prev.get(protocol))
            try:
                self._dump(request, table, protocol)
            except NetlinkError:
                # a refused request sent nothing before its error: its replacements
                # start from the same empty table
                pending[:0] = [(protocol, req, []) for req in instead]
                continue
            keep.append((protocol, request, instead))
        self.requests = keep
        diffs = {protocol: table.finish() for protocol, table in out.items()}
        for protocol, old in prev.items():
            if protocol not in out:
                diffs[protocol] = self.table(protocol, old).finish()
        return out, diffs

    def _dump(self, request: bytes, table: Table, protocol: int) -> None:
        sock = self.sock
        sending = time.monotonic()
        sock.send(request)
        if protocol not in self.sampled:
            self.sampled[protocol] = (sending + time.monotonic()) / 2
        feed = table.feed
        while True:
            buf = sock.recv(1 << 16)
            at = feed(buf)
            while at < len(buf):  # a control message: feed stops at one
                length, mtype = _LEN_TYPE.unpack_from(buf, at)
                if netlink.control(mtype, buf, at, length):
                    return
                at = feed(buf, at + ((length + 3) & ~3))


def other_key(name: str, rec: Other) -> OtherKey:
    """A record's key in its table: its diag message's cookie, else (a ``/proc`` row, which
    has none) its inode; a ``/proc/net/netlink`` row has no inode either (ss's scanf does
    not read that column): its kernel address (0 unless root), protocol and port id."""
    if rec.cookie:
        return (name, 0, rec.cookie)
    if rec.inode:
        return (name, 1, rec.inode)
    return (name, 2, getattr(rec, "sk", 0), getattr(rec, "protocol", 0), rec.lport)


class Others:
    """The snapshots of the selected UNIX, PACKET and NETLINK tables: their records as a
    listing reads them (the sock_diag dump, else the ``/proc`` file, with the filter
    applied), keyed by :func:`other_key`. Unlike the inet tables' messages they are
    decoded whole (these tables are far smaller, and a /proc row has no message); the
    kernel sends no destruction events for them, so a snapshot difference is the only
    way to see them close. ``visit``: the
    namespace to take them in (``--all-netns``), None for the calling thread's."""

    def __init__(self, sel: Selection, matcher: Callable[[object], bool] | None) -> None:
        from sockscope.options import Options
        from sockscope.tables.context import Context

        self.names = [name for name, bits in OTHER_TABLES if sel.dbs & bits]
        self.ctx = Context(sel, Options(), matcher)
        # one socket for every snapshot, made here (in the namespace watched), before
        # the baseline: a socket per dump would be a new NETLINK socket every time
        try:
            self.ctx.diag_sock = netlink.open_diag()
        except OSError:
            pass  # each dump tries again, and falls back to /proc as a listing does
        self.visit: Visit | None = None

    def close(self) -> None:
        if self.ctx.diag_sock is not None:
            self.ctx.diag_sock.close()
            self.ctx.diag_sock = None
        if self.visit is not None:
            self.visit.close()
            self.visit = None

    def take(self) -> dict[OtherKey, Other]:
        if self.visit is not None:
            return self.visit.call(self._take)
        return self._take()

    def _take(self) -> dict[OtherKey, Other]:
        from sockscope.tables import common

        out: dict[OtherKey, Other] = {}
        for name in self.names:
            for rec in common.records(name, self.ctx):
                out[other_key(name, rec)] = rec  # type: ignore[arg-type,assignment]
        return out


class Watcher:
    """The state of a watch: the last snapshot, when each socket was first listed, the
    cookies already reported closed, and the destruction-event socket."""

    def __init__(
        self,
        sel: Selection,
        info: bool = False,
        matcher: Callable[[object], bool] | None = None,
        bytecode: bytes | None = None,
        events: bool = True,
        others: bool = True,
    ) -> None:
        self.sel = sel
        self.info = info
        self.matcher = matcher
        self.netns = netns_inode()
        self.snap = Snapshotter(sel, info, bytecode)
        #: the UNIX, PACKET and NETLINK tables selected (None: none, or ``others`` False)
        self.others: Others | None = None
        if others and any(sel.dbs & bits for _name, bits in OTHER_TABLES):
            self.others = Others(sel, matcher)
        #: their last snapshot, and when each of its sockets was first listed (monotonic;
        #: None: in the baseline)
        self.other_prev: dict[OtherKey, Other] = {}
        self.other_first: dict[OtherKey, float | None] = {}
        #: protocol -> the last snapshot's Table
        self.prev: dict[int, Table] = {}
        #: message size -> where its INET_DIAG_INFO payload starts (-1: none)
        self._info_at: dict[int, int] = {}
        self.prev_time = 0.0
        self.prev_clock = 0.0
        #: the previous take's Snapshotter.sampled
        self.prev_sampled: dict[int, float] = {}
        #: cookie -> monotonic time of the first snapshot that listed it (None: baseline)
        self.first: dict[bytes, float | None] = {}
        #: cookies followed silently: reported closed by their event, whose TIME-WAIT
        #: remnant may still be listed (None), or a remnant listed before its event came
        #: (the monotonic time of the snapshot before the one that first listed it)
        self.ghosts: dict[bytes, float | None] = {}
        #: cookies the snapshot difference reported closed, oldest first: their
        #: destruction event comes later (the kernel sends it from a work queue once the
        #: socket is freed, after it left the hash tables), and is not a second close
        self.gone: dict[bytes, None] = {}
        self.events: socket.socket | None = None
        groups = follow.groups_for(sel.families, sel.dbs) if events else 0
        if groups:
            try:
                self.events = follow.subscribe(groups)
                self.events.setblocking(False)
            except NetlinkError:
                self.events = None  # without CAP_NET_ADMIN: snapshots only

    def close(self) -> None:
        self.snap.close()
        if self.others is not None:
            self.others.close()
        if self.events is not None:
            self.events.close()

    # -- snapshots ---------------------------------------------------------------------
    def baseline(self) -> None:
        self.prev_clock = time.monotonic()
        self.prev_time = time.time()
        self.prev, _diffs = self.snap.take({})
        self.prev_sampled = self.snap.sampled
        for table in self.prev.values():
            self.first.update(dict.fromkeys(table.keys()))
        if self.others is not None:
            self.other_prev = self.others.take()
            self.other_first = dict.fromkeys(self.other_prev)

    def step(self) -> list[Change]:
        """Take a snapshot and return what changed since the previous one."""
        clock = time.monotonic()
        when = time.time()
        cur, diffs = self.snap.take(self.prev)
        sampled = self.snap.sampled
        changes: list[Change] = []
        for protocol, (changed, gone) in diffs.items():
            # the rates' time: between the kernel's two readings of the table
            at, then = sampled.get(protocol), self.prev_sampled.get(protocol)
            dt = at - then if at is not None and then is not None else clock - self.prev_clock
            # and the events' time stamp: that reading's, on the wall clock
            stamp = when + (at - clock) if at is not None else when
            self._diff(protocol, changed, gone, stamp, clock, dt, changes)
        # a remnant not listed now will not be: forget it
        self.ghosts = {c: v for c, v in self.ghosts.items() if any(c in m for m in cur.values())}
        if len(self.gone) > _GONE_MAX:  # bounded: the oldest late events are long due
            for cookie in list(self.gone)[: len(self.gone) - _GONE_MAX]:
                del self.gone[cookie]
        self.prev = cur
        self.prev_clock = clock
        self.prev_sampled = sampled
        self.prev_time = when
        if self.others is not None:
            self._other_step(changes)
        return changes

    def _other_step(self, out: list[Change]) -> None:
        """The UNIX, PACKET and NETLINK tables' changes: closed (gone from the snapshot),
        new, and state (the State column moved: a stream socket that listens or
        connects); time-stamped when their snapshot was taken."""
        assert self.others is not None
        clock = time.monotonic()
        when = time.time()
        cur = self.others.take()
        old, first = self.other_prev, self.other_first
        for key, rec in old.items():
            if key in cur:
                continue
            started = first.pop(key, None)
            change = Change("closed", when, self.netns, rec)
            if started is not None:
                change.lifetime = clock - started
            out.append(change)
        for key, rec in cur.items():
            before = old.get(key)
            if before is None:
                first[key] = clock
                out.append(Change("new", when, self.netns, rec))
            elif before.state != rec.state:
                change = Change("state", when, self.netns, rec)
                change.old_state = before.state_name
                out.append(change)
        self.other_prev = cur

    def _diff(
        self,
        protocol: int,
        changed: list[tuple[bytes, bytes, bytes | None]],
        gone: list[tuple[bytes, bytes]],
        when: float,
        clock: float,
        dt: float,
        out: list[Change],
    ) -> None:
        """The changes of one protocol's :meth:`Table.finish`: ``gone``, the sockets of
        the last snapshot not listed now (one whose destruction event came is no longer
        in it), and ``changed``, the new ones and those whose message changed (with
        ``-i``, anywhere; else in its state)."""
        ghosts = self.ghosts
        first = self.first
        for cookie, last in gone:
            started = first.pop(cookie, None)
            if cookie in ghosts:
                del ghosts[cookie]
                continue
            if self.events is not None:
                self.gone[cookie] = None
            rec = self._match(last, protocol)
            if rec is None:
                continue
            change = Change("closed", when, self.netns, rec)
            if started is not None:
                change.lifetime = clock - started
            change.counters = counters(rec) if self.info else None
            out.append(change)
        for cookie, msg, before in changed:
            if cookie in ghosts:
                continue
            if before is None:
                if msg[_STATE] == _TIME_WAIT:
                    # the remnant of a connection that closed (reported by its event,
                    # which may still be on its way: then it was never listed open)
                    ghosts[cookie] = self.prev_clock
                    continue
                first[cookie] = clock
                rec = self._match(msg, protocol)
                if rec is not None:
                    out.append(Change("new", when, self.netns, rec))
                continue
            state_changed = before[_STATE] != msg[_STATE]
            moved = None
            if self.info and protocol == abi.IPPROTO_TCP and dt > 0:
                then, now = self._raw_counts(before), self._raw_counts(msg)
                if then is not None and now is not None and then != now:
                    moved = (then, now)
            if not state_changed and moved is None:
                continue  # a timer or a queue moved: nothing to report
            rec = self._match(msg, protocol)
            if rec is None:
                continue
            if state_changed:
                change = Change("state", when, self.netns, rec)
                change.old_state = abi.STATE_NAMES[before[_STATE]]
                out.append(change)
            if moved is not None:
                out.append(_rate(rec, when, self.netns, moved[0], moved[1], dt))

    def _raw_counts(self, msg: bytes) -> tuple[int, int, int] | None:
        """(retrans, bytes_acked, bytes_received) read from a TCP reply's bytes: the
        INET_DIAG_INFO attribute's place is found once per message size, then checked."""
        size = len(msg)
        at = self._info_at.get(size)
        if at is None or at < 0 or _RTA.unpack_from(msg, at - 4)[1] != abi.INET_DIAG_INFO:
            span = netlink.attrs(msg, _MIN, size).get(abi.INET_DIAG_INFO)
            fits = span is not None and span[1] - span[0] >= _INFO_AT + _INFO_COUNTERS.size
            at = span[0] if fits else -1  # type: ignore[index]
            self._info_at[size] = at
            if at < 0:
                return None
        found: tuple[int, int, int] = _INFO_COUNTERS.unpack_from(msg, at + _INFO_AT)
        return found

    def _match(self, msg: bytes, protocol: int) -> InetSocket | None:
        rec = _decode(msg, protocol)
        if rec is None or (self.matcher is not None and not self.matcher(rec)):
            return None
        return rec

    # -- destruction events ------------------------------------------------------------
    def wait(self, timeout: float) -> list[Change]:
        """Read destruction events for up to ``timeout`` seconds (returns at the first
        batch of changes, or when the time is up)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            if self.events is None:
                time.sleep(left)
                return []
            ready, _w, _x = select.select([self.events], [], [], left)
            if ready:
                changes = self.destroyed()
                if changes:
                    return changes

    def destroyed(self) -> list[Change]:
        """The destruction events waiting on the socket, as ``closed`` changes."""
        out: list[Change] = []
        sock = self.events
        if sock is None:
            return out
        while True:
            try:
                buf = sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return out
            except OSError as e:
                if e.errno == _errno.ENOBUFS:
                    continue  # overrun: the next snapshot still sees what went away
                raise
            self._events(buf, out)

    def _events(self, buf: bytes, out: list[Change]) -> None:
        off, end = 0, len(buf)
        unpack = _HDR.unpack_from
        while off + _HDR_SIZE <= end:
            length, mtype, _fl, seq, pid = unpack(buf, off)
            if length < _HDR_SIZE or off + length > end:
                break
            if seq == 0 and pid == 0 and mtype >= netlink.NLMSG_MIN_TYPE and length >= _MIN:
                self._event(buf[off : off + length], out)
            off += (length + 3) & ~3

    def _event(self, msg: bytes, out: list[Change]) -> None:
        recs = list(decode_inet(((0, msg, 0, len(msg)),), follow.IPPROTO_MAX, self.sel.families))
        if not recs:
            return
        rec = with_diag_protocol(recs[0])
        protocol = rec[PROTOCOL]
        cookie = msg[_COOKIE]
        clock = time.monotonic()
        when = time.time()
        if cookie in self.gone:
            del self.gone[cookie]  # the snapshot difference reported it already
            return
        known = self.prev.get(protocol)
        last = known.pop(cookie) if known is not None else None
        remnant = self.ghosts.get(cookie)
        self.ghosts[cookie] = None
        if remnant is not None:
            # listed only as its TIME-WAIT remnant: never reported open
            last = None
        else:
            remnant = self.prev_clock
        if last is None and self.matcher is not None and not self.matcher(rec):
            return
        if last is not None:
            seen = _decode(last, protocol)
            if seen is None or (self.matcher is not None and not self.matcher(seen)):
                return
        change = Change("closed", when, self.netns, rec if last is None else seen)  # type: ignore[arg-type]
        started = self.first.pop(cookie, None)
        if last is None:
            change.lifetime_max = max(clock - remnant, 0.0)
        elif started is not None:
            change.lifetime = clock - started
        change.counters = counters(rec)
        out.append(change)


class Watchers:
    """A :class:`Watcher` per namespace, each made inside its namespace (its dump and event
    sockets stay bound there), used from the caller's namespace: snapshots one after the
    other, one ``select`` over every event socket. Keyed by (namespace inode, cookie)."""

    def __init__(self, watchers: list[tuple[Namespace, Watcher]]) -> None:
        self.watchers = watchers
        self._by_fd = {w.events.fileno(): (ns, w) for ns, w in watchers if w.events is not None}

    @classmethod
    def each(
        cls,
        spaces: Iterable[Namespace],
        make: Callable[[], Watcher],
        on_skip: Callable[[Namespace, Exception], None] | None = None,
    ) -> Watchers:
        """``make()`` run inside every namespace of ``spaces``; one that has gone or cannot
        be entered goes to ``on_skip``."""
        from sockscope.ops.namespaces import NamespaceDenied, NamespaceGone, Visit

        made: list[tuple[Namespace, Watcher]] = []
        try:
            for ns in spaces:
                try:
                    visit = Visit(ns)
                except (NamespaceGone, NamespaceDenied) as e:
                    if on_skip is not None:
                        on_skip(ns, e)
                    continue
                kept: Visit | None = visit
                try:
                    made.append((ns, visit.call(make)))
                    others = made[-1][1].others
                    if others is not None:
                        # its tables are read from inside: their /proc fallback
                        # reads the reading thread's namespace
                        others.visit, kept = visit, None
                except (NamespaceDenied, FilterError) as e:
                    if on_skip is not None:
                        on_skip(ns, e)
                finally:
                    if kept is not None:
                        kept.close()
        except BaseException:
            for _ns, w in made:
                w.close()
            raise
        return cls(made)

    def close(self) -> None:
        for _ns, w in self.watchers:
            w.close()

    @staticmethod
    def _mark(ns: Namespace, changes: list[Change]) -> list[Change]:
        for change in changes:
            change.space = ns
        return changes

    def baseline(self) -> None:
        for _ns, w in self.watchers:
            w.baseline()

    def step(self) -> list[Change]:
        """Every namespace's snapshot; the destruction events waiting for a namespace are
        read just before its dump (the dumps of all namespaces take a while, and an
        event read after the dump that no longer lists its socket would be a change
        reported twice)."""
        out: list[Change] = []
        for ns, w in self.watchers:
            out += self._mark(ns, w.destroyed())
            out += self._mark(ns, w.step())
        return out

    def destroyed(self) -> list[Change]:
        out: list[Change] = []
        for ns, w in self.watchers:
            out += self._mark(ns, w.destroyed())
        return out

    def wait(self, timeout: float) -> list[Change]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            if not self._by_fd:
                time.sleep(left)
                return []
            ready, _w, _x = select.select(list(self._by_fd), [], [], left)
            out: list[Change] = []
            for fd in ready:
                ns, w = self._by_fd[fd]
                out += self._mark(ns, w.destroyed())
            if out:
                return out


def changes(
    sel: Selection,
    interval: float,
    info: bool = False,
    matcher: Callable[[object], bool] | None = None,
    bytecode: bytes | None = None,
    events: bool = True,
    spaces: Iterable[Namespace] | None = None,
    on_skip: Callable[[Namespace, Exception], None] | None = None,
    flt: Filter | None = None,
) -> Generator[Change, None, None]:
    """Every change, forever: the baseline snapshot, then destruction events as they come
    and a snapshot's changes every ``interval`` seconds. With ``spaces``, every one of
    those namespaces at once (each change's ``space`` says which; ``on_skip`` gets those
    that cannot be entered, and those where a ``dev NAME`` of ``flt`` names no device);
    namespaces created later are not watched. ``flt``, when given, is the filter that
    ``matcher`` and ``bytecode`` come from: with ``spaces``, its ``dev NAME`` conditions
    are resolved again inside each namespace, as ss run there would resolve them."""
    watcher: Watcher | Watchers
    if spaces is None:
        watcher = Watcher(sel, info, matcher, bytecode, events)
    else:
        watcher = Watchers.each(
            spaces, per_namespace(sel, info, matcher, bytecode, events, flt), on_skip
        )
    try:
        watcher.baseline()
        next_at = time.monotonic() + interval
        while True:
            left = next_at - time.monotonic()
            if left > 0:
                yield from watcher.wait(left)
                continue
            yield from watcher.destroyed()
            yield from watcher.step()
            next_at += interval
            if next_at < time.monotonic():
                next_at = time.monotonic() + interval  # a slow snapshot: no catch-up burst
    finally:
        watcher.close()


def per_namespace(
    sel: Selection,
    info: bool,
    matcher: Callable[[object], bool] | None,
    bytecode: bytes | None,
    events: bool,
    flt: Filter | None,
    others: bool = True,
) -> Callable[[], Watcher]:
    """What :meth:`Watchers.each` runs inside each namespace: a Watcher whose filter has
    its ``dev NAME`` conditions resolved there (the same name is another ifindex, or no
    device, in another namespace: :class:`~sockscope.errors.FilterError` then);
    ``others``: whether it watches the UNIX, PACKET and NETLINK tables selected too."""

    def make() -> Watcher:
        here = dev_resolved(flt) if flt is not None else None
        if here is None or here is flt:
            return Watcher(sel, info, matcher, bytecode, events, others)
        return Watcher(sel, info, here.matches, here.bytecode(), events, others)

    return make


def dev_resolved(flt: Filter) -> Filter:
    """``flt`` with every ``dev NAME`` resolved again (parse_devcond) in the calling
    thread's network namespace; ``flt`` itself when it has none. Iterative: a filter can
    nest thousands deep."""
    from sockscope.query.filter import Filter
    from sockscope.query.hostcond import parse_devcond
    from sockscope.query.tree import Binary, DevCond, Not

    done: dict[int, Node] = {}
    todo: list[tuple[Node, bool]] = [(flt.root, False)]
    while todo:
        node, ready = todo.pop()
        if isinstance(node, Binary):
            if not ready:
                todo += [(node, True), (node.right, False), (node.left, False)]
                continue
            left, right = done[id(node.left)], done[id(node.right)]
            same = left is node.left and right is node.right
            done[id(node)] = node if same else type(node)(left, right)
        elif isinstance(node, Not):
            if not ready:
                todo += [(node, True), (node.child, False)]
                continue
            child = done[id(node.child)]
            done[id(node)] = node if child is node.child else Not(child)
        elif isinstance(node, DevCond):
            index = parse_devcond(node.text)
            done[id(node)] = node if index == node.index else DevCond(index, node.text)
        else:
            done[id(node)] = node
    root = done[id(flt.root)]
    if root is flt.root:
        return flt
    here = Filter(root)
    here.warnings = flt.warnings
    return here
