"""``--watch`` lines and the ``--top-view`` screen.

``--watch[=SECONDS]`` prints one line per change (:mod:`sockscope.ops.watch`), each
starting with its local time (ISO 8601, microseconds), flushed as it is written so a
pipe sees it at once; ``--json-lines`` (or ``--json``) writes each as a JSON object with
``time``, ``event`` and the socket's data. Ctrl-C (SIGINT) or SIGTERM ends it: what was
written stays complete. SIGINT ends the command as it ends ss (main() lets the process die
of it); SIGTERM returns 143, the shell's status for a process killed by SIGTERM.

``--top-view`` redraws a full screen every interval (stdlib :mod:`curses`): the groups
of ``--count-by`` when given, else the busiest connections by rate (bytes acked plus
received per second; tcp_info is asked for). ``q`` quits. When stdout is not a terminal
it prints the ``--watch`` lines instead.
"""

from __future__ import annotations

import os
import sys
import time

from sockscope.cli.status import EXIT_SIGTERM, Terminated, raise_on_sigterm

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator
    from typing import ClassVar

    from sockscope.cli.answers import Answers
    from sockscope.ops.namespaces import Namespace
    from sockscope.ops.watch import Change, Watcher, Watchers
    from sockscope.options import Options
    from sockscope.query.filter import Filter
    from sockscope.query.selection import Selection

#: the interval of --watch and --top-view when none is given, seconds
DEFAULT_INTERVAL = 1.0


def run(
    answers: Answers,
    sel: Selection,
    opts: Options,
    flt: Filter | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
    all_netns: bool = False,
) -> int:
    interval = answers.watch or DEFAULT_INTERVAL
    if answers.top_view and _isatty(sys.stdout):
        return _screen(answers, sel, opts, flt, environ, warn, interval, all_netns)
    return watch_lines(sel, opts, flt, interval, all_netns, warn)


def _isatty(stream: object) -> bool:
    try:
        return os.isatty(stream.fileno())  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return False


def stamp(when: float) -> str:
    """Local time, ISO 8601 with microseconds: ``2025-06-01T16:22:47.123456``."""
    whole = int(when)
    micros = round((when - whole) * 1e6)
    if micros >= 1000000:
        whole, micros = whole + 1, micros - 1000000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(whole)) + f".{micros:06d}"


def _end(family: int, address: str, port: int) -> str:
    return f"[{address}]:{port}" if family == 10 else f"{address}:{port}"


class Ends:
    """The Local and Peer Address:Port texts of a UNIX, PACKET or NETLINK record, as ss's
    listing with the same options shows them (the table's row cells: ``name inode`` for
    UNIX, ``proto:iface`` for PACKET, ``proto:process`` for NETLINK, ``*`` for no peer)."""

    #: the table of each record family (AF_UNIX, AF_PACKET, AF_NETLINK)
    TABLES: ClassVar[dict[int, str]] = {1: "unix", 17: "packet", 16: "netlink"}

    def __init__(self, opts: Options, environ: dict[str, str] | None = None) -> None:
        self.opts = opts
        self.environ = dict(os.environ) if environ is None else environ
        self._rows: dict[str, Callable[[object], tuple[str, ...]]] = {}

    def __call__(self, rec: object) -> tuple[str, str]:
        name = self.TABLES[rec.family]  # type: ignore[attr-defined]
        row = self._rows.get(name)
        if row is None:
            from sockscope.query.selection import Selection
            from sockscope.render.names import Resolver
            from sockscope.render.printer import Printer
            from sockscope.tables import common
            from sockscope.tables.context import Context

            opts, environ = self.opts, self.environ
            resolver = Resolver(numeric=opts.numeric, resolve_hosts=opts.resolve, environ=environ)
            # every slot, the Process one empty: Netid .. Peer Port are slots 0 .. 7
            printer = Printer(opts, resolver, tuple(range(10)))
            printer.show_proc = False
            ctx = Context(Selection(), opts, environ=environ)
            row = self._rows[name] = common.row_fn(name, printer, ctx)
        cells = row(rec)
        return _bytes_text(cells[4] + cells[5]), _bytes_text(cells[6] + cells[7])


def _bytes_text(cell: str) -> str:
    """A row cell holds a name's bytes as latin-1 text (the listing writes it back as
    latin-1); a --watch line is written as UTF-8 with surrogateescape: the same bytes."""
    try:
        return cell.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return cell


