"""The compiled listing path of an inet table: rows made in C, dumps received in threads.

When the C core is available (:mod:`sockscope.accel`), an inet listing (no -K, no -D;
with or without -p and a filter; as extra information only the -i/-m text of TCP rows)
hands each received datagram to ``_core.RowMaker``, which walks its messages, decodes
struct inet_diag_msg and makes the row cells with the run's memos (and the -i/-m cell as
the fast path of :func:`sockscope.tables.inet.extinfo.inet` does), calling back into
Python for the user-space filter, the Process cell and every row outside its fast domain
(see ``InetRows.row``). Python
keeps the sources, the requests, the bytecode, the receive loop and every fallback: a
table this module declines (:func:`table_rows` returns None) goes through
:func:`sockscope.tables.inet.source.inet_table` and ``InetRows.row_fn``, the reference.

Work ss does not do, without changing a byte: the IPv4 and IPv6 dumps of a table run at
the same time on two netlink sockets, each received by its own thread (``recv`` releases
the GIL, so the kernel fills datagrams while the main thread formats); the rows are
still made and printed in ss's order (IPv4 first, then IPv6). A small TCP table listed
first (a few hundred sockets: the start-up case) is instead one request that dumps both
families in a single walk of the kernel's hash, received by the core's own thread from
before the listing's modules are imported (:func:`sockscope.tables.inet.plan.prefetch`,
taken over by :func:`_prefetched`), or in the main thread where that thread could not be
started (:func:`start_early`).
"""

from __future__ import annotations

import _thread
import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)

from sockscope.accel import core
from sockscope.errors import NetlinkError
from sockscope.kernel import abi, netlink
from sockscope.kernel.abi import PROTO_NAMES
from sockscope.tables.inet import plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _queue import SimpleQueue
    from collections.abc import Callable, Iterator
    from typing import Any

    from sockscope.render.view import View
    from sockscope.tables.context import Context
    from sockscope.tables.inet.record import InetSocket
    from sockscope.tables.inet.row import InetRows

    Rows = list[tuple[str, ...]]

_END = object()
#: what ends a dump early (the table ends with the rows before it, or falls back)
_DUMP_ERRORS = (NetlinkError, OSError)


def table_rows(ctx: Context, name: str, inet_rows: InetRows) -> Iterator[Rows] | None:
    """The rows of one inet table made by the C core, a list at a time; None when this
    table must go through the pure-Python path (no core, or a case it does not cover)."""
    mod = core()
    protocol = plan.covered(ctx, name, inet_rows.ext_wanted)
    if mod is None or protocol is None:
        return None
    early = ctx.early
    if early is not None and early[0] == protocol and not isinstance(early[1], list):
        ctx.early = None
        dump = early[1] if isinstance(early[1], _Dump) else _prefetched(early[1])
        rows = _combined_rows(ctx, mod, inet_rows, protocol, dump)
        if rows is not None:
            return rows
        # refused before its first record: the per-family dumps, and ss's fallbacks
    maker = _maker(mod, ctx, inet_rows, protocol, ctx.sel.families)
    return _netlink(ctx, maker, protocol, inet_rows)


def start_early(ctx: Context, name: str) -> None:
    """Start the dumps of table ``name`` now when :func:`table_rows` will list it (kept
    in ``ctx.early`` for it): the kernel fills the first datagrams while the caller sets
    up the rest of the listing.

    A small TCP table of both families (:func:`plan.combinable`) is instead dumped
    here, by one request for both families; its rows are still printed IPv4 first
    (see :func:`_combined_rows`)."""
    protocol = plan.covered(ctx, name, ctx.opts.inet_wanted)
    if core() is None or protocol is None or ctx.early is not None:
        return
    if plan.combinable(ctx, protocol):
        combined = _start_combined(ctx, protocol)
        if combined is not None:
            ctx.early = (protocol, combined)
            return
    ctx.early = (protocol, _start_dumps(ctx, protocol))


#: datagrams (32 KiB at most each) a receive thread may hold ahead of the rows: when
#: the rows wait (a pager, a slow pipe) the next family's dump waits too, as ss's
#: sequential dumps do, instead of all of it being received into memory
_AHEAD = 128


