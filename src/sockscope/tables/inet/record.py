"""Socket records: what the library yields, one per socket, and their decoders.

Records are tuple subclasses (like psutil's named tuples): building one from a netlink
message costs one ``struct.unpack_from`` plus one tuple, which matters at 100,000
sockets. Fields are read through properties with plain names; the netlink attributes
that follow the fixed header are kept as a span of the receive buffer and decoded on
first use (:meth:`InetSocket.attrs`).

Every record also offers the *filter view* of ss's ``struct sockstat`` (``family``,
``local_data``, ``remote_data``, ``lport``, ``rport``, ``iface``, ``mark``,
``cgroup_id``, ``name``), which is what :mod:`sockscope.filter` matches against.
"""

from __future__ import annotations

import _socket as socket  # the C module: socket.py costs ~3 ms of start-up (enum, selectors)
import _struct as struct  # the C modules: struct.py and operator.py only re-export them
from _operator import itemgetter

from sockscope.kernel import abi, netlink
from sockscope.kernel.abi import PROTO_NAMES, SWAP16
from sockscope.tables.inet.layout import (
    ATTR_END,
    ATTR_START,
    BUF,
    COOKIE_HI,
    COOKIE_LO,
    DPORT,
    DST,
    EXPIRES,
    FAMILY,
    IFINDEX,
    INODE,
    PROTOCOL,
    RETRANS,
    RQUEUE,
    SPORT,
    SRC,
    STATE,
    TIMER,
    UID,
    WQUEUE,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

    from sockscope.kernel.structs import (
        BbrInfo,
        DctcpInfo,
        Md5Sig,
        MemInfo,
        MptcpInfo,
        SctpInfo,
        SkMemInfo,
        TcpInfo,
        VegasInfo,
    )
    from sockscope.ops.namespaces import Namespace
    from sockscope.render.view import View
    from sockscope.tables.common import Owner


_U8 = struct.Struct("=B")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


def proto_name(protocol: int) -> str:
    """Port of ss.c:proto_name (iproute2 7.1)."""
    return PROTO_NAMES.get(protocol, "???")


if TYPE_CHECKING:
    _Tuple = tuple[Any, ...]
else:
    _Tuple = tuple  # typing's Any is not imported at run time (start-up cost)


class InetSocket(_Tuple):
    """A TCP, UDP, RAW, MPTCP, DCCP or SCTP socket.

    The tuple holds, in order: ``family``, ``state``, ``timer``, ``retrans``, the two
    ports in network byte order, the raw 16-byte source and destination addresses,
    ``ifindex``, the two cookie words, ``expires`` (ms), ``recv_q``, ``send_q``, ``uid``,
    ``inode``, ``protocol``, and the buffer span of the netlink attributes.
    """

    # No __slots__: the instance dict (created only when used) keeps what the accessors
    # parse once, the attribute spans and the decoded structures.

    # The plain fields are C-speed itemgetter properties (the user-space filter reads some
    # for every socket); the type checker sees them as the typed properties they are.
    if TYPE_CHECKING:

        @property
        def family(self) -> int: ...

        @property
        def state(self) -> int: ...

        @property
        def timer(self) -> int: ...

        @property
        def retrans(self) -> int: ...

        @property
        def ifindex(self) -> int: ...

        @property
        def iface(self) -> int: ...

        @property
        def expires(self) -> int: ...

        @property
        def recv_q(self) -> int: ...

        @property
        def send_q(self) -> int: ...

        @property
        def uid(self) -> int: ...

        @property
        def inode(self) -> int: ...

        @property
        def protocol(self) -> int: ...

    else:
        family = property(itemgetter(FAMILY))
        state = property(itemgetter(STATE))
        timer = property(itemgetter(TIMER))
        retrans = property(itemgetter(RETRANS))
        ifindex = property(itemgetter(IFINDEX))
        iface = property(itemgetter(IFINDEX))
        expires = property(itemgetter(EXPIRES))
        recv_q = property(itemgetter(RQUEUE))
        send_q = property(itemgetter(WQUEUE))
        uid = property(itemgetter(UID))
        inode = property(itemgetter(INODE))
        protocol = property(itemgetter(PROTOCOL))
    name = None

    @property
    def lport(self) -> int:
        return SWAP16[self[SPORT]]

    @property
    def rport(self) -> int:
        return SWAP16[self[DPORT]]

    #: the names of the data view (``to_dict()``, ``--json``)
    local_port = lport
    peer_port = rport

    @property
    def local_data(self) -> bytes:
        data: bytes = self[SRC]
        return data[:4] if self[FAMILY] == abi.AF_INET else data

    @property
    def remote_data(self) -> bytes:
        data: bytes = self[DST]
        return data[:4] if self[FAMILY] == abi.AF_INET else data

    @property
    def local_addr(self) -> str:
        """The local address as inet_ntop text (``::ffff:127.0.0.1`` for mapped ones)."""
        if self[FAMILY] != abi.AF_INET and self[FAMILY] != abi.AF_INET6:
            from sockscope.render.names import addr_text

            return addr_text(self[FAMILY], self.local_data)  # a damaged dump: any family
        return socket.inet_ntop(self[FAMILY], self.local_data)

    @property
    def peer_addr(self) -> str:
        if self[FAMILY] != abi.AF_INET and self[FAMILY] != abi.AF_INET6:
            from sockscope.render.names import addr_text

            return addr_text(self[FAMILY], self.remote_data)
        return socket.inet_ntop(self[FAMILY], self.remote_data)

    #: the names of the data view (``local_addr``/``peer_addr`` are kept as aliases)
    local_address = local_addr
    peer_address = peer_addr

    @property
    def cookie(self) -> int:
        """The socket cookie (ss prints it as ``sk:``); ``(cookie[1] << 32) | cookie[0]``."""
        return int((self[COOKIE_HI] << 32) | self[COOKIE_LO])

    @property
    def table(self) -> str:
        return proto_name(self[PROTOCOL]) if self[PROTOCOL] in PROTO_NAMES else "raw"

    @property
    def netid(self) -> str:
        return proto_name(self[PROTOCOL])

    @property
    def state_name(self) -> str:
        states = abi.STATE_NAMES
        state: int = self[STATE]
        return states[state] if state < len(states) else "UNKNOWN"

    @property
    def owners(self) -> tuple[Owner, ...] | None:
        """The processes holding the socket, in ss's order, when they were asked for
        (``Query(processes=True)``)."""
        found: tuple[Owner, ...] | None = self.__dict__.get("_owners")
        return found

    @property
    def attached_view(self) -> View | None:
        """The data view of the query that yielded the record (what ``to_dict()`` uses
        when given none), or None."""
        found: View | None = self.__dict__.get("_view")
        return found

    @property
    def netns(self) -> Namespace | None:
        """The network namespace the record was listed in (``sockets(netns=...)``), or
        None for the caller's own."""
        found: Namespace | None = self.__dict__.get("_netns")
        return found

    def attach(
        self,
        view: View,
        owners: tuple[Owner, ...] | None = None,
        netns: Namespace | None = None,
    ) -> None:
        """Keep the query's data view and, with ``processes``, the socket's owners; with
        ``netns``, the namespace it was listed in."""
        self.__dict__["_view"] = view
        if owners is not None:
            self.__dict__["_owners"] = owners
        if netns is not None:
            self.__dict__["_netns"] = netns

    def spans(self) -> dict[int, tuple[int, int]]:
        """The netlink attributes' payload spans in the receive buffer, by type (the
        first of a type wins, as parse_rtattr); parsed on first use, then kept."""
        cache = self.__dict__
        found: dict[int, tuple[int, int]] | None = cache.get("_spans")
        if found is None:
            buf = self[BUF]
            found = {} if buf is None else netlink.attrs(buf, self[ATTR_START], self[ATTR_END])
            cache["_spans"] = found
        return found

    def attrs(self) -> dict[int, bytes]:
        """The netlink attributes (INET_DIAG_*) by type, as bytes; empty for /proc rows."""
        buf = self[BUF]
        return {t: buf[a:b] for t, (a, b) in self.spans().items()}

    def _attr(self, kind: int, exact: bool = False) -> bytes | None:
        """An attribute's payload; ``exact``: found by its exact type, flag bits not
        masked off (parse_diag_msg reads the mark and the cgroup id so)."""
        buf = self[BUF]
        if buf is None:
            return None
        span = self.spans().get(kind)
        if exact:
            span = netlink.exact(buf, self.spans(), self[ATTR_START], self[ATTR_END], kind)
        return None if span is None else buf[span[0] : span[1]]

    @property
    def mark(self) -> int:
        """SO_MARK (INET_DIAG_MARK, only sent to CAP_NET_ADMIN), 0 when absent."""
        data = self._attr(abi.INET_DIAG_MARK, exact=True)
        return _U32.unpack_from(data)[0] if data and len(data) >= 4 else 0

    @property
    def cgroup_id(self) -> int:
        """The cgroup v2 id (INET_DIAG_CGROUP_ID), 0 when absent."""
        data = self._attr(abi.INET_DIAG_CGROUP_ID, exact=True)
        return _U64.unpack_from(data)[0] if data and len(data) >= 8 else 0

    @property
    def v6only(self) -> int | None:
        """INET_DIAG_SKV6ONLY (AF_INET6 sockets in LISTEN or CLOSE), else None."""
        buf = self[BUF]
        span = None if buf is None else self.spans().get(abi.INET_DIAG_SKV6ONLY)
        if span is None:
            return None
        # rta_getattr_u8 reads the byte after the header even when the payload is empty
        # (a damaged dump): the next attribute's first byte, as ss prints it
        return buf[span[0]] if span[0] < len(buf) else 0

    @property
    def shutdown(self) -> int | None:
        data = self._attr(abi.INET_DIAG_SHUTDOWN)
        return _U8.unpack_from(data)[0] if data else None

    # -- extended information (-m, -i): decoded by sockscope.tcpinfo, None when absent --
    def _decoded(self, kind: int, decode: Callable[[bytes], object] | None = None) -> Any:
        """The payload of an attribute through its kernel-struct decoder, decoded once."""
        cache: dict[Any, Any] = self.__dict__
        key = (kind, decode)
        if key in cache:
            return cache[key]
        data = self._attr(kind)
        if data is None:
            value = None
        else:
            from sockscope.kernel.structs import DECODERS

            value = (decode or DECODERS[kind])(data)
        cache[key] = value
        return value

    @property
    def tcp_info(self) -> TcpInfo | None:
        """``struct tcp_info`` (:class:`sockscope.tcpinfo.TcpInfo`, C field names) of a TCP
        or DCCP socket dumped with -i; zero-filled when the kernel's is shorter."""
        if self[PROTOCOL] not in (abi.IPPROTO_TCP, abi.IPPROTO_DCCP):
            return None
        value: TcpInfo | None = self._decoded(abi.INET_DIAG_INFO)
        return value

    @property
    def mptcp_info(self) -> MptcpInfo | None:
        """``struct mptcp_info`` of an MPTCP socket dumped with -i."""
        if self[PROTOCOL] != abi.IPPROTO_MPTCP:
            return None
        from sockscope.kernel.structs import decode_mptcp_info

        value: MptcpInfo | None = self._decoded(abi.INET_DIAG_INFO, decode_mptcp_info)
        return value

    @property
    def sctp_info(self) -> SctpInfo | None:
        """``struct sctp_info`` of an SCTP association dumped with -i."""
        if self[PROTOCOL] != abi.IPPROTO_SCTP:
            return None
        from sockscope.kernel.structs import decode_sctp_info

        value: SctpInfo | None = self._decoded(abi.INET_DIAG_INFO, decode_sctp_info)
        return value

    @property
    def skmem(self) -> SkMemInfo | None:
        """INET_DIAG_SKMEMINFO (:class:`sockscope.tcpinfo.SkMemInfo`), with -m."""
        value: SkMemInfo | None = self._decoded(abi.INET_DIAG_SKMEMINFO)
        return value

    @property
    def meminfo(self) -> MemInfo | None:
        """INET_DIAG_MEMINFO (struct inet_diag_meminfo), the old-kernel -m data."""
        value: MemInfo | None = self._decoded(abi.INET_DIAG_MEMINFO)
        return value

    @property
    def cong(self) -> str | None:
        """The congestion-control algorithm name (INET_DIAG_CONG), with -i."""
        data = self._attr(abi.INET_DIAG_CONG)
        return None if data is None else data.split(b"\0", 1)[0].decode("latin-1")

    @property
    def cc_info(self) -> BbrInfo | DctcpInfo | VegasInfo | None:
        """The algorithm's own data: BbrInfo, DctcpInfo or VegasInfo, else None."""
        for kind in (abi.INET_DIAG_BBRINFO, abi.INET_DIAG_DCTCPINFO, abi.INET_DIAG_VEGASINFO):
            found: BbrInfo | DctcpInfo | VegasInfo | None = self._decoded(kind)
            if found is not None:
                return found
        return None

    @property
    def md5sig(self) -> list[Md5Sig] | None:
        """TCP-MD5 keys (list of :class:`sockscope.tcpinfo.Md5Sig`), CAP_NET_ADMIN and -i."""
        value: list[Md5Sig] | None = self._decoded(abi.INET_DIAG_MD5SIG)
        return value

    @property
    def ulp(self) -> dict[str, object] | None:
        """INET_DIAG_ULP_INFO as a dict: name, and tls or mptcp (subflow) fields."""
        value: dict[str, object] | None = self._decoded(abi.INET_DIAG_ULP_INFO)
        return value

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        """The socket as data: what ``--json`` prints (:func:`sockscope.tables.inet.data.inet`),
        through ``view``, else the view of the query that yielded it, else every section."""
        from sockscope.tables.inet import data

        if view is None:
            view = self.attached_view
            if view is None:
                from sockscope.render.view import View

                view = View()
        return data.inet(self, view)

    def __repr__(self) -> str:
        return (
            f"InetSocket({self.netid} {self.state_name} {self.local_addr}:{self.lport}"
            f" -> {self.peer_addr}:{self.rport} ino={self.inode})"
        )


_MSG = abi.INET_DIAG_MSG
_MSG_SIZE = abi.INET_DIAG_MSG_SIZE
_HDR_SIZE = abi.NLMSGHDR.size


def decode_inet(
    messages: Iterable[netlink.Message], protocol: int, families: int = -1
) -> Iterator[InetSocket]:
    """Decode inet_diag replies into :class:`InetSocket` records.

    ``families`` is ss's families mask: replies of other address families are dropped
    before decoding (show_one_inet_sock). A raw socket's INET_DIAG_PROTOCOL attribute
    replaces the protocol, as inet_show_sock does for the Netid.
    """
    unpack = _MSG.unpack_from
    new = tuple.__new__
    cls = InetSocket
    minimum = _HDR_SIZE + _MSG_SIZE
    raw = protocol == abi.IPPROTO_RAW
    for _mtype, buf, off, length in messages:
        body = off + _HDR_SIZE
        if length < minimum or not (families >> buf[body]) & 1:
            continue
        attrs = body + _MSG_SIZE
        if raw:
            proto = diag_protocol(buf, attrs, off + length, protocol)
            yield new(cls, (*unpack(buf, body), proto, buf, attrs, off + length))
        else:
            yield new(cls, (*unpack(buf, body), protocol, buf, attrs, off + length))


def decode_inet_dump(
    datagrams: Iterable[bytes],
    seq: int,
    protocol: int,
    families: int = -1,
    state: netlink.DumpState | None = None,
) -> Iterator[InetSocket]:
    """Decode a live inet_diag dump datagram by datagram (the listing hot path).

    The same records as :func:`decode_inet` over :func:`netlink.dump`, with the
    message walk and the decode fused into one loop. Messages of another sequence
    number are skipped, as rtnl_dump_filter_l does; control messages go to
    :func:`netlink.control` (which raises for errors); the dump ends at NLMSG_DONE.
    """
    hdr = netlink.HDR_UNPACK
    unpack = _MSG.unpack_from
    new = tuple.__new__
    cls = InetSocket
    minimum = _HDR_SIZE + _MSG_SIZE
    raw = protocol == abi.IPPROTO_RAW
    data_min = netlink.NLMSG_MIN_TYPE
    control = netlink.control
    intr = abi.NLM_F_DUMP_INTR
    for buf in datagrams:
        off = 0
        end = len(buf)
        while off + _HDR_SIZE <= end:
            length, mtype, flags, mseq, _pid = hdr(buf, off)
            if length < _HDR_SIZE or off + length > end:
                break
            if mseq == seq:
                if flags & intr and state is not None:
                    state.interrupted = True
                if mtype < data_min:
                    if control(mtype, buf, off, length):
                        return
                elif length >= minimum and (families >> buf[off + _HDR_SIZE]) & 1:
                    body = off + _HDR_SIZE
                    attrs = body + _MSG_SIZE
                    proto = diag_protocol(buf, attrs, off + length, protocol) if raw else protocol
                    yield new(cls, (*unpack(buf, body), proto, buf, attrs, off + length))
            off += (length + 3) & ~3


def diag_protocol(
    buf: bytes, start: int, end: int, default: int, mask: int = abi.SS_TYPE_MASK
) -> int:
    """The protocol a diag message's INET_DIAG_PROTOCOL attribute names, else ``default``.

    The one place of ss's rule: index the attributes in ``buf[start:end]`` (first of a type
    wins; ``mask`` clears flag bits: NLA_F_NESTED for the Netid, as inet_show_sock's
    parse_rtattr_flags; ``0xFFFF`` for -K's raw protocol, as parse_diag_msg's parse_rtattr),
    then rta_getattr_u8 with no length check: an empty payload reads the byte after its
    header, as ss does. Only when that byte is beyond the buffer (where ss would read
    stale memory) does the attribute count as absent.
    """
    span = netlink.attrs(buf, start, end, mask).get(abi.INET_DIAG_PROTOCOL)
    if span is None or span[0] >= len(buf):
        return default
    return buf[span[0]]


def with_diag_protocol(rec: InetSocket) -> InetSocket:
    """``rec`` with the protocol of its INET_DIAG_PROTOCOL attribute (inet_show_sock's
    Netid): the protocol it was decoded with stays when there is none."""
    protocol = rec[PROTOCOL]
    found = diag_protocol(rec[BUF], rec[ATTR_START], rec[ATTR_END], protocol)
    if found == protocol:
        return rec
    return tuple.__new__(InetSocket, (*rec[:PROTOCOL], found, *rec[BUF:]))


def make_proc_inet(
    family: int,
    state: int,
    lport: int,
    rport: int,
    src: bytes,
    dst: bytes,
    rq: int,
    wq: int,
    uid: int,
    inode: int,
    protocol: int,
    timer: int = 0,
    retrans: int = 0,
    expires: int = 0,
    sk: int = 0,
    extra: tuple[object, ...] = (),
) -> InetSocket:
    """Build a record from a /proc/net/{tcp,udp,raw}[6] line (no netlink attributes)."""
    return tuple.__new__(
        InetSocket,
        (
            family,
            state,
            timer,
            retrans,
            SWAP16[lport & 0xFFFF],
            SWAP16[rport & 0xFFFF],
            src,
            dst,
            0,
            sk & 0xFFFFFFFF,
            sk >> 32,
            expires,
            rq,
            wq,
            uid,
            inode,
            protocol,
            None,
            0,
            0,
            *extra,
        ),
    )
