"""``ss -E``: following the kernel's socket-destruction events.

The kernel broadcasts an inet_diag message on ``NETLINK_SOCK_DIAG`` when a full TCP or
UDP socket is destroyed (multicast groups ``SKNLGRP_INET{,6}_{TCP,UDP}_DESTROY``).
:func:`watch` subscribes and yields those sockets as :class:`~sockscope.records.InetSocket`
records; :func:`events` is the library front; :func:`follow` is ss's ``-E`` mode, one
row rendered and flushed per event. Ports of ss.c's ``handle_follow_request`` and
``generic_show_sock`` with ``show_one_inet_sock`` (iproute2 7.1):

* the groups come from the selected families x {tcp, udp} tables; none -> exit 255
  without a message;
* every event goes through the family check, the user-space filter and ``-K``, but not
  through the state mask (sockets arrive in CLOSE and print as ``UNCONN``);
* the Netid comes from ``INET_DIAG_PROTOCOL``; the filter and ``-K`` see ss's
  placeholder protocol ``IPPROTO_MAX`` (so ``-K`` sends SOCK_DESTROY with protocol
  262 & 0xff = TCP, and a socket that is already gone is hidden);
* the header is rendered with the first event (even one the filter drops).

(The module is not called ``events`` because ``sockscope.events`` is the public
function; a submodule of the same name would replace it on import.)
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import select
import socket
from functools import partial

from sockscope.errors import ArgumentError, EventError, NetlinkError, SockscopeError
from sockscope.kernel import abi, netlink
from sockscope.ops.destroy import Killer
from sockscope.ops.netns import iterate
from sockscope.tables.inet.record import InetSocket, decode_inet, with_diag_protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from sockscope.ops.namespaces import Namespace
    from sockscope.options import Options
    from sockscope.query.filter import Filter
    from sockscope.query.selection import Selection
    from sockscope.render.columns import Renderer
    from sockscope.render.printer import Printer

#: IPPROTO_MAX, the protocol generic_show_sock hands to show_one_inet_sock
IPPROTO_MAX = 262

#: (family, table) -> multicast group of its destruction events
GROUPS = {
    (abi.AF_INET, abi.TCP_DB): abi.SKNLGRP_INET_TCP_DESTROY,
    (abi.AF_INET, abi.UDP_DB): abi.SKNLGRP_INET_UDP_DESTROY,
    (abi.AF_INET6, abi.TCP_DB): abi.SKNLGRP_INET6_TCP_DESTROY,
    (abi.AF_INET6, abi.UDP_DB): abi.SKNLGRP_INET6_UDP_DESTROY,
}

FAMILY_NAMES = {"inet": abi.AF_INET, "inet6": abi.AF_INET6, "4": abi.AF_INET, "6": abi.AF_INET6}
TABLE_NAMES = {"tcp": abi.TCP_DB, "udp": abi.UDP_DB}


def groups_for(families: int, dbs: int) -> int:
    """The ``nl_groups`` bitmask (bit = group - 1) for a families and a tables mask."""
    groups = 0
    for (family, db), group in GROUPS.items():
        if families & (1 << family) and dbs & (1 << db):
            groups |= 1 << (group - 1)
    return groups


def subscribe(groups: int) -> socket.socket:
    """A NETLINK_SOCK_DIAG socket bound to ``groups`` (rtnl_open_byproto; needs CAP_NET_ADMIN).

    Raises :class:`EventError` carrying libnetlink's ``perror`` text.
    """
    try:
        sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, abi.NETLINK_SOCK_DIAG
        )
    except OSError as e:
        raise _error(e, "Cannot open netlink socket") from None
    step = "SO_SNDBUF"
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        step = "SO_RCVBUF"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        with contextlib.suppress(OSError):  # ignored by libnetlink too
            sock.setsockopt(abi.SOL_NETLINK, abi.NETLINK_EXT_ACK, 1)
        step = "Cannot bind netlink socket"
        sock.bind((0, groups))
    except OSError as e:
        sock.close()
        raise _error(e, step) from None
    return sock


def _error(e: OSError, what: str) -> EventError:
    err = e.errno or 0
    return EventError(f"{what}: {os.strerror(err)}", err)


def messages(sock: socket.socket) -> Iterator[netlink.Message]:
    """Every multicast message received, forever (rtnl_dump_filter_l with seq 0, pid 0).

    Raises :class:`EventError` with libnetlink's text when receiving fails (this
    includes ENOBUFS, an overrun when events come faster than they are read).
    """
    unpack = abi.NLMSGHDR.unpack_from
    hsize = abi.NLMSGHDR.size
    while True:
        try:
            buf, _anc, _flags, addr = sock.recvmsg(1 << 20)
        except InterruptedError:
            continue
        except OSError as e:
            err = e.errno or 0
            if err == _errno.EAGAIN:
                continue
            raise EventError(netlink.receive_error(err), err) from None
        if not buf:
            raise EventError("EOF on netlink", _errno.ENODATA)
        if addr[0] != 0:
            continue  # not from the kernel
        off, end = 0, len(buf)
        while off + hsize <= end:
            length, mtype, _fl, seq, pid = unpack(buf, off)
            if length < hsize or off + length > end:
                break
            if seq == 0 and pid == 0 and mtype not in (abi.NLMSG_DONE, abi.NLMSG_ERROR):
                yield mtype, buf, off, length
            off += (length + 3) & ~3


def watch(
    groups: int,
    families: int = (1 << abi.AF_INET) | (1 << abi.AF_INET6),
    matcher: Callable[[InetSocket], bool] | None = None,
    killer: Callable[[InetSocket, int], bool] | None = None,
    on_event: Callable[[], None] | None = None,
) -> Iterator[InetSocket]:
    """Yield the destroyed sockets matching ``matcher`` (show_one_inet_sock for events).

    ``killer`` is -K's (see :mod:`sockscope.destroy`); it may raise to stop. ``on_event``
    runs after every event received, shown or not (ss's render + fflush).
    """
    sock = subscribe(groups)
    try:
        for msg in messages(sock):
            yield from shown(msg, families, matcher, killer)
            if on_event is not None:
                on_event()
    finally:
        sock.close()


def shown(
    msg: netlink.Message,
    families: int,
    matcher: Callable[[InetSocket], bool] | None,
    killer: Callable[[InetSocket, int], bool] | None,
) -> Iterator[InetSocket]:
    """The socket of one event message if ss -E shows it: family, filter, then -K."""
    for rec in decode_inet((msg,), IPPROTO_MAX, families):
        if matcher is not None and not matcher(rec):
            continue
        if killer is not None and not killer(rec, IPPROTO_MAX):
            continue
        yield with_diag_protocol(rec)


def received(sock: socket.socket) -> list[netlink.Message]:
    """The event messages of one datagram waiting on a non-blocking subscription (none
    when nothing waits); receive errors raise :class:`EventError` as in :func:`messages`."""
    try:
        buf, _anc, _flags, addr = sock.recvmsg(1 << 20)
    except (BlockingIOError, InterruptedError):
        return []
    except OSError as e:
        err = e.errno or 0
        raise EventError(netlink.receive_error(err), err) from None
    if not buf:
        raise EventError("EOF on netlink", _errno.ENODATA)
    if addr[0] != 0:
        return []
    out: list[netlink.Message] = []
    unpack = abi.NLMSGHDR.unpack_from
    hsize = abi.NLMSGHDR.size
    off, end = 0, len(buf)
    while off + hsize <= end:
        length, mtype, _fl, seq, pid = unpack(buf, off)
        if length < hsize or off + length > end:
            break
        if seq == 0 and pid == 0 and mtype not in (abi.NLMSG_DONE, abi.NLMSG_ERROR):
            out.append((mtype, buf, off, length))
        off += (length + 3) & ~3
    return out


def follow_each(
    spaces: Iterable[Namespace],
    groups: int,
    setup: Callable[[Namespace], Callable[[netlink.Message], None]],
    on_skip: Callable[[Namespace, SockscopeError], None] | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """``-E`` in every namespace of ``spaces`` at once, until interrupted.

    For each namespace, inside it: a subscription socket (it stays bound to that
    namespace after the thread leaves) and ``setup(ns)``, which returns the handler of
    that namespace's event messages. Then one poll loop over all the subscriptions;
    each message is handed to its namespace's handler, called inside that namespace (its
    interface names, its -K socket), and the thread's namespace is restored after every
    datagram, also when a handler raises or a signal interrupts. A namespace that has
    gone or cannot be entered goes to ``on_skip``; ``ready`` runs once every namespace
    is subscribed, before the first event. Namespaces created later are not
    followed. Raises :class:`EventError` when subscribing in the caller's own namespace
    or receiving fails, and what a handler raises.
    """
    from sockscope.ops.namespaces import NamespaceDenied, NamespaceGone, Visit

    feeds: dict[int, tuple[Visit, socket.socket, Callable[[netlink.Message], None]]] = {}
    poller = select.poll()
    try:
        for ns in spaces:
            visit = None
            sock = None
            try:
                visit = Visit(ns)

                def opened() -> socket.socket:
                    s = subscribe(groups)
                    s.setblocking(False)
                    return s

                sock = visit.call(opened)
                handle = visit.call(partial(setup, ns))
            except (NamespaceGone, NamespaceDenied) as e:
                if sock is not None:
                    sock.close()
                if visit is not None:
                    visit.close()
                if on_skip is not None:
                    on_skip(ns, e)
                continue
            except BaseException:
                if sock is not None:
                    sock.close()
                if visit is not None:
                    visit.close()
                raise
            feeds[sock.fileno()] = (visit, sock, handle)
            poller.register(sock, select.POLLIN)
        if ready is not None:
            ready()
        while feeds:
            for fd, _mask in poller.poll():
                visit, sock, handle = feeds[fd]
                msgs = received(sock)
                if msgs:
                    visit.call(partial(_handle_all, handle, msgs))
    finally:
        for visit, sock, _handle in feeds.values():
            sock.close()
            visit.close()


def _handle_all(handle: Callable[[netlink.Message], None], msgs: list[netlink.Message]) -> None:
    for msg in msgs:
        handle(msg)


def events(
    tables: Iterable[str] = ("tcp", "udp"),
    families: Iterable[str | int] = ("inet", "inet6"),
    filter: object = None,
    kill: bool = False,
    netns: str | None = None,
) -> Iterator[InetSocket]:
    """Library: iterate over TCP/UDP sockets as the kernel destroys them (``ss -E``).

    ``tables`` is any of ``"tcp"``/``"udp"``; ``families`` any of ``"inet"``/``"inet6"``
    (or AF_* numbers); ``filter`` an ss filter text or an object with ``matches()``;
    ``kill`` also sends SOCK_DESTROY as ``-K`` does; ``netns`` follows a namespace under
    /var/run/netns instead of the current one. Blocks between events; needs
    CAP_NET_ADMIN. Raises ArgumentError when nothing can be followed, :class:`EventError`
    (an OSError with ss's text) when subscribing or receiving fails.
    """
    fam_mask = 0
    for f in families:
        fam_mask |= 1 << (f if isinstance(f, int) else FAMILY_NAMES[f])
    dbs = 0
    for t in tables:
        dbs |= 1 << TABLE_NAMES[t]
    groups = groups_for(fam_mask, dbs)
    if not groups:
        raise ArgumentError("no tcp/udp events to follow with these tables and families")
    matcher = None
    if isinstance(filter, str):
        from sockscope.query.filter import FilterContext, parse_filter

        flt = parse_filter(filter, FilterContext(families=fam_mask, dbs=dbs))
        matcher = None if flt is None else flt.matches
    elif filter is not None:
        matcher = filter.matches  # type: ignore[attr-defined]
    killer = None
    if kill:
        killer = Killer()
    try:
        if netns is None:
            yield from watch(groups, fam_mask, matcher, killer)
        else:
            yield from iterate(netns, lambda: watch(groups, fam_mask, matcher, killer))
    finally:
        if killer is not None:
            killer.close()


def follow(
    sel: Selection,
    opts: Options,
    flt: Filter | None,
    printer: Printer,
    renderer: Renderer,
    environ: dict[str, str],
    warn: Callable[[str], None],
    flush: Callable[[], None],
) -> bool:
    """``ss -E``: print a row per destroyed socket until killed; False when it stopped
    on an error (ss then exits with -1).

    The header is already queued in ``renderer``; each event is rendered, then
    ``flush`` (the caller's: only the CLI knows where the text goes) pushes it out at
    once, as ss's fflush does, with column widths carried over from the rows before it.
    """
    del environ
    groups = groups_for(sel.families, sel.dbs)
    if not groups:
        return False
    matcher = None if flt is None else flt.matches
    killer = None
    if opts.kill:
        killer = Killer(warn)
    try:
        ok = _follow(groups, sel.families, matcher, killer, printer, renderer, warn, flush)
    finally:
        if killer is not None:
            killer.close()
    return ok


def _follow(
    groups: int,
    families: int,
    matcher: Callable[[InetSocket], bool] | None,
    killer: Callable[[InetSocket, int], bool] | None,
    printer: Printer,
    renderer: Renderer,
    warn: Callable[[str], None],
    flush: Callable[[], None],
) -> bool:
    def on_event() -> None:
        renderer.finish()
        flush()

    from sockscope.tables.inet.row import InetRows

    row = InetRows(printer).row
    add = renderer.add
    try:
        for rec in watch(groups, families, matcher, killer, on_event):
            add(row(rec))
    except EventError as e:  # (a NetlinkError too: taken first) rtnl_listen's message
        warn(e.message)
        return False
    except NetlinkError:
        on_event()  # generic_show_sock renders before it returns the -K error
        return False
    return True