class _Dump:
    """One dump under way: its datagrams, then _END or what stopped it, ``put`` by its
    receiver and taken by ``get`` (a thread's queue; a list for a dump received whole
    before the rows: the combined dump of a small table needs no ``_queue`` library).

    ``room``: when a thread receives it, a token per datagram that may still be queued
    (``_AHEAD`` of them); taken by the thread before it queues one, given back by
    :func:`_take`. None when the dump is received whole before the rows."""

    __slots__ = ("finished", "get", "put", "room", "seq")

    def __init__(
        self,
        seq: int,
        get: Callable[[], Any],
        put: Callable[[Any], None],
        room: SimpleQueue[None] | None,
    ) -> None:
        self.get = get
        self.put = put
        self.seq = seq
        self.room = room
        #: the last item (_END or what stopped the receiver) was taken: its socket is
        #: closed and nothing more will come
        self.finished = False


def _prefetched(pre: Any) -> _Dump:
    """The combined dump that :func:`plan.prefetch` started, from the compiled core's
    thread: the datagrams it received, then the dump's end or the error that stopped
    it, or (past its bound) the rest of the dump received here."""
    datagrams, err, fd = pre.take()
    items: list[Any] = datagrams
    dump = _Dump(pre.seq, iter(items).__next__, items.append, None)
    if err:
        items.append(OSError(err, posix.strerror(err)))
    elif fd < 0:
        items.append(_END)
    else:
        import _socket

        _receiver(_socket.socket(fileno=fd), None, dump)
    return dump


def _start_combined(ctx: Context, protocol: int) -> _Dump | None:
    """The combined dump where the compiled core's thread could not be started
    (:func:`plan.prefetch`), received here in the main thread: a Python receive thread
    gained nothing measurable on an idle host (it must take the GIL back from the
    importing main thread after every recv) and cost about 1.5 ms where other
    processes kept the CPUs busy."""
    ext = plan.idiag_ext(ctx.opts)
    request = plan.legacy_request(protocol, ctx.sel.states, ext, ctx.bytecode)
    if request is None:
        return None
    try:
        sock = netlink.open_diag()
    except OSError:
        return None
    items: list[Any] = []  # (a list's iterator sees what is appended after it is made)
    dump = _Dump(netlink.HDR_UNPACK(request, 0)[3], iter(items).__next__, items.append, None)
    _receiver(sock, request, dump)
    return dump


def _next_both(dump: _Dump, four: Any, six: Any, out4: Rows, out6: Rows) -> int:
    """Feed the next datagram of a combined dump to both makers (each keeps only its
    family's messages); flags as :func:`_next`."""
    buf = _take(dump)
    if buf is None:
        return 1
    flags: int = four.feed(buf, dump.seq, out4)
    six.feed(buf, dump.seq, out6)
    return flags


def _combined_rows(
    ctx: Context, mod: Any, inet_rows: InetRows, protocol: int, dump: _Dump
) -> Iterator[Rows] | None:
    """The rows of a combined dump in ss's order: the IPv4 rows as their datagrams
    come, the IPv6 ones kept until the dump ends. The kernel walks the same buckets in
    the same order for either request, so each family's rows keep the order that its
    own dump would give. None when the kernel refuses the request before its first
    record (the caller then dumps each family as ss does)."""
    families = ctx.sel.families
    four = _maker(mod, ctx, inet_rows, protocol, families & (1 << abi.AF_INET))
    six = _maker(mod, ctx, inet_rows, protocol, families & (1 << abi.AF_INET6))
    first: Rows = []
    later: Rows = []
    flags = 0
    try:
        while not flags & 1 and not (four.stats[0] or six.stats[0]):
            flags |= _next_both(dump, four, six, first, later)
    except (NetlinkError, OSError) as e:
        if not (four.stats[0] or six.stats[0]):
            return None  # sockscope's own request: ss's requests follow, and their messages
        plan.warn_failed(ctx, e)
        flags = 1  # a later failure ends the table quietly, with the rows before it
        later = []
    return _combined_stream(ctx, dump, four, six, first, later, flags)


def _combined_stream(
    ctx: Context, dump: _Dump, four: Any, six: Any, first: Rows, later: Rows, flags: int
) -> Iterator[Rows]:
    yield first
    while not flags & 1:
        out: Rows = []
        try:
            flags |= _next_both(dump, four, six, out, later)
        except (NetlinkError, OSError) as e:
            if out:
                yield out  # the IPv4 rows before the failure are shown, as ss does
            plan.warn_failed(ctx, e)
            return
        if out:
            yield out
    if later:
        yield later
    if flags & 2:  # one dump: ss would warn after the family whose walk was interrupted
        ctx.warn("Dump was interrupted and may be inconsistent.")


