"""The CLI's listing loop: every selected table in ss's order, rows into the renderer.

The tables come from the one walk (:func:`sockscope.tables.walk.walk`); the rows from
each table's row function over the run's :class:`~sockscope.render.printer.Printer`.
"""

from __future__ import annotations

from sockscope.tables.context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sockscope.ops.namespaces import Namespace
    from sockscope.ops.procmap import PendingMap, ProcessMap
    from sockscope.options import Options
    from sockscope.query.filter import Filter
    from sockscope.query.selection import Selection
    from sockscope.render.columns import Renderer
    from sockscope.render.jsonout import Writer
    from sockscope.render.printer import Printer
    from sockscope.tables.inet.record import InetSocket
    from sockscope.tables.walk import Table


def make_context(
    sel: Selection,
    opts: Options,
    flt: Filter | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
    warn_raw: Callable[[str], None] | None = None,
) -> Context:
    """The gathering context of a run: filter predicate, kernel bytecode, -K.

    ``warn`` takes a message line (a newline is added), ``warn_raw`` exact text.
    """
    matcher = None if flt is None else flt.matches
    bytecode = None if flt is None else flt.bytecode()
    ctx = Context(sel, opts, matcher, bytecode, environ)
    ctx.warn = warn
    ctx.warn_raw = warn_raw if warn_raw is not None else warn
    if opts.kill:
        from sockscope.ops.destroy import Killer

        ctx.killer = Killer(warn)
    return ctx


def start_dumps(ctx: Context) -> None:
    """Start the kernel dumps of the first table now when it is an inet table that the
    compiled core lists, before the modules that decode and print its rows are imported
    (the walk's and the renderer's): the kernel walks its whole socket hash for each
    dump, about a millisecond even for a few sockets, and meanwhile the main thread
    imports and sets up the columns. A small TCP table is received by the compiled
    core's own thread (:func:`sockscope.tables.inet.plan.prefetch`), a larger one by
    receive threads (:func:`sockscope.tables.inet.fast.start_early`)."""
    from sockscope.tables.inet import plan

    early = plan.prefetch(ctx)
    if early is not None:
        ctx.early = early
        return
    name = plan.first_inet_table(ctx)
    if name is not None:
        from sockscope.tables.inet import fast

        fast.start_early(ctx, name)


def show_all(ctx: Context, printer: Printer, renderer: Renderer) -> None:
    """Dump every selected table in ss's order and queue its rows.

    The cyclic garbage collector is paused meanwhile: a listing allocates a tuple or
    more per socket and none of them takes part in a cycle, so its passes (one per 700
    allocations) would only walk the young objects again and again.
    """
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _show_all(ctx, printer, renderer)
    finally:
        if was_enabled:
            gc.enable()


def _show_all(ctx: Context, printer: Printer, renderer: Renderer) -> None:
    from sockscope.tables.walk import walk

    inet_rows = None
    for table in walk(ctx):
        if table.dg_proto:
            printer.set_proto(table.dg_proto)
        if table.inet:
            if inet_rows is None:
                from sockscope.tables.inet.row import InetRows

                inet_rows = InetRows(printer)  # one per run: SCTP rows look at the last inode
            from sockscope.tables.inet import fast

            chunks = fast.table_rows(ctx, table.name, inet_rows)
            if chunks is None:  # the pure-Python path, the reference
                renderer.extend(map(inet_rows.row_fn(), table.records))  # type: ignore[arg-type]
            else:  # the compiled path: rows made in C, a datagram at a time
                for rows in chunks:
                    renderer.extend(rows)
        else:
            from sockscope.tables import common

            renderer.extend(map(common.row_fn(table.name, printer, ctx), table.records))


def tables(ctx: Context) -> Iterator[Table]:
    """The data path (--json): the selected tables in ss's order, with their records."""
    from sockscope.tables.walk import walk

    return walk(ctx)


def make_renderer(
    slots: tuple[int, ...], write: Callable[[str], object], screen: int, flush: int | None = None
) -> Renderer:
    """The column engine of a run: the C core's ``Renderer``, or the reference engine
    without the core or for a screen so wide (COLUMNS up to INT_MAX) that rows must be
    written in bounded pieces, which only the reference engine does. ``flush``: hand the
    text to ``write`` in pieces of about that many bytes (None: the engine's batches)."""
    from sockscope.accel import core
    from sockscope.render.columns import WIDE_SCREEN

    mod = core()
    if mod is not None and screen <= WIDE_SCREEN:
        if flush is None:
            return mod.Renderer(slots, write, screen)  # type: ignore[no-any-return]
        return mod.Renderer(slots, write, screen, flush)  # type: ignore[no-any-return]
    from sockscope.render.engine import PyRenderer

    return PyRenderer(slots, write, screen, flush)


