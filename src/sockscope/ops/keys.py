"""The keys of ``--count-by`` and ``--sort``: what each reads from a socket record.

One table, :data:`KEYS`: a key's name -> a maker that returns its :class:`Key`, three
functions over records:

* ``raw(rec)``: a cheap hashable value read from the record (for inet records, mostly a
  tuple item: the raw address bytes, the port in network order). Grouping and the
  first sort pass use it, so 100,000 sockets cost a dict lookup each, not a text
  conversion;
* ``value(raw)``: the data value shown (``str`` or ``int``; None when the socket has
  none, e.g. no process holds it): computed once per group, or per row when sorting;
* ``order(value)``: how values sort: numbers as numbers, IP addresses by family then
  numerically (``10.0.0.9`` before ``10.0.0.10``), other text as text, missing last.

Adding a key is one row. ``netns`` and ``container`` read the record's ``netns``
attribute (the namespace a record was listed in, when the listing went through
namespaces); a record without it has no value for them.

Keys that read ``struct tcp_info`` (``rtt``, ``cwnd``, ``bytes_acked``,
``bytes_received``, ``retrans``) have values only when the kernel sent it (``-i``,
``Query(info=True)``).
"""

from __future__ import annotations

import socket
import struct
from operator import itemgetter

from sockscope.errors import ArgumentError
from sockscope.kernel import abi
from sockscope.kernel.abi import PROTO_NAMES, STATE_NAMES, SWAP16
from sockscope.ops.procmap import PendingMap
from sockscope.tables.inet.layout import (
    BUF,
    COOKIE_HI,
    COOKIE_LO,
    DPORT,
    DST,
    FAMILY,
    INODE,
    PROTOCOL,
    RQUEUE,
    SPORT,
    SRC,
    STATE,
    UID,
    WQUEUE,
)
from sockscope.tables.inet.record import InetSocket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    from sockscope.ops.procmap import ProcessMap

    Value = str | int | None

_INET = InetSocket
#: the most entries a per-key memo keeps
_MEMO_MAX = 4096
_FAMILY_WORDS = {abi.AF_INET: "inet", abi.AF_INET6: "inet6"}
#: the data view's family of the other record classes
_CLASS_FAMILY = {
    "UnixSocket": "unix",
    "PacketSocket": "packet",
    "NetlinkSocket": "netlink",
    "VsockSocket": "vsock",
    "TipcSocket": "tipc",
    "XdpSocket": "xdp",
}


#: offsets of the ``struct tcp_info`` fields the keys read (include/uapi/linux/tcp.h:
#: 8 bytes, then 24 u32 from tcpi_rto, then u64 tcpi_pacing_rate ...)
TCP_INFO_OFFSETS: dict[str, tuple[int, struct.Struct]] = {
    "tcpi_rtt": (68, struct.Struct("=I")),
    "tcpi_snd_cwnd": (80, struct.Struct("=I")),
    "tcpi_total_retrans": (100, struct.Struct("=I")),
    "tcpi_bytes_acked": (120, struct.Struct("=Q")),
    "tcpi_bytes_received": (128, struct.Struct("=Q")),
}


class Lookups:
    """What some keys look up outside the record, built once per run: the process map
    (``process``, ``pid``) and the cgroup paths (``cgroup``)."""

    def __init__(
        self,
        processes: ProcessMap | PendingMap | None = None,
        cgroup_path: Callable[[int], str] | None = None,
    ) -> None:
        #: a map still being built (-p scans /proc during the dump) is waited for here
        self.processes = processes.result() if isinstance(processes, PendingMap) else processes
        self.cgroup_path = cgroup_path
        #: first entry text of a socket's owners -> (command, pid)
        self._owner_memo: dict[str, tuple[str, int]] = {}

    def first_owner(self, inode: int) -> tuple[str, int] | None:
        """The first process ``ss -p`` shows for the socket: (command, pid), or None."""
        if self.processes is None or not inode:
            return None
        have = self.processes.entries.get(inode)
        if have is None:
            return None
        text = have if type(have) is str else have[-1]  # ss shows the newest first
        # keyed without the fd, so the memo grows with the processes, not the sockets
        head = text.rpartition(",fd=")[0]
        found = self._owner_memo.get(head)
        if found is None:
            name, _sep, rest = head.rpartition('",pid=')
            digits = rest.split(",", 1)[0]
            found = self._owner_memo[head] = (name[2:], int(digits))
        return found


