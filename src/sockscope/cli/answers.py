"""Answers instead of listings: ``--count-by``, ``--top``, ``--sort``, ``--watch`` and
``--top-view``, sockscope's own options (not ss's).

The command's option switch hands these options to :func:`option`, which keeps them on
the run (``run.answers``); once the selection and the filter are read, the command calls
:func:`show`, which answers instead of listing when one of them was given:

* ``--count-by KEY[,KEY...]``: a table ``COUNT KEY... RECV-Q SEND-Q`` (with ``-i`` also
  ``BYTES-ACKED BYTES-RECEIVED RETRANS``), biggest group first; ``--json`` /
  ``--json-lines`` write the groups as data (``{"group": {...}, "count": N, ...}``);
* ``--sort [-]KEY[,...]``: ss's listing, rows in key order, laid out as ss lays out the
  same rows; ``--top N`` keeps the first N groups or rows;
* ``--watch[=SECONDS]``: what changes, one timestamped line per event
  (:mod:`sockscope.ops.watch`);
* ``--top-view``: a full-screen view on a terminal (:mod:`sockscope.cli.top`), else
  ``--watch`` lines;
* ``--metrics``: the selection as Prometheus text exposition (:mod:`sockscope.ops.metrics`,
  :mod:`sockscope.render.prom`), with ``--count-by`` also the groups, with ``-i`` the
  tcp_info histograms and sums; ``--metrics=otlp-json`` writes OTLP/JSON instead
  (:mod:`sockscope.render.otlp`); with ``--all-netns`` every namespace's series;
  ``--textfile DIR`` writes the same text to ``DIR/sockscope.prom`` (a temporary file
  renamed over it, for node_exporter's textfile collector) instead of stdout;
  ``--max-series N`` (default 1000) caps each metric family;
* ``--listen ADDR:PORT`` (``--min-interval SECONDS``): the same text served over HTTP,
  collected afresh for each scrape (:mod:`sockscope.cli.serve`).

Why ``--top-view`` and not a ``sockscope top`` word: a bare word is an ss filter
expression (``ss top`` is a host condition today and fails with "an inet prefix is
expected rather than "top""), so a word would change what an ss command line means.
"""

from __future__ import annotations

import contextlib
import os
import sys

from sockscope.errors import ArgumentError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from sockscope.cli.argv import Run
    from sockscope.ops.procmap import PendingMap, ProcessMap
    from sockscope.options import Options
    from sockscope.query.filter import Filter
    from sockscope.tables.context import Context


class Answers:
    """The answer options of one run."""

    __slots__ = (
        "count_by",
        "listen",
        "max_series",
        "metrics",
        "metrics_format",
        "min_interval",
        "sort",
        "textfile",
        "top",
        "top_view",
        "watch",
    )

    def __init__(self) -> None:
        self.count_by: list[str] | None = None
        self.sort: list[str] | None = None
        self.top: int | None = None
        self.watch: float | None = None
        self.top_view = False
        self.metrics = False
        self.metrics_format = "prometheus"
        self.textfile: str | None = None
        self.max_series = 1000
        self.listen: str | None = None
        self.min_interval = 1.0


def _number(text: str, what: str, minimum: float) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum:
        raise ArgumentError(f'sockscope: invalid {what} "{text}"')
    return value


def option(run: Run, key: str, value: str) -> None:
    """One of sockscope's answer options, in getopt order (the last one of a kind wins)."""
    from sockscope.ops.keys import split_words

    found = run.answers
    if found is None:
        found = run.answers = Answers()
    if key == "count-by":
        found.count_by = split_words(value)
    elif key == "sort":
        found.sort = split_words(value)
    elif key == "top":
        if not value.isdigit():
            raise ArgumentError(f'sockscope: invalid --top "{value}" (a count)')
        found.top = int(value)
    elif key == "watch":
        found.watch = _number(value, "--watch interval", 0.01) if value else 0.0
    elif key == "top-view":
        found.top_view = True
    elif key == "metrics":
        if value not in ("", "prometheus", "otlp-json"):
            raise ArgumentError(
                f'sockscope: invalid --metrics format "{value}" (prometheus or otlp-json)'
            )
        found.metrics = True
        found.metrics_format = value or "prometheus"
    elif key == "textfile":
        if not value:
            raise ArgumentError("sockscope: --textfile needs a directory")
        found.metrics = True
        found.textfile = value
    elif key == "max-series":
        if not value.isdigit() or int(value) < 1:
            raise ArgumentError(f'sockscope: invalid --max-series "{value}" (a count, 1 or more)')
        found.max_series = int(value)
    elif key == "listen":
        found.metrics = True
        found.listen = value
    elif key == "min-interval":
        found.min_interval = _number(value, "--min-interval", 0.0)