def line(change: Change, ends: Ends | None = None) -> str:
    """One change as a text line (no newline); ``ends`` renders the addresses of the
    non-inet records (default: ss's default options)."""
    s = change.socket
    state = s.state_name
    if change.kind == "state" and change.old_state is not None:
        state = f"{change.old_state}->{state}"
    parts = [stamp(change.time), change.kind]
    if change.space is not None:
        parts.append(change.space.label)  # net:[INODE], as the --all-netns header line
    if s.family in Ends.TABLES:
        if ends is None:
            from sockscope.options import Options

            ends = Ends(Options())
        parts += [s.netid, state, *ends(s)]
    else:
        parts += [
            s.netid,
            state,
            _end(s.family, s.local_address, s.local_port),  # type: ignore[arg-type]
            _end(s.family, s.peer_address, s.peer_port),  # type: ignore[arg-type]
        ]
    if change.lifetime is not None:
        parts.append(f"lifetime:{change.lifetime:.3f}s")
    if change.lifetime_max is not None:
        parts.append(f"lifetime:<{change.lifetime_max:.3f}s")
    if change.rates is not None:
        parts += [f"{k}/s:{v:.1f}" for k, v in change.rates.items()]
    elif change.counters is not None:
        parts += [f"{k}:{v}" for k, v in change.counters.items()]
    return " ".join(parts)


def watch_lines(
    sel: Selection,
    opts: Options,
    flt: Filter | None,
    interval: float,
    all_netns: bool = False,
    warn: Callable[[str], None] | None = None,
) -> int:
    """``--watch``: a line (or JSON line) per change, flushed, until interrupted; with
    ``all_netns`` every namespace at once (text lines name it after the kind)."""
    from sockscope.ops import watch

    out = sys.stdout.buffer
    view = None
    ends = Ends(opts)
    if opts.json:
        from sockscope.render import jsonout
        from sockscope.render.view import View

        view = View.from_options(opts)
    raise_on_sigterm()
    matcher = None if flt is None else flt.matches
    bytecode = None if flt is None else flt.bytecode()
    spaces, on_skip = _spaces(all_netns, warn)
    stream: Generator[Change, None, None] = watch.changes(
        sel,
        interval,
        bool(opts.show_tcpinfo),
        matcher,
        bytecode,
        spaces=spaces,
        on_skip=on_skip,
        flt=flt,
    )
    try:
        for change in stream:
            if view is not None:
                jsonout.write_event(out, change.to_dict(view))
            else:
                out.write((line(change, ends) + "\n").encode("utf-8", "surrogateescape"))
                out.flush()
    except Terminated:
        return EXIT_SIGTERM
    finally:
        stream.close()
        out.flush()
    return 0


def _spaces(
    all_netns: bool, warn: Callable[[str], None] | None
) -> tuple[list[Namespace] | None, Callable[[Namespace, Exception], None] | None]:
    """The namespaces to watch (None: the current one only) and what to do with one that
    cannot be entered (a note on stderr)."""
    if not all_netns:
        return None, None
    from sockscope.errors import FilterError
    from sockscope.ops.namespaces import NamespaceDenied, discover

    def on_skip(ns: Namespace, e: Exception) -> None:
        if warn is not None and isinstance(e, NamespaceDenied):
            warn(f"sockscope: --all-netns: {e.message}; not watched")
        elif warn is not None and isinstance(e, FilterError):
            # a dev NAME that names no device there (ss run there: "Cannot parse device.")
            warn(f"sockscope: --all-netns: {ns.label}: {e.message} not watched")

    return list(discover().namespaces), on_skip


def _screen(
    answers: Answers,
    sel: Selection,
    opts: Options,
    flt: Filter | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
    interval: float,
    all_netns: bool = False,
) -> int:
    import curses

    raise_on_sigterm()
    view = TopView(answers, sel, opts, flt, environ, warn, interval, all_netns)
    try:
        curses.wrapper(view.loop)
    except Terminated:
        return EXIT_SIGTERM
    finally:
        view.close()
    return 0