def table_lines(
    ctx: Context, name: str, view: View, head: str, line: Callable[[InetSocket], str]
) -> Iterator[list[str]] | None:
    """--json-lines: the lines of one inet table made by the C core, a list at a time
    (each line ends with a newline); None when the table goes through the Python walk.

    The C core writes the ten keys of a plain socket (:func:`sockscope.tables.inet.data.inet`
    with a view that reads no attribute, no owners and no service names); every other
    row is made by ``line`` (the record's dict through the writer), so both agree.
    """
    mod = core()
    protocol = plan.covered(ctx, name, False)
    if mod is None or protocol is None:
        return None
    if (
        view.wants_attrs
        or view.timer
        or view.service is not None
        or view.owners is not None
        or ctx.opts.resolve
    ):
        return None
    maker = mod.RowMaker(
        protocol=protocol,
        families=ctx.sel.families,
        enabled=(0,),
        addr4={},
        addr6={},
        ports={},
        qmemo={},
        states=abi.STATE_NAMES,
        netid=PROTO_NAMES.get(protocol, "???"),
        slow=line,
        rec_type=_record_type,
        control=netlink.control,
        matcher=ctx.matcher,
        proc=None,
        numeric=True,
        hosts=False,
        json_head=head,
    )
    return _netlink(ctx, maker, protocol, None)  # type: ignore[return-value]


def _record_type() -> type[InetSocket]:
    """The record type of the rows the core hands to Python (a filter, a Process cell, a
    row outside its domain), imported at the first one: a listing whose rows the core
    makes all by itself does without the record module."""
    from sockscope.tables.inet.record import InetSocket

    return InetSocket


def _maker(mod: Any, ctx: Context, inet_rows: InetRows, protocol: int, families: int) -> Any:
    p = inet_rows.p
    opts = inet_rows.opts
    return mod.RowMaker(
        protocol=protocol,
        families=families,
        enabled=p.enabled,
        addr4=p.addr4,
        addr6=p.addr6,
        ports=p.port_be,
        qmemo=p.q_memo,
        states=abi.STATE_NAMES,
        netid=PROTO_NAMES.get(protocol, "???"),
        slow=inet_rows.row,
        rec_type=_record_type,
        control=netlink.control,
        matcher=ctx.matcher,
        proc=p.process if p.show_proc else None,
        numeric=p.resolver.numeric,
        hosts=p.resolver.resolve_hosts,
        ext=inet_rows.ext_wanted,
        ext_options=bool(opts.show_options),
        ext_numeric=bool(opts.numeric),
        ext_lead="" if opts.oneline else "\n\t",
        timers=abi.TIMER_NAMES,
    )


def _receiver(sock: Any, request: bytes | None, dump: _Dump) -> None:
    """A receive thread: send the request (None: sent already), queue every datagram of
    the dump, then _END (or the exception that stopped it). The socket is closed before
    that last item: a dump that waits for a descriptor (RLIMIT_NOFILE, see _netlink) can
    then have it.

    Whatever the thread raises, from its first line to the socket's close, is that last
    item: the main thread waits on the queue, and an exception left to ``_thread`` would
    only be printed ("Exception ignored in thread started by") while the main thread
    waited for ever. Taken by :func:`_take` (or :func:`_closed`), it is raised there, as
    the same failure in :func:`_pulled`, in the main thread, is raised."""
    end: Any = _END
    try:
        dump_end = core().dump_end  # type: ignore[union-attr]
        put, room, seq = dump.put, dump.room, dump.seq
        if request is not None:
            sock.send(request)
        # netlink.datagrams peeks each length into a 32 KiB buffer (the kernel's cap for
        # a dump datagram) as ss does: a fixed 1 MiB one cost up to 0.5 ms a thread to
        # zero and fault in, for a 300-socket listing; a peek per datagram costs ~1 us
        for buf in netlink.datagrams(sock):
            if room is not None:
                room.get()
            put(buf)
            if dump_end(buf, seq):
                break
    except BaseException as e:
        end = e
    finally:
        end = _close(sock, end)
        dump.put(end)


def _close(sock: Any, end: Any) -> Any:
    """Close a dump's socket; the dump's last item: ``end``, or what the close raised
    when the dump had ended well. An OSError there is ignored, as ss ignores close()'s."""
    try:
        sock.close()
    except OSError:
        pass
    except BaseException as e:
        return e if end is _END else end
    return end