def show(
    run: Run,
    flt: Filter | None,
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
    warn_raw: Callable[[str], None],
) -> int | None:
    """Answer instead of listing when an answer option was given; None otherwise."""
    answers = run.answers
    if answers is None:
        return None
    from sockscope.cli import listing

    opts: Options = run.opts
    _no_events(opts, answers)
    sel = run.sel
    if answers.listen is not None:
        from sockscope.cli import serve

        ctx = listing.make_context(sel, opts, flt, environ, warn, warn_raw)
        return serve.run(answers, ctx, users, warn, metrics_text, run.home_netns)
    if answers.top_view or answers.watch is not None:
        from sockscope.cli import top

        return top.run(answers, sel, opts, flt, environ, warn)
    ctx = listing.make_context(sel, opts, flt, environ, warn, warn_raw)
    if answers.metrics or answers.textfile is not None:
        return _metrics(answers, ctx, users, warn)
    if answers.count_by is not None:
        return _count(answers, ctx, opts, users, warn)
    if answers.sort is not None or answers.top is not None:
        return _sorted(answers, ctx, opts, users, environ, warn)
    return None


def per_namespace(run: Run) -> bool:
    """Whether ``--all-netns`` answers namespace by namespace, in its walk: ``--sort`` and
    ``--top`` alone sort each namespace's block of text as ss would be sorted there (with
    ``--json``, the sockets of every namespace in one order); the other answer options
    go to :func:`show_all_netns`."""
    answers = run.answers
    assert answers is not None
    _no_events(run.opts, answers)
    return (
        answers.count_by is None
        and answers.watch is None
        and not answers.top_view
        and not answers.metrics
    )


def show_all_netns(
    run: Run,
    flt: Filter | None,
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
    warn_raw: Callable[[str], None],
) -> int:
    """The answer options with ``--all-netns`` that look at every namespace at once (see
    :func:`per_namespace` for the others).

    * ``--count-by``: one count over every namespace (each record carries its namespace,
      so ``netns`` and ``container`` are keys);
    * ``--watch`` / ``--top-view``: every namespace watched at once, keyed by (namespace
      inode, cookie);
    * ``--metrics``: one exposition, each namespace's series labelled with it.
    """
    answers = run.answers
    assert answers is not None
    opts: Options = run.opts
    _no_events(opts, answers)
    if answers.top_view or answers.watch is not None:
        from sockscope.cli import top

        sel = run.sel
        return top.run(answers, sel, opts, flt, environ, warn, all_netns=True)
    from sockscope.cli import listing
    from sockscope.ops import namespaces as nsops
    from sockscope.render.view import View

    ctx = listing.make_context(run.sel, opts, flt, environ, warn, warn_raw)

    def records(base: Context = ctx) -> Iterator[object]:
        view = View()
        for space, rec in nsops.listing("all", lambda: _records(base.fresh())):
            rec.attach(view, None, space)  # type: ignore[attr-defined]
            yield rec

    if answers.listen is not None:
        from sockscope.cli import serve

        def every_namespace(
            a: Answers, c: Context, u: ProcessMap | None, w: Callable[[str], None]
        ) -> bytes:
            # each scrape walks the namespaces afresh (they come and go between scrapes)
            return metrics_text(a, c, u, w, records(c))

        return serve.run(answers, ctx, users, warn, every_namespace, run.home_netns)
    if answers.metrics:
        return _metrics(answers, ctx, users, warn, records())
    return _count(answers, ctx, opts, users, warn, records())


def _no_events(opts: Options, answers: Answers) -> None:
    """``-E`` with an answer option: refused, not ignored.

    ``-E`` reports sockets as they are destroyed, never the ones that open, so a count or
    an order it kept up to date would drift from the truth; ``--watch`` already reads the
    destruction events (its ``closed`` lines) between its snapshots.
    """
    if not opts.events:
        return
    given = next(
        name
        for name, on in (
            ("--watch", answers.watch is not None),
            ("--top-view", answers.top_view),
            ("--metrics", answers.metrics),
            ("--count-by", answers.count_by is not None),
            ("--sort", answers.sort is not None),
            ("--top", True),
        )
        if on
    )
    raise ArgumentError(
        f"sockscope: {given} cannot be combined with -E: -E follows sockets as they close,"
        " the answer options look at snapshots (--watch reports closed sockets from the"
        " same events)"
    )


def _records(ctx: Context) -> Iterator[object]:
    from sockscope.cli import listing

    for table in listing.tables(ctx):
        yield from table.records


def _count(
    answers: Answers,
    ctx: Context,
    opts: Options,
    users: ProcessMap | PendingMap | None,
    warn: Callable[[str], None],
    records: Iterable[object] | None = None,
) -> int:
    from sockscope.ops import aggregate
    from sockscope.ops.keys import lookups, make_keys

    words = answers.count_by or []
    keys = make_keys(words, lookups(words, users, ctx.environ, warn))
    counter = aggregate.Counter(keys, info=bool(opts.show_tcpinfo))
    counter.add(_records(ctx) if records is None else records)
    groups = counter.groups(answers.top)
    out = sys.stdout.buffer
    if opts.json:
        from sockscope.render import jsonout

        jsonout.write_groups(out, [g.to_dict() for g in groups], opts.json == "lines")
    else:
        out.write(
            aggregate.table_text(groups, [k.name for k in keys], opts.show_header).encode(
                "utf-8", "surrogateescape"
            )
        )
    out.flush()
    return 0


