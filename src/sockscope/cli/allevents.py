"""``-E --all-netns``: the destruction events of every network namespace at once.

Each namespace found at the start gets its own subscription, opened inside it (the socket
stays bound to that namespace), and its own ss ``-E`` state: the filter parsed there (so
``dev NAME`` is that namespace's), the column engine (header with the namespace's first
event, widths carried over from its own earlier rows), the ``-K`` socket. One poll loop
serves them all (:func:`sockscope.ops.follow.follow_each`); each event is handled inside
its namespace and the thread's namespace is restored after it.

* Text: what ss ``-E`` prints inside that namespace, event by event; a line ``# netns
  net:[INODE] name=... pid=... container=...`` comes before the output whenever the
  namespace differs from the one that wrote last. Keeping the lines under each such
  header line, per namespace, gives exactly ss ``-E``'s output there.
* ``--json-lines``: one object per event with the namespace's ``netns`` object, as
  listings write; ``--json``: the ``sockets`` array of those objects, then
  ``namespaces`` (every namespace followed), closed when the run is interrupted.
* ``-s``: each namespace's summary after its ``# netns`` line, before any event.

Namespaces created after the start are not followed. Ctrl-C ends the run as it ends
ss (text) or closes the JSON document (status 0); SIGTERM ends it with status 143 (the
status of a process killed by SIGTERM) or, with JSON, like Ctrl-C. A receive error
(``ENOBUFS`` when events come faster than they are read) or a failed ``-K`` ends it
with ss's status 255.
"""

from __future__ import annotations

import os
import sys

from sockscope.cli.status import EXIT_SIGTERM, Terminated, raise_on_sigterm
from sockscope.errors import EventError, NetlinkError, SockscopeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.cli.allns import Hooks
    from sockscope.cli.argv import Run
    from sockscope.kernel.netlink import Message
    from sockscope.ops.namespaces import Discovery, Namespace, NamespaceDenied
    from sockscope.ops.procmap import PendingMap, ProcessMap
    from sockscope.query.filter import Filter

#: ss's status when following stops on an error
EXIT_ERROR = 255


def follow(
    run: Run,
    found: Discovery,
    parse_here: Callable[[], Filter | None],
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    hooks: Hooks,
    note: Callable[[Discovery, list[tuple[Namespace, NamespaceDenied]]], None],
) -> int:
    """Follow every namespace of ``found`` until interrupted; the exit status. ``note``
    reports the namespaces that could not be entered, once all others are followed."""
    from sockscope.ops import follow as events

    sel = run.sel
    groups = events.groups_for(sel.families, sel.dbs)
    if not groups:
        return EXIT_ERROR  # ss -E with no tcp/udp table: 255, no message
    killers: list[object] = []
    denied: list[tuple[Namespace, NamespaceDenied]] = []

    def on_skip(ns: Namespace, e: object) -> None:
        from sockscope.ops.namespaces import NamespaceDenied

        if isinstance(e, NamespaceDenied):
            denied.append((ns, e))

    def ready() -> None:
        if denied or found.denied_pids:
            note(found, denied)

    def killer_here() -> Callable[[object, int], bool] | None:
        if not run.opts.kill:
            return None
        from sockscope.ops.destroy import Killer

        killer = Killer(hooks.warn)  # opened here: it destroys in this namespace
        killers.append(killer)
        return killer  # type: ignore[return-value]

    raise_on_sigterm()
    sys.stdout.flush()
    try:
        if run.opts.json:
            return _json(run, found, parse_here, users, environ, hooks, on_skip, ready, killer_here)
        return _text(run, found, parse_here, users, environ, hooks, on_skip, ready, killer_here)
    finally:
        for killer in killers:
            killer.close()  # type: ignore[attr-defined]


def _text(
    run: Run,
    found: Discovery,
    parse_here: Callable[[], Filter | None],
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    hooks: Hooks,
    on_skip: Callable[[Namespace, object], None],
    ready: Callable[[], None],
    killer_here: Callable[[], Callable[[object, int], bool] | None],
) -> int:
    from sockscope.cli import listing
    from sockscope.ops import follow as events
    from sockscope.tables.inet.row import InetRows

    out = sys.stdout.buffer
    opts, sel = run.opts, run.sel
    last: list[Namespace | None] = [None]

    def setup(ns: Namespace) -> Callable[[Message], None]:
        head = os.fsencode(ns.header()) + b"\n"

        def write(text: str) -> None:
            if last[0] is not ns:
                out.write(head)
                last[0] = ns
            out.write(text.encode("latin-1"))

        if opts.summary:
            from sockscope.ops.sockstat import read, render

            write(render(read(environ, hooks.warn)))
            out.flush()
        flt = parse_here()
        matcher = None if flt is None else flt.matches
        killer = killer_here()
        renderer, printer = listing.text_output(sel, opts, users, environ, hooks.warn, write)
        row = InetRows(printer).row
        families = sel.families

        def handle(msg: Message) -> None:
            try:
                for rec in events.shown(msg, families, matcher, killer):
                    renderer.add(row(rec))
            finally:
                renderer.finish()  # ss renders and flushes per event, shown or not
                out.flush()

        return handle

    try:
        events.follow_each(
            found.namespaces, events.groups_for(sel.families, sel.dbs), setup, on_skip, ready
        )
    except Terminated:
        out.flush()
        return EXIT_SIGTERM
    except NetlinkError:
        return EXIT_ERROR  # a failed -K, as ss -E -K
    except EventError as e:
        hooks.warn(e.message)
        return EXIT_ERROR
    return 0


def _json(
    run: Run,
    found: Discovery,
    parse_here: Callable[[], Filter | None],
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    hooks: Hooks,
    on_skip: Callable[[Namespace, object], None],
    ready: Callable[[], None],
    killer_here: Callable[[], Callable[[object, int], bool] | None],
) -> int:
    from sockscope.cli import listing
    from sockscope.ops import follow as events
    from sockscope.render import jsonout
    from sockscope.render.names import CgroupMap

    opts, sel = run.opts, run.sel
    lines = opts.json == "lines"
    writer = jsonout.Writer(sys.stdout.buffer, lines)
    cgroups = CgroupMap(hooks.warn)
    followed: list[dict[str, object]] = []

    def setup(ns: Namespace) -> Callable[[Message], None]:
        entry = listing.json_entry(ns, opts.summary, writer, environ, hooks.warn)
        nsdict = entry["netns"]
        followed.append(entry)
        flt = parse_here()
        matcher = None if flt is None else flt.matches
        killer = killer_here()
        view = listing.DataRows(opts, users, environ, cgroups.path).view  # this namespace's names
        tail = writer.tail({"netns": nsdict})
        families = sel.families

        def handle(msg: Message) -> None:
            for rec in events.shown(msg, families, matcher, killer):
                writer.socket(rec.to_dict(view), tail)
                writer.out.flush()

        return handle

    status = 0
    try:
        writer.start(None)
        writer.open_sockets()
        try:
            events.follow_each(
                found.namespaces, events.groups_for(sel.families, sel.dbs), setup, on_skip, ready
            )
        except (KeyboardInterrupt, Terminated):
            pass
        except SockscopeError as e:  # as -E --json reports it
            hooks.report(e)
            status = EXIT_ERROR
        writer.finish(None if lines else {"namespaces": followed})
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return status