def _start_dump(
    family: int, protocol: int, ctx: Context, threads: bool | None = None
) -> _Dump | None:
    """Open a socket and start a receive thread for one family's dump (``threads``:
    whether threads may be started, :func:`_threads_allowed`; None: ask)."""
    # (not for a small table: see _start_combined); before the socket, which may be the
    # last descriptor RLIMIT_NOFILE leaves (loading the library takes one)
    from _queue import SimpleQueue

    if threads is None:
        threads = _threads_allowed()  # (it opens a file: before the socket too)
    try:
        sock = netlink.open_diag()
    except OSError:
        return None
    ext = plan.idiag_ext(ctx.opts)
    request = plan.inet_request(
        family, protocol, ctx.sel.states, ext, ctx.bytecode, plan.storage_nest(ctx.opts)
    )
    seq = netlink.HDR_UNPACK(request, 0)[3]
    if threads:
        room: SimpleQueue[None] = SimpleQueue()
        for _ in range(_AHEAD):
            room.put(None)
        queue: SimpleQueue[Any] = SimpleQueue()
        dump = _Dump(seq, queue.get, queue.put, room)
        try:
            _thread.start_new_thread(_receiver, (sock, request, dump))
        except (RuntimeError, MemoryError):  # no thread to spare (RLIMIT_NPROC reached)
            pass
        else:
            return dump
    # under a memory cap (a thread's stack is a share of it, and a thread that runs out
    # of memory may never return: see kernel.rlimit), or with no thread to spare: the
    # main thread receives each datagram when the rows need it, as ss's dumps do
    return _Dump(seq, _pulled(sock, request, seq).__next__, _unused, None)


def _pulled(sock: Any, request: bytes, seq: int) -> Iterator[Any]:
    """:func:`_receiver`'s items, received in the caller's thread one at a time as they
    are taken: the request is sent at the first, the socket closed before the last."""
    end: Any = _END
    try:
        dump_end = core().dump_end  # type: ignore[union-attr]
        sock.send(request)
        for buf in netlink.datagrams(sock):
            yield buf
            if dump_end(buf, seq):
                break
    except GeneratorExit:  # abandoned (an error in the rows): only the socket to close
        _close(sock, end)
        raise
    except BaseException as e:  # what stopped the dump: raised by _take
        end = e
    yield _close(sock, end)


def _unused(item: Any) -> None:
    """The ``put`` of a dump received in the caller's thread: nothing puts to it."""
    raise AssertionError(item)


def _threads_allowed() -> bool:
    """Whether receive threads may be started: not under a memory cap (see
    :mod:`sockscope.kernel.rlimit`)."""
    from sockscope.kernel.rlimit import memory_capped

    return not memory_capped()


def _start_dumps(ctx: Context, protocol: int) -> list[_Dump | int]:
    """The dumps of one inet table, one per selected family, each under way in its
    receive thread; fewer when a netlink socket cannot be opened (none: ss's fallback)."""
    families = plan.dump_families(ctx.sel)
    dumps: list[_Dump | int] = []
    threads = _threads_allowed()  # (read once for the table's dumps)
    for family in families:
        started = _start_dump(family, protocol, ctx, threads)
        if started is None:
            if not dumps:
                return dumps
            # no socket now (RLIMIT_NOFILE: ss needs one descriptor, this two): the
            # family's dump starts when the one before it has closed its socket
            dumps.append(family)
            continue
        dumps.append(started)
    return dumps


def _next(dump: _Dump, maker: Any, out: Rows) -> int:
    """Feed the next datagram of a dump to the maker: its flags (bit 0: the dump ended,
    bit 1: NLM_F_DUMP_INTR). Raises what the kernel or the receive thread raised."""
    buf = _take(dump)
    if buf is None:
        return 1
    flags: int = maker.feed(buf, dump.seq, out)
    return flags


def _take(dump: _Dump) -> Any:
    """The next datagram of a dump, None at its end; raises what the kernel or the
    receive thread raised."""
    item = dump.get()
    if item is _END:
        dump.finished = True
        return None
    if isinstance(item, BaseException):
        dump.finished = True
        raise item
    if dump.room is not None:
        dump.room.put(None)  # its receiver may queue one more
    return item