def _metrics(
    answers: Answers,
    ctx: Context,
    users: ProcessMap | PendingMap | None,
    warn: Callable[[str], None],
    records: Iterable[object] | None = None,
) -> int:
    if answers.textfile is not None and answers.metrics_format != "prometheus":
        raise ArgumentError("sockscope: --textfile writes the Prometheus format only")
    data = metrics_text(answers, ctx, users, warn, records)
    if answers.textfile is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    _write_textfile(answers.textfile, data)
    return 0


def metrics_text(
    answers: Answers,
    ctx: Context,
    users: ProcessMap | PendingMap | None,
    warn: Callable[[str], None],
    records: Iterable[object] | None = None,
) -> bytes:
    """The text of one collection (``--metrics``, ``--textfile``): the Prometheus
    exposition, or OTLP/JSON for ``--metrics=otlp-json``. ``records``: every namespace's
    (``--all-netns``), each carrying its namespace; else the context's own dump.

    The home namespace's sockstat is read first, where this thread is (its counters are
    the namespace's; the records' pass does not change them)."""
    from sockscope.ops import metrics, sockstat
    from sockscope.ops.keys import lookups

    words = answers.count_by or []
    names = ["netid", "state", "local_address", "local_port", *words]
    found = lookups(names, users, ctx.environ, warn)
    pairs = sockstat.read_pairs(ctx.environ)
    samples = metrics.collect(
        _records(ctx) if records is None else records,
        found,
        words,
        answers.max_series,
        info=bool(ctx.opts.show_tcpinfo),
        home=metrics.here(),
        sockstat=pairs,
        spaces=records is not None,
    )
    if answers.metrics_format == "otlp-json":
        import time

        from sockscope.render import otlp

        # the CLI layer never imports the front door: the package's version as loaded
        version = str(getattr(sys.modules.get("sockscope"), "__version__", ""))
        doc = otlp.document(samples, time.time_ns(), {"host.name": os.uname().nodename}, version)
        text = otlp.dumps(doc)
    else:
        from sockscope.render import prom

        text = prom.exposition(samples)
    return text.encode("utf-8", "surrogateescape")


def _write_textfile(directory: str, data: bytes) -> None:
    """``DIR/sockscope.prom`` replaced atomically: a temporary file in DIR, then rename."""
    import tempfile

    from sockscope.errors import SockscopeError

    try:
        fd, tmp = tempfile.mkstemp(prefix=".sockscope.prom.", dir=directory)
    except OSError as exc:
        raise SockscopeError(f"sockscope: --textfile {directory}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(directory, "sockscope.prom"))
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SockscopeError(f"sockscope: --textfile {directory}: {exc.strerror}") from None


def _sorted(
    answers: Answers,
    ctx: Context,
    opts: Options,
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
) -> int:
    from sockscope.cli import listing
    from sockscope.ops import aggregate
    from sockscope.ops.keys import lookups, make_keys

    names, descending = aggregate.parse_sort(answers.sort or [])
    keys = make_keys(names, lookups(names, users, environ, warn))
    if opts.json:
        return _sorted_json(answers, ctx, opts, users, environ, warn, keys, descending)
    from sockscope.tables import common
    from sockscope.tables.inet.row import InetRows

    renderer, printer = listing.text_output(ctx.sel, opts, users, environ, warn)
    records: list[object] = []
    rows: list[tuple[str, ...]] = []
    inet_rows = None
    for table in listing.tables(ctx):
        if table.dg_proto:
            printer.set_proto(table.dg_proto)
        if table.inet:
            inet_rows = inet_rows or InetRows(printer)
            row = inet_rows.row_fn()
        else:
            row = common.row_fn(table.name, printer, ctx)
        for rec in table.records:
            records.append(rec)
            rows.append(row(rec))  # type: ignore[arg-type]
    order = aggregate.sort_order(records, keys, descending)
    if answers.top is not None:
        order = order[: answers.top]
    renderer.extend(rows[i] for i in order)
    renderer.finish()
    sys.stdout.buffer.flush()
    return 0


def _sorted_json(
    answers: Answers,
    ctx: Context,
    opts: Options,
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
    keys: Sequence[object],
    descending: Sequence[bool],
) -> int:
    from sockscope.cli import listing
    from sockscope.ops import aggregate
    from sockscope.render import jsonout
    from sockscope.render.names import CgroupMap

    rows = listing.DataRows(opts, users, environ, CgroupMap(warn).path)
    dicts: list[dict[str, object]] = []
    records: list[object] = []
    for rec, data in rows.walk(ctx):
        records.append(rec)
        dicts.append(data)
    order = aggregate.sort_order(records, keys, descending)  # type: ignore[arg-type]
    if answers.top is not None:
        order = order[: answers.top]
    writer = jsonout.Writer(sys.stdout.buffer, opts.json == "lines")
    writer.start(None)
    writer.sockets(dicts[i] for i in order)
    writer.finish()
    return 0


def isatty(fd: int = 1) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
