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

import socket
import struct
from operator import itemgetter

from sockscope.kernel import abi

from sockscope.kernel import netlink

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from sockscope.render.view import View


class _Swap16:
    """``SWAP16[p]``: swap the bytes of a u16 (ports arrive in network order and are
    read as host u16). An object rather than a 65536-entry table, to keep import cheap.
    """

    __slots__ = ()

    def __getitem__(self, p: int) -> int:
        return ((p & 0xFF) << 8) | (p >> 8)


SWAP16 = _Swap16()

#: proto_name() of ss.c: the Netid text of an inet socket by protocol number.
PROTO_NAMES = {
    0: "raw",
    abi.IPPROTO_UDP: "udp",
    abi.IPPROTO_TCP: "tcp",
    abi.IPPROTO_MPTCP: "mptcp",
    abi.IPPROTO_SCTP: "sctp",
    abi.IPPROTO_DCCP: "dccp",
    abi.IPPROTO_ICMPV6: "icmp6",
}

_U8 = struct.Struct("=B")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


def proto_name(protocol: int) -> str:
    """Port of ss.c:proto_name (iproute2 7.1)."""
    return PROTO_NAMES.get(protocol, "???")


class InetSocket(tuple):  # type: ignore[type-arg]
    """A TCP, UDP, RAW, MPTCP, DCCP or SCTP socket.

    The tuple holds, in order: ``family``, ``state``, ``timer``, ``retrans``, the two
    ports in network byte order, the raw 16-byte source and destination addresses,
    ``ifindex``, the two cookie words, ``expires`` (ms), ``recv_q``, ``send_q``, ``uid``,
    ``inode``, ``protocol``, and the buffer span of the netlink attributes.
    """

    __slots__ = ()

    family: int = property(itemgetter(0))  # type: ignore[assignment]
    state: int = property(itemgetter(1))  # type: ignore[assignment]
    timer: int = property(itemgetter(2))  # type: ignore[assignment]
    retrans: int = property(itemgetter(3))  # type: ignore[assignment]
    ifindex: int = property(itemgetter(8))  # type: ignore[assignment]
    iface: int = property(itemgetter(8))  # type: ignore[assignment]
    expires: int = property(itemgetter(11))  # type: ignore[assignment]
    recv_q: int = property(itemgetter(12))  # type: ignore[assignment]
    send_q: int = property(itemgetter(13))  # type: ignore[assignment]
    uid: int = property(itemgetter(14))  # type: ignore[assignment]
    inode: int = property(itemgetter(15))  # type: ignore[assignment]
    #: the protocol the table was dumped with (IPPROTO_*), or the real protocol of a raw
    #: socket when the kernel reported INET_DIAG_PROTOCOL
    protocol: int = property(itemgetter(16))  # type: ignore[assignment]
    name = None

    @property
    def lport(self) -> int:
        return SWAP16[self[4]]

    @property
    def rport(self) -> int:
        return SWAP16[self[5]]

    local_port = lport
    peer_port = rport

    @property
    def local_data(self) -> bytes:
        data: bytes = self[6]
        return data[:4] if self[0] == abi.AF_INET else data

    @property
    def remote_data(self) -> bytes:
        data: bytes = self[7]
        return data[:4] if self[0] == abi.AF_INET else data

    @property
    def local_addr(self) -> str:
        """The local address as inet_ntop text (``::ffff:127.0.0.1`` for mapped ones)."""
        if self[0] != abi.AF_INET and self[0] != abi.AF_INET6:
            from sockscope.render.names import addr_text

            return addr_text(self[0], self.local_data)  # a damaged dump: any family
        return socket.inet_ntop(self[0], self.local_data)

    @property
    def peer_addr(self) -> str:
        if self[0] != abi.AF_INET and self[0] != abi.AF_INET6:
            from sockscope.render.names import addr_text

            return addr_text(self[0], self.remote_data)
        return socket.inet_ntop(self[0], self.remote_data)

    @property
    def cookie(self) -> int:
        """The socket cookie (ss prints it as ``sk:``); ``(cookie[1] << 32) | cookie[0]``."""
        return int((self[10] << 32) | self[9])

    @property
    def table(self) -> str:
        return proto_name(self[16]) if self[16] in PROTO_NAMES else "raw"

    @property
    def netid(self) -> str:
        return proto_name(self[16])

    @property
    def state_name(self) -> str:
        states = abi.STATE_NAMES
        return states[self[1]] if self[1] < len(states) else "UNKNOWN"

    def attrs(self) -> dict[int, bytes]:
        """The netlink attributes (INET_DIAG_*) by type, as bytes; empty for /proc rows."""
        buf = self[17]
        if buf is None:
            return {}
        return {t: buf[a:b] for t, (a, b) in netlink.attrs(buf, self[18], self[19]).items()}

    def _attr(self, kind: int) -> bytes | None:
        buf = self[17]
        if buf is None:
            return None
        span = netlink.attrs(buf, self[18], self[19]).get(kind)
        return None if span is None else buf[span[0] : span[1]]

    @property
    def mark(self) -> int:
        """SO_MARK (INET_DIAG_MARK, only sent to CAP_NET_ADMIN), 0 when absent."""
        data = self._attr(abi.INET_DIAG_MARK)
        return _U32.unpack_from(data)[0] if data and len(data) >= 4 else 0

    @property
    def cgroup_id(self) -> int:
        """The cgroup v2 id (INET_DIAG_CGROUP_ID), 0 when absent."""
        data = self._attr(abi.INET_DIAG_CGROUP_ID)
        return _U64.unpack_from(data)[0] if data and len(data) >= 8 else 0

    @property
    def v6only(self) -> int | None:
        """INET_DIAG_SKV6ONLY (AF_INET6 sockets in LISTEN or CLOSE), else None."""
        data = self._attr(abi.INET_DIAG_SKV6ONLY)
        return _U8.unpack_from(data)[0] if data else None

    @property
    def shutdown(self) -> int | None:
        data = self._attr(abi.INET_DIAG_SHUTDOWN)
        return _U8.unpack_from(data)[0] if data else None

    # -- extended information (-m, -i): decoded by sockscope.tcpinfo, None when absent --
    def _decoded(self, kind: int, decoder: str) -> object:
        data = self._attr(kind)
        if data is None:
            return None
        from sockscope.tables.inet import tcpinfo

        return getattr(tcpinfo, decoder)(data)

    @property
    def tcp_info(self) -> object:
        """``struct tcp_info`` (:class:`sockscope.tcpinfo.TcpInfo`, C field names) of a TCP
        or DCCP socket dumped with -i; zero-filled when the kernel's is shorter."""
        if self[16] not in (abi.IPPROTO_TCP, abi.IPPROTO_DCCP):
            return None
        return self._decoded(abi.INET_DIAG_INFO, "decode_tcp_info")

    @property
    def mptcp_info(self) -> object:
        """``struct mptcp_info`` of an MPTCP socket dumped with -i."""
        if self[16] != abi.IPPROTO_MPTCP:
            return None
        return self._decoded(abi.INET_DIAG_INFO, "decode_mptcp_info")

    @property
    def sctp_info(self) -> object:
        """``struct sctp_info`` of an SCTP association dumped with -i."""
        if self[16] != abi.IPPROTO_SCTP:
            return None
        return self._decoded(abi.INET_DIAG_INFO, "decode_sctp_info")

    @property
    def skmem(self) -> object:
        """INET_DIAG_SKMEMINFO (:class:`sockscope.tcpinfo.SkMemInfo`), with -m."""
        return self._decoded(abi.INET_DIAG_SKMEMINFO, "decode_skmeminfo")

    @property
    def meminfo(self) -> object:
        """INET_DIAG_MEMINFO (struct inet_diag_meminfo), the old-kernel -m data."""
        return self._decoded(abi.INET_DIAG_MEMINFO, "decode_meminfo")

    @property
    def cong(self) -> str | None:
        """The congestion-control algorithm name (INET_DIAG_CONG), with -i."""
        data = self._attr(abi.INET_DIAG_CONG)
        return None if data is None else data.split(b"\0", 1)[0].decode("latin-1")

    @property
    def cc_info(self) -> object:
        """The algorithm's own data: BbrInfo, DctcpInfo or VegasInfo, else None."""
        for kind, decoder in (
            (abi.INET_DIAG_BBRINFO, "decode_bbr"),
            (abi.INET_DIAG_DCTCPINFO, "decode_dctcp"),
            (abi.INET_DIAG_VEGASINFO, "decode_vegas"),
        ):
            found = self._decoded(kind, decoder)
            if found is not None:
                return found
        return None

    @property
    def md5sig(self) -> object:
        """TCP-MD5 keys (list of :class:`sockscope.tcpinfo.Md5Sig`), CAP_NET_ADMIN and -i."""
        return self._decoded(abi.INET_DIAG_MD5SIG, "decode_md5sig")

    @property
    def ulp(self) -> object:
        """INET_DIAG_ULP_INFO as a dict: name, and tls or mptcp (subflow) fields."""
        return self._decoded(abi.INET_DIAG_ULP_INFO, "decode_ulp")

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        """The socket as data: what ``--json`` prints (:func:`sockscope.fields.inet`)."""
        from sockscope.render import view as fields

        return fields.inet(self, fields.View() if view is None else view)

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
            proto = _raw_protocol(buf, attrs, off + length)
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
                    proto = _raw_protocol(buf, attrs, off + length) if raw else protocol
                    yield new(cls, (*unpack(buf, body), proto, buf, attrs, off + length))
            off += (length + 3) & ~3


def _raw_protocol(buf: bytes, start: int, end: int) -> int:
    span = netlink.attrs(buf, start, end).get(abi.INET_DIAG_PROTOCOL)
    return buf[span[0]] if span else abi.IPPROTO_RAW


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
