"""The CLI's dump loop: every selected table in ss's order, rows into the renderer.

Ports the sequence of ``*_show()`` calls at the end of ss.c's ``main()``. The sockets
come from :mod:`sockscope.sources` (inet tables) and :mod:`sockscope.tables` (the other
families); the rows from :class:`sockscope.show.Printer`.
"""

from __future__ import annotations

from sockscope.tables.inet import source as sources

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sockscope.render.columns import Renderer
    from sockscope.options import Options
    from sockscope.query.selection import Selection
    from sockscope.render.printer import Printer


def make_context(
    sel: Selection,
    opts: Options,
    flt: object,
    environ: dict[str, str],
    warn: Callable[[str], None],
    warn_raw: Callable[[str], None] | None = None,
) -> sources.Context:
    """The gathering context of a run: filter predicate, kernel bytecode, -K.

    ``warn`` takes a message line (a newline is added), ``warn_raw`` exact text.
    """
    matcher = getattr(flt, "matches", None)
    bytecode = flt.bytecode() if flt is not None else None  # type: ignore[attr-defined]
    ctx = sources.Context(sel, opts, matcher, bytecode, environ)
    ctx.warn = warn
    ctx.warn_raw = warn_raw if warn_raw is not None else warn
    if opts.kill:
        from sockscope.ops.destroy import Killer

        ctx.killer = Killer(warn)
    return ctx


def show_all(
    sel: Selection,
    opts: Options,
    flt: object,
    printer: Printer,
    renderer: Renderer,
    environ: dict[str, str],
    warn: Callable[[str], None],
    warn_raw: Callable[[str], None] | None = None,
) -> None:
    """Dump every selected table in ss's order and queue its rows."""
    ctx = make_context(sel, opts, flt, environ, warn, warn_raw)
    for name, bits in sources.ORDER:
        if not sel.dbs & bits:
            continue
        if name in sources.INET_TABLES:
            if not sel.families & sources.INET_FAMILIES:
                continue
            dg_proto = sources.INET_TABLES[name][2]
            if dg_proto:
                printer.set_proto(dg_proto)
            renderer.extend(map(printer.inet_row_fn(), sources.inet_table(ctx, name)))
        else:
            from sockscope.tables import common as tables

            tables.show(name, ctx, printer, renderer)


def records(
    sel: Selection,
    opts: Options,
    flt: object,
    environ: dict[str, str],
    warn: Callable[[str], None],
    warn_raw: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, str | None, Iterator[object]]]:
    """The data path (--json): per selected table in ss's order, its name, dg_proto and
    matching records. Tables whose module has no ``records(name, ctx)`` yet are skipped."""
    ctx = make_context(sel, opts, flt, environ, warn, warn_raw)
    for name, bits in sources.ORDER:
        if not sel.dbs & bits:
            continue
        if name in sources.INET_TABLES:
            if sel.families & sources.INET_FAMILIES:
                yield name, sources.INET_TABLES[name][2], sources.inet_table(ctx, name)
            continue
        from sockscope.tables import common as tables

        table_records = getattr(tables, "records", None)
        if table_records is not None:
            yield name, None, table_records(name, ctx)
