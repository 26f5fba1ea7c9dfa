"""``ss -K``: closing inet sockets with ``SOCK_DESTROY``.

A :class:`Killer` is called for every inet socket that came from a sock_diag dump (or an
``-E`` event) and passed the family check and the filter, before it is shown: it asks
the kernel to destroy that socket on its own ``NETLINK_SOCK_DIAG`` socket and waits for
the acknowledgement. Port of ss.c's ``kill_inet_sock`` and the error handling of
``show_one_inet_sock`` (iproute2 7.1):

* ``EOPNOTSUPP`` / ``ENOENT`` (cannot be closed, or already gone): the socket is hidden;
* any other error: ss's ``perror("SOCK_DESTROY answers")`` goes to ``warn`` and
  :class:`KillError` is raised, which abandons the dump in progress.

Sockets read from ``/proc`` or from ``TCPDIAG_FILE`` are never killed (ss only kills on
its netlink path), and neither are the other families.

The library's :func:`sockscope.kill` (in :mod:`sockscope.api`) runs a :class:`Killer`
over the inet tables of the one table walk.
"""

from __future__ import annotations

import errno as _errno
import os
import struct
import time

from sockscope.errors import KillError, NetlinkError
from sockscope.kernel import abi, netlink
from sockscope.tables.inet.layout import ATTR_END, ATTR_START, BUF, FAMILY
from sockscope.tables.inet.record import diag_protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket as socket
    from collections.abc import Callable

    from sockscope.tables.inet.record import InetSocket

#: errors after which ss hides the socket without a message
SILENT = frozenset({_errno.EOPNOTSUPP, _errno.ENOENT})

#: the head of struct inet_diag_req_v2 (sdiag_family, sdiag_protocol, idiag_ext,
#: pad / sdiag_raw_protocol, idiag_states); the 48-byte inet_diag_sockid follows
_REQ_HEAD = struct.Struct("=BBBBI")
#: where the id lies in an inet_diag_msg, counted back from the end of the fixed part
_ID_FROM_END = 68
_ID_LEN = 48


def destroy_request(rec: InetSocket, protocol: int, seq: int) -> bytes | None:
    """The SOCK_DESTROY message for a dumped socket, or None if it has no netlink data.

    Port of ss.c:kill_inet_sock: the reply's family, the dump protocol (truncated to the
    u8 field, as in C), the reply's whole ``id`` copied byte for byte, and for raw sockets
    ``sdiag_raw_protocol`` from ``INET_DIAG_PROTOCOL`` (0 when absent).
    """
    buf = rec[BUF]
    if buf is None:
        return None
    attr_start = rec[ATTR_START]
    ident = bytes(buf[attr_start - _ID_FROM_END : attr_start - _ID_FROM_END + _ID_LEN])
    raw_prot = 0
    if protocol == abi.IPPROTO_RAW:
        # kill_inet_sock sends parse_diag_msg's raw_prot: parse_rtattr, no flag masked
        raw_prot = diag_protocol(buf, attr_start, rec[ATTR_END], 0, 0xFFFF)
    body = _REQ_HEAD.pack(rec[FAMILY], protocol & 0xFF, 0, raw_prot, 0) + ident
    return netlink.message(abi.SOCK_DESTROY, abi.NLM_F_REQUEST | abi.NLM_F_ACK, body, seq)


class Killer:
    """``killer(record, protocol) -> bool``: destroy the socket; False = hide it.

    Raises :class:`KillError` (after ``warn`` got ss's message) when the kernel refuses
    with an error other than EOPNOTSUPP/ENOENT. Records without netlink data (``/proc``
    rows) are left alone and shown.
    """

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        self.warn: Callable[[str], None] = warn or (lambda _m: None)
        self._sock: socket.socket | None = None
        self._seq = int(time.time())  # rtnl_open_byproto seeds seq with time(NULL)
        #: sockets destroyed so far
        self.killed: list[InetSocket] = []
        #: the error that stopped the last dump, if any
        self.error: KillError | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            try:
                self._sock = netlink.open_diag()
            except OSError as e:
                raise self._fail(e.errno or 0) from None
        return self._sock

    def _fail(self, err: int) -> KillError:
        message = f"SOCK_DESTROY answers: {os.strerror(err)}"
        self.warn(message)
        self.error = KillError(message, err)
        return self.error

    def __call__(self, rec: InetSocket, protocol: int) -> bool:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        request = destroy_request(rec, protocol, self._seq)
        if request is None:
            return True
        sock = self._socket()
        try:
            netlink.talk(sock, request)
        except NetlinkError as e:
            if e.errno in SILENT:
                return False
            raise self._fail(e.errno) from None
        except OSError as e:
            if e.errno in SILENT:
                return False
            raise self._fail(e.errno or 0) from None
        self.killed.append(rec)
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Killer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