class Key:
    """One key: its name (as the data shows it), raw reader per record kind, value and
    sort order (see the module docstring)."""

    __slots__ = ("inet", "name", "order", "other", "value")

    def __init__(
        self,
        name: str,
        inet: Callable[[InetSocket], Hashable],
        other: Callable[[object], Hashable],
        value: Callable[[Hashable], Value] | None = None,
        order: Callable[[Value], tuple[int, int, str]] | None = None,
    ) -> None:
        self.name = name
        self.inet = inet
        self.other = other
        self.value: Callable[[Hashable], Value] = value or _same
        self.order = order or order_plain

    def raw(self, rec: object) -> Hashable:
        return self.inet(rec) if type(rec) is _INET else self.other(rec)


def _same(raw: Hashable) -> Value:
    return raw if raw is None or isinstance(raw, (str, int)) else str(raw)


def order_plain(value: Value) -> tuple[int, int, str]:
    """Numbers, then text, then missing values."""
    if value is None:
        return (3, 0, "")
    if isinstance(value, int):
        return (0, value, "")
    return (2, 0, value)


def order_address(value: Value) -> tuple[int, int, str]:
    """IPv4 addresses, then IPv6, numerically; other text (paths, names) after them;
    ``a.b.c.d/N`` prefixes sort by their address, then their length."""
    if isinstance(value, str):
        text, _sep, length = value.partition("/")
        for rank, family in ((0, socket.AF_INET), (1, socket.AF_INET6)):
            try:
                number = int.from_bytes(socket.inet_pton(family, text), "big")
            except OSError:
                continue
            return (rank, (number << 8) | (int(length) if length.isdigit() else 0), "")
    return order_plain(value) if not isinstance(value, str) else (2, 0, value)


def _attr(name: str) -> Callable[[object], Hashable]:
    def get(rec: object) -> Hashable:
        value = getattr(rec, name, None)
        return value if value is None or isinstance(value, (str, int)) else str(value)

    return get


_ANY6 = bytes(16)


def _inet_end(index: int) -> Callable[[InetSocket], Hashable]:
    """An inet record's address as the raw key: (family, bytes), or ``"*"`` where ss
    prints ``*`` (inet_addr_print: the IPv6 wildcard of a socket that is not v6only, i.e.
    a dual-stack listener), so the groups are the ones ``awk`` sees in ss's column."""

    def end(rec: InetSocket) -> Hashable:
        family, data = rec[FAMILY], rec[index]
        if family == abi.AF_INET6 and data[:16] == _ANY6:
            v6only = rec[STATE] in (7, 10) and rec[BUF] is not None and bool(rec.v6only)
            if not v6only:
                return "*"
        return (family, data)

    return end


def _ntop(raw: Hashable) -> Value:
    if isinstance(raw, tuple):
        family, data = raw
        try:
            return socket.inet_ntop(family, data[:4] if family == abi.AF_INET else data)
        except (OSError, ValueError):
            return None
    return _same(raw)


# --- the makers: (argument after "/", lookups) -> Key ------------------------------------
def _no_arg(name: str, arg: str | None) -> None:
    if arg is not None:
        raise ArgumentError(f'sockscope: key "{name}" takes no "/{arg}"')