def text_output(
    sel: Selection,
    opts: Options,
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
    write: Callable[[str], None] | None = None,
    *,
    spare_fds: int | None = None,
) -> tuple[Renderer, Printer]:
    """The column engine and the row context of a text listing (ss's columns for this
    selection, its terminal width, its name resolution), the header queued. The text
    goes to stdout, or to ``write`` when given; ``spare_fds``: the descriptors that
    RLIMIT_NOFILE left at the start (None: plenty)."""
    import sys

    from sockscope.render import columns
    from sockscope.render.names import Resolver
    from sockscope.render.printer import Printer, enabled_slots

    slots = enabled_slots(
        show_netid=not sel.single_db(),
        show_state=not sel.single_state(),
        show_queues=opts.show_queues,
        show_proc=bool(opts.show_processes),
    )
    flush = None
    if write is None:
        out = sys.stdout.buffer
        # into a pipe or a socket, ss's blocks leave as its rows are printed, so a reader
        # that goes away early meets a later block (cli/status.py's _BlockOut): the text
        # comes in pieces of a block, not in one batch made before the first write
        flush = getattr(out, "block_size", None)

        def write(text: str) -> None:
            out.write(text.encode("latin-1"))

    renderer = make_renderer(slots, write, columns.screen_width(1, environ), flush)
    resolver = Resolver(
        numeric=opts.numeric, resolve_hosts=opts.resolve, environ=environ, spare_fds=spare_fds
    )
    printer = Printer(opts, resolver, slots, None if users is None else users.users)
    printer.warn = warn
    if opts.show_header:
        renderer.header()
    return renderer, printer


class DataRows:
    """The data view of a ``--json`` run and its walk: every selected socket's dict, in
    ss's table order, with ss's ``dg_proto`` (the protocol of service names) carried
    from one table to the next as the text rows carry it."""

    def __init__(
        self,
        opts: Options,
        users: ProcessMap | PendingMap | None,
        environ: dict[str, str],
        cgroup_path: Callable[[int], str],
    ) -> None:
        from sockscope.render.names import Resolver
        from sockscope.render.view import View

        # one resolver per view: interface indexes and names are the namespace's
        resolver = Resolver(numeric=opts.numeric, resolve_hosts=opts.resolve, environ=environ)
        view = View.from_options(opts)
        view.ifname = resolver.ifname
        view.cgroup_path = cgroup_path
        self._proto: str | None = None
        if not opts.numeric:
            view.service = lambda port: resolver.service(port, self._proto)
        if opts.show_processes:
            view.owners = None if users is None else users.owners
        self.view = view

    def walk(self, ctx: Context) -> Iterator[tuple[object, dict[str, object]]]:
        """(record, its dict) for every selected socket, as the kernel dumps them."""
        from sockscope.tables.walk import walk

        view = self.view
        for table in walk(ctx):
            if table.dg_proto:
                self._proto = table.dg_proto
            for rec in table.records:
                yield rec, rec.to_dict(view)  # type: ignore[attr-defined]

    def write_lines(self, ctx: Context, writer: Writer) -> None:
        """--json-lines: every selected socket's line, in the order of :meth:`walk`; the
        lines of an inet table the compiled core covers are made there, a datagram at a
        time (the same bytes: see :func:`sockscope.tables.inet.fast.table_lines`)."""
        from sockscope.render.jsonout import HEAD
        from sockscope.tables.inet import fast
        from sockscope.tables.walk import walk

        view = self.view

        def line(rec: InetSocket) -> str:
            return writer.line_text(rec.to_dict(view))

        for table in walk(ctx):
            if table.dg_proto:
                self._proto = table.dg_proto
            chunks = fast.table_lines(ctx, table.name, view, HEAD, line) if table.inet else None
            if chunks is None:
                for rec in table.records:
                    writer.socket(rec.to_dict(view))  # type: ignore[attr-defined]
            else:
                for lines in chunks:
                    writer.lines_out(lines)


def json_entry(
    ns: Namespace,
    summary: bool,
    writer: Writer,
    environ: dict[str, str],
    warn: Callable[[str], None],
) -> dict[str, object]:
    """One namespace's JSON entry: its ``netns`` object and, with ``-s``, its summary (read
    here, inside the namespace; with --json-lines written at once as a line of its own)."""
    from sockscope.render import jsonout

    entry: dict[str, object] = {"netns": ns.to_dict()}
    if summary:
        from sockscope.ops.sockstat import read

        entry["summary"] = jsonout.summary_dict(read(environ, warn))
        if writer.lines:
            writer.line(entry)
    return entry