class TopView:
    """What the screen shows, refreshed every interval."""

    def __init__(
        self,
        answers: Answers,
        sel: Selection,
        opts: Options,
        flt: Filter | None,
        environ: dict[str, str],
        warn: Callable[[str], None],
        interval: float,
        all_netns: bool = False,
    ) -> None:
        self.answers = answers
        self.all_netns = all_netns
        self.sel = sel
        self.opts = opts
        self.flt = flt
        self.environ = environ
        self.warn = warn
        self.interval = interval
        self.watcher: Watcher | Watchers | None = None
        #: (netns inode, cookie) -> (combined rate, the rate change) of the busiest
        self.rates: dict[tuple[int, int], tuple[float, Change]] = {}
        if answers.count_by is None:
            from sockscope.ops.watch import Watchers, per_namespace

            matcher = None if flt is None else flt.matches
            bytecode = None if flt is None else flt.bytecode()
            # inside each namespace with --all-netns: its dev NAMEs resolved there
            # only inet connections have rates: the other tables are not read
            make = per_namespace(sel, True, matcher, bytecode, False, flt, others=False)
            spaces, on_skip = _spaces(all_netns, None)
            self.watcher = make() if spaces is None else Watchers.each(spaces, make, on_skip)
            self.watcher.baseline()

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()

    def lines(self) -> list[str]:
        if self.answers.count_by is not None:
            return self._groups()
        return self._busiest()

    def _groups(self) -> list[str]:
        from sockscope.cli import listing
        from sockscope.ops import aggregate
        from sockscope.ops.keys import lookups, make_keys

        words = self.answers.count_by or []
        ctx = listing.make_context(self.sel, self.opts, self.flt, self.environ, self.warn)
        keys = make_keys(words, lookups(words, None, self.environ, self.warn))
        counter = aggregate.Counter(keys, info=bool(self.opts.show_tcpinfo))
        if self.all_netns:
            from sockscope.ops import namespaces as nsops
            from sockscope.render.view import View

            view = View()
            for space, rec in nsops.listing("all", lambda: _records(ctx.fresh())):
                rec.attach(view, None, space)  # type: ignore[attr-defined]
                counter.add((rec,))
        else:
            for table in listing.tables(ctx):
                counter.add(table.records)
        groups = counter.groups(self.answers.top)
        return aggregate.table_text(groups, [k.name for k in keys]).splitlines()

    def _busiest(self) -> list[str]:
        assert self.watcher is not None
        for change in self.watcher.step():
            if change.kind == "rate" and change.rates:
                total = change.rates["bytes_acked"] + change.rates["bytes_received"]
                self.rates[change.netns, change.cookie] = (total, change)
            elif change.kind == "closed":
                self.rates.pop((change.netns, change.cookie), None)
        busiest = sorted(self.rates.values(), key=lambda item: -item[0])
        self.rates = {}
        where = " NETNS" if self.all_netns else ""
        out = [f"SEND-B/S RECV-B/S RETRANS/S{where} NETID STATE LOCAL PEER"]
        for _total, c in busiest[: self.answers.top or None]:
            s = c.socket
            r = c.rates or {}
            out.append(
                f"{r.get('bytes_acked', 0):9.0f} {r.get('bytes_received', 0):9.0f}"
                f" {r.get('retrans', 0):9.1f}"
                f"{'' if c.space is None else ' ' + c.space.label} {s.netid} {s.state_name}"
                f" {_end(s.family, s.local_address, s.local_port)}"  # type: ignore[arg-type]
                f" {_end(s.family, s.peer_address, s.peer_port)}"  # type: ignore[arg-type]
            )
        return out

    def loop(self, screen: object) -> None:
        import curses

        win: curses.window = screen  # type: ignore[assignment]
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        win.timeout(int(self.interval * 1000))
        while True:
            body = self.lines()
            height, width = win.getmaxyx()
            win.erase()
            title = f"sockscope --top-view  {stamp(time.time())}  every {self.interval:g}s  q: quit"
            win.addnstr(0, 0, title, max(width - 1, 0), curses.A_REVERSE)
            for i, text in enumerate(body[: max(height - 2, 0)], 2):
                win.addnstr(i, 0, text, max(width - 1, 0))
            win.refresh()
            key = win.getch()
            if key in (ord("q"), ord("Q")):
                return


def _records(ctx: object) -> Iterator[object]:
    from sockscope.cli import listing

    for table in listing.tables(ctx):  # type: ignore[arg-type]
        yield from table.records