def _netlink(
    ctx: Context, maker: Any, protocol: int, inet_rows: InetRows | None
) -> Iterator[Rows] | None:
    """inet_show_netlink with both families' dumps under way at once.

    As in the reference (:func:`sockscope.tables.inet.source.inet_netlink`), a first
    dump the kernel refuses before its first record means ss's fallback: None here, and
    the pure-Python path takes the table over (legacy request, /proc). Any later failure
    ends the table quietly, with the rows before it: there ss 7.1 retries the whole
    table and prints them again, which sockscope does not do (QUIRKS.md, "Sources";
    tests/test_middump.py).
    """
    early, ctx.early = ctx.early, None
    if early is not None and early[0] == protocol and isinstance(early[1], list):
        dumps: list[_Dump | int] = early[1]
    else:
        dumps = _start_dumps(ctx, protocol)
    if not dumps:
        return None
    # the first dump up to its first record (or its end), as the reference's _start looks
    first: Rows = []
    dump0 = dumps[0]
    assert not isinstance(dump0, int)  # the first family's dump has its socket
    flags = 0
    failed = False
    try:
        while not flags & 1 and not maker.stats[0]:
            flags |= _next(dump0, maker, first)
    except (NetlinkError, OSError) as e:
        if not maker.stats[0]:
            # the Python path starts the table again, and prints ss's message then
            for dump in dumps:
                if not isinstance(dump, int):
                    _closed(dump)
            return None
        plan.warn_failed(ctx, e)
        failed = True
    return _stream(ctx, maker, dumps, first, flags, failed, inet_rows, protocol)


def _closed(dump: _Dump) -> None:
    """Wait until the receiver of ``dump`` has closed its socket (it puts _END, or what
    it raised, after that). The datagram that ends a dump comes before: the next family's
    dump, the next table's, or a module it imports may need that descriptor (RLIMIT_NOFILE
    at 4 leaves one, all that ss needs). Datagrams still queued (a dump abandoned after
    the first one failed) are dropped, their room given back so that the receiver goes on
    to its end."""
    while not dump.finished:
        item = dump.get()
        if item is _END or isinstance(item, BaseException):
            dump.finished = True
            if isinstance(item, BaseException) and not isinstance(item, _DUMP_ERRORS):
                # not the dump's failure (the table's rows already handle that) but one
                # of the process (MemoryError, a bug): raised as the main thread would
                raise item
        elif dump.room is not None:
            dump.room.put(None)


def _abandon(dumps: list[Any]) -> None:
    """The table ended early: let the receivers of the dumps still under way run to
    their end and close their sockets (:func:`_closed`), instead of leaving them waiting
    for room in their queues for as long as the process lives (--watch, the library)."""
    for dump in dumps:
        if isinstance(dump, _Dump):
            _closed(dump)


def _dump_rows(ctx: Context, dump: _Dump, maker: Any, flags: int) -> Iterator[Rows]:
    """The rest of one dump's rows; the interrupted-dump warning at its end."""
    while not flags & 1:
        out: Rows = []
        try:
            flags |= _next(dump, maker, out)
        except (NetlinkError, OSError):
            if out:
                yield out  # the rows before the failure are shown, as ss does
            raise
        if out:
            yield out
    _closed(dump)
    if flags & 2:
        ctx.warn("Dump was interrupted and may be inconsistent.")


def _stream(
    ctx: Context,
    maker: Any,
    dumps: list[Any],
    first: Rows,
    flags: int,
    failed: bool,
    inet_rows: InetRows | None,
    protocol: int,
) -> Iterator[Rows]:
    try:
        yield first
        if failed:
            _abandon(dumps)
            return
        for k, dump in enumerate(dumps):
            started = _start_dump(dump, protocol, ctx) if isinstance(dump, int) else dump
            if started is None:  # a family that waited for a socket and got none
                return
            yield from _dump_rows(ctx, started, maker, flags if k == 0 else 0)
    except (NetlinkError, OSError) as e:
        # the table ends here, with the rows before the failure: ss 7.1 would retry
        # the whole table and print them again (QUIRKS.md, "Sources")
        plan.warn_failed(ctx, e)
        _abandon(dumps)
        return
    _decoded, made, last_inode, last_fast = maker.stats
    if made and last_fast and inet_rows is not None and inet_rows.p.show_proc:
        inet_rows.sctp_ino = last_inode  # InetRows.row keeps the last inode (SCTP rows)