def _k_state(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("state", arg)
    return Key("state", itemgetter(STATE), _attr("state_name"), _state_name)


def _state_name(raw: Hashable) -> Value:
    if isinstance(raw, int):
        return STATE_NAMES[raw] if 0 <= raw < len(STATE_NAMES) else None
    return _same(raw)


def _k_netid(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("netid", arg)
    return Key("netid", _inet_netid, _attr("netid"))


def _inet_netid(rec: InetSocket) -> Hashable:
    return PROTO_NAMES.get(rec[PROTOCOL], "???")


def _k_family(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("family", arg)
    return Key(
        "family",
        lambda rec: _FAMILY_WORDS.get(rec[FAMILY], str(rec[FAMILY])),
        lambda rec: _CLASS_FAMILY.get(type(rec).__name__),
    )


def _k_local_address(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("local_address", arg)
    return Key("local_address", _inet_end(SRC), _attr("local_address"), _ntop, order_address)


def _k_peer_address(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("peer_address", arg)
    return Key("peer_address", _inet_end(DST), _attr("peer_address"), _ntop, order_address)


def _k_local_port(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("local_port", arg)
    return Key("local_port", lambda rec: SWAP16[rec[SPORT]], _attr("local_port"))


def _k_peer_port(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("peer_port", arg)
    return Key("peer_port", lambda rec: SWAP16[rec[DPORT]], _attr("peer_port"))


def _k_peer_prefix(arg: str | None, _lk: Lookups) -> Key:
    """``peer_prefix/N`` (N for both families, at most 32 for IPv4) or ``peer_prefix/N/M``
    (N bits of IPv4 addresses, M of IPv6). v4-mapped IPv6 addresses count as IPv4."""
    lengths = (arg or "").split("/")
    if not arg or len(lengths) > 2 or not all(x.isdigit() for x in lengths):
        raise ArgumentError('sockscope: "peer_prefix" needs a length: peer_prefix/N[/M]')
    n4 = min(int(lengths[0]), 32)
    n6 = int(lengths[-1])
    if n6 > 128 or int(lengths[0]) > (32 if len(lengths) == 2 else 128):
        raise ArgumentError(f'sockscope: bad prefix length in "peer_prefix/{arg}"')
    memo: dict[tuple[int, bytes], str] = {}

    wildcard = _inet_end(DST)

    def prefix(rec: InetSocket) -> Hashable:
        if rec[FAMILY] == abi.AF_INET6 and wildcard(rec) == "*":
            return "*"  # what ss prints for the peer of a dual-stack listener
        raw = (rec[FAMILY], rec[DST])
        found = memo.get(raw)
        if found is None:
            if len(memo) >= _MEMO_MAX:
                memo.clear()  # bounded: many distinct peers cost time, not memory
            found = memo[raw] = _prefix_text(raw[0], raw[1], n4, n6)
        return found

    return Key("peer_prefix", prefix, _attr("peer_address"), None, order_address)


def _prefix_text(family: int, data: bytes, n4: int, n6: int) -> str:
    if family == abi.AF_INET6 and data[:12] == b"\0" * 10 + b"\xff\xff":
        family, data = abi.AF_INET, data[12:16]
    if family == abi.AF_INET:
        number = int.from_bytes(data[:4], "big") & ((0xFFFFFFFF << (32 - n4)) & 0xFFFFFFFF)
        return f"{socket.inet_ntop(socket.AF_INET, number.to_bytes(4, 'big'))}/{n4}"
    if family == abi.AF_INET6:
        mask = ((1 << 128) - 1) ^ ((1 << (128 - n6)) - 1)
        number = int.from_bytes(data[:16], "big") & mask
        return f"{socket.inet_ntop(socket.AF_INET6, number.to_bytes(16, 'big'))}/{n6}"
    return "?"


def _k_process(arg: str | None, lk: Lookups) -> Key:
    _no_arg("process", arg)

    def command(rec: object) -> Hashable:
        found = lk.first_owner(rec[INODE] if type(rec) is _INET else getattr(rec, "inode", 0))
        return None if found is None else found[0]

    return Key("process", command, command)


def _k_pid(arg: str | None, lk: Lookups) -> Key:
    _no_arg("pid", arg)

    def pid(rec: object) -> Hashable:
        found = lk.first_owner(rec[INODE] if type(rec) is _INET else getattr(rec, "inode", 0))
        return None if found is None else found[1]

    return Key("pid", pid, pid)


def _k_uid(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("uid", arg)
    return Key("uid", itemgetter(UID), _attr("uid"))


def _k_cgroup(arg: str | None, lk: Lookups) -> Key:
    _no_arg("cgroup", arg)

    def path(raw: Hashable) -> Value:
        if not isinstance(raw, int) or not raw:
            return None
        return lk.cgroup_path(raw) if lk.cgroup_path is not None else str(raw)

    def cgroup_id(rec: object) -> Hashable:
        return getattr(rec, "cgroup_id", None)

    return Key("cgroup", cgroup_id, cgroup_id, path)


def _netns_of(rec: object) -> object:
    return rec.__dict__.get("_netns") if type(rec) is _INET else getattr(rec, "netns", None)


def _k_netns(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("netns", arg)

    def netns(rec: object) -> Hashable:
        space = _netns_of(rec)
        if space is None:
            return None
        name = getattr(space, "name", None)
        return name if name else f"net:[{getattr(space, 'inode', '?')}]"

    return Key("netns", netns, netns)


def _k_container(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("container", arg)

    def container(rec: object) -> Hashable:
        found = getattr(_netns_of(rec), "container", None)
        if found is None:
            return None
        return f"{getattr(found, 'runtime', '?')}:{getattr(found, 'id', '?')}"

    return Key("container", container, container)


def _plain(name: str, index: int) -> Callable[[str | None, Lookups], Key]:
    def make(arg: str | None, _lk: Lookups) -> Key:
        _no_arg(name, arg)
        return Key(name, itemgetter(index), _attr(name))

    return make


def _k_cookie(arg: str | None, _lk: Lookups) -> Key:
    _no_arg("cookie", arg)
    return Key("cookie", lambda r: (r[COOKIE_HI] << 32) | r[COOKIE_LO], _attr("cookie"))


def info_reader(field: str) -> Callable[[InetSocket], int | None]:
    """A reader of one ``struct tcp_info`` field of a TCP record (None without -i)."""
    offset, layout = TCP_INFO_OFFSETS[field]
    end = offset + layout.size
    unpack = layout.unpack_from
    tcp = abi.IPPROTO_TCP
    kind = abi.INET_DIAG_INFO

    def read(rec: InetSocket) -> int | None:
        if rec[PROTOCOL] != tcp or rec[BUF] is None:
            return None
        span = rec.spans().get(kind)
        if span is None or span[1] - span[0] < end:
            return None
        value: int = unpack(rec[BUF], span[0] + offset)[0]
        return value

    return read


def _info(name: str, field: str) -> Callable[[str | None, Lookups], Key]:
    def make(arg: str | None, _lk: Lookups) -> Key:
        _no_arg(name, arg)
        return Key(name, info_reader(field), lambda _rec: None)

    return make


#: key name -> maker; ``name/ARG`` passes ARG to the maker
KEYS: dict[str, Callable[[str | None, Lookups], Key]] = {
    "state": _k_state,
    "netid": _k_netid,
    "family": _k_family,
    "local_address": _k_local_address,
    "local_port": _k_local_port,
    "peer_address": _k_peer_address,
    "peer_prefix": _k_peer_prefix,
    "peer_port": _k_peer_port,
    "process": _k_process,
    "pid": _k_pid,
    "uid": _k_uid,
    "netns": _k_netns,
    "cgroup": _k_cgroup,
    "container": _k_container,
    "recv_q": _plain("recv_q", RQUEUE),
    "send_q": _plain("send_q", WQUEUE),
    "inode": _plain("inode", INODE),
    "cookie": _k_cookie,
    "rtt": _info("rtt", "tcpi_rtt"),
    "cwnd": _info("cwnd", "tcpi_snd_cwnd"),
    "bytes_acked": _info("bytes_acked", "tcpi_bytes_acked"),
    "bytes_received": _info("bytes_received", "tcpi_bytes_received"),
    "retrans": _info("retrans", "tcpi_total_retrans"),
}

#: keys that need the process map
PROCESS_KEYS = frozenset(("process", "pid"))


def split_words(text: str) -> list[str]:
    """``KEY[,KEY...]`` as the options take it (empty words are an error)."""
    words = text.split(",")
    if not all(words):
        raise ArgumentError(f'sockscope: empty key in "{text}"')
    return words


def make_keys(words: Sequence[str], lookups: Lookups) -> list[Key]:
    """The keys named by ``words`` (``name`` or ``name/ARG``); ArgumentError otherwise."""
    keys = []
    for word in words:
        name, sep, arg = word.partition("/")
        maker = KEYS.get(name)
        if maker is None:
            known = ", ".join(KEYS)
            raise ArgumentError(f'sockscope: unknown key "{word}" (keys: {known})')
        keys.append(maker(arg if sep else None, lookups))
    return keys


def needs_processes(words: Sequence[str]) -> bool:
    return any(w.partition("/")[0] in PROCESS_KEYS for w in words)


def lookups(
    words: Sequence[str],
    processes: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
) -> Lookups:
    """The lookups of a run: the process map (built here when a key needs it and none was
    given) and the cgroup paths."""
    from sockscope.render.names import CgroupMap

    if processes is None and needs_processes(words):
        from sockscope.ops.procmap import ProcessMap
        from sockscope.options import Options

        processes = ProcessMap.build(environ, Options())
    return Lookups(processes, CgroupMap(warn).path)
