"""``--all-netns``: the listing of every network namespace of the host, one after another.

The namespaces come from :func:`sockscope.ops.namespaces.discover` (names, nsfs bind
mounts and every process's ``/proc/PID/ns/net``, deduplicated by nsfs inode), in inode
order. For each, the calling thread enters it (``setns``), then the run does exactly what
ss does inside that namespace: text output is a line ``# netns net:[INODE] name=...
pid=... container=...`` followed by ss's own output there (``-s`` summary, header, rows,
column widths of that namespace alone); with ``--json``/``--json-lines`` every socket
gets a ``netns`` object. ``-E`` follows every namespace at once
(:mod:`sockscope.cli.allevents`). The thread's namespace is restored after each one, also when an
error or a signal (KeyboardInterrupt) interrupts it.

What is done once for the host: the option parsing, the syntax check of the filter (it is
parsed again inside each namespace, where ``dev NAME`` resolves), and the ``-p`` process
map. One map serves every namespace: ss inside a namespace scans the same ``/proc`` (the
mount namespace is not changed), and socket inode numbers are allocated host-wide (one
sockfs), so an inode identifies one socket whatever its namespace.

A namespace that has gone between the scan and its turn is skipped silently. One that
cannot be entered (no CAP_SYS_ADMIN) is skipped, and a note at the end says how many were
skipped and why; the exit status is then 1. Processes whose ``ns/net`` cannot be read
(another user's, or one with more capabilities than the caller) get a note too, but do
not change the status: their namespaces may well be among those listed.
"""

from __future__ import annotations

import io
import os
import sys
from functools import partial

from sockscope.cli.status import exit_status
from sockscope.errors import ArgumentError, SockscopeError
from sockscope.ops.namespaces import NamespaceDenied, NamespaceGone, call_inside, discover

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.cli.answers import Answers
    from sockscope.cli.argv import Run
    from sockscope.ops.namespaces import Discovery, Namespace
    from sockscope.ops.procmap import PendingMap, ProcessMap
    from sockscope.query.filter import Filter
    from sockscope.render.jsonout import Writer

    Parse = Callable[[Run, list[str]], Filter | None]
    Show = Callable[[Run, Filter | None, ProcessMap | PendingMap | None, dict[str, str]], int]


def check(run: Run) -> None:
    """Options that cannot go with ``--all-netns`` (called right after the options)."""
    opts = run.opts
    if opts.net is not None:
        raise ArgumentError("sockscope: --all-netns and -N cannot be used together")
    if opts.dump_file is not None:
        raise ArgumentError("sockscope: --all-netns and -D cannot be used together")


class Hooks:
    """The command's own steps, handed over so that this module does not import it."""

    __slots__ = ("parse", "report", "show", "warn")

    def __init__(
        self,
        parse: Parse,
        show: Show,
        report: Callable[[SockscopeError], None],
        warn: Callable[[str], None],
    ) -> None:
        self.parse = parse
        self.show = show
        self.report = report
        self.warn = warn


def show(
    run: Run,
    args: list[str],
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    summary_only: bool,
    hooks: Hooks,
) -> int:
    """The whole ``--all-netns`` run after the options; returns the exit status."""
    filter_text = None
    if run.filter_fp is not None:
        filter_text = run.filter_fp.read()
        if isinstance(filter_text, str):
            filter_text = filter_text.encode()
        run.filter_fp = io.BytesIO(filter_text)
    flt = hooks.parse(run, args)  # the syntax check, once, before any output
    if run.opts.kill and flt is None:
        raise ArgumentError(
            "sockscope: -K with --all-netns needs a filter expression (without one it would"
            " close every selected socket of every namespace)"
        )
    found = discover()

    def parse_here() -> Filter | None:
        if filter_text is not None:
            run.filter_fp = io.BytesIO(filter_text)
        return hooks.parse(run, args)

    if run.opts.events and not summary_only:
        from sockscope.cli import allevents

        def note(found: Discovery, denied: list[tuple[Namespace, NamespaceDenied]]) -> None:
            _denied_note(found, denied, hooks.warn)

        return allevents.follow(run, found, parse_here, users, environ, hooks, note)
    if run.opts.json:
        return _json(run, found, parse_here, users, environ, summary_only, hooks)
    return _text(run, found, parse_here, users, environ, summary_only, hooks)


def _walk(found: Discovery, hooks: Hooks, body: Callable[[Namespace], int]) -> int:
    """``body(ns)`` inside every namespace; its status, errors reported, skips counted."""
    status = 0
    denied: list[tuple[Namespace, NamespaceDenied]] = []
    for ns in found.namespaces:
        try:
            status = call_inside(ns, partial(body, ns)) or status
        except NamespaceGone:
            continue
        except NamespaceDenied as e:
            denied.append((ns, e))
        except SockscopeError as e:
            hooks.report(e)
            status = exit_status(e)
    if denied or found.denied_pids:
        _denied_note(found, denied, hooks.warn)
    if denied:
        status = status or 1  # a namespace known to exist was not listed
    return status


def _denied_note(
    found: Discovery, denied: list[tuple[Namespace, NamespaceDenied]], warn: Callable[[str], None]
) -> None:
    parts = []
    if denied:
        why = os.strerror(denied[0][1].errno) if denied[0][1].errno else "denied"
        labels = " ".join(ns.label for ns, _e in denied[:5]) + (" ..." if len(denied) > 5 else "")
        parts.append(f"{len(denied)} network namespace(s) could not be entered ({why}: {labels})")
    if found.denied_pids:
        parts.append(
            f"the namespaces of {found.denied_pids} process(es) could not be read (Permission"
            " denied)"
        )
    warn(
        "sockscope: --all-netns: "
        + "; ".join(parts)
        + "; they are not listed. Run as root (CAP_SYS_ADMIN, CAP_SYS_PTRACE) to see them."
    )


def _text(
    run: Run,
    found: Discovery,
    parse_here: Callable[[], Filter | None],
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    summary_only: bool,
    hooks: Hooks,
) -> int:
    out = sys.stdout.buffer
    opts = run.opts

    def body(ns: Namespace) -> int:
        sys.stdout.flush()
        out.write(os.fsencode(ns.header()) + b"\n")
        if opts.summary:
            from sockscope.ops.sockstat import read, render

            text = render(read(environ, hooks.warn))
            out.flush()
            sys.stdout.write(text)
            sys.stdout.flush()
            if summary_only:
                return 0
        flt = parse_here()
        status = hooks.show(run, flt, users, environ)
        out.flush()
        return status

    status = _walk(found, hooks, body)
    sys.stdout.flush()
    return status


def _json(
    run: Run,
    found: Discovery,
    parse_here: Callable[[], Filter | None],
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    summary_only: bool,
    hooks: Hooks,
) -> int:
    """``--json`` / ``--json-lines``: every socket with its ``netns`` object.

    The ``--json`` document ends with ``"namespaces"``: every namespace walked, with its
    ``summary`` under ``-s``. With ``--json-lines`` and ``-s``, each namespace's summary
    is a line of its own (with ``netns``) before its sockets.
    """
    from sockscope.cli import listing as gather
    from sockscope.render import jsonout
    from sockscope.render.names import CgroupMap

    opts = run.opts
    lines = opts.json == "lines"
    writer = jsonout.Writer(sys.stdout.buffer, lines)
    walked: list[dict[str, object]] = []
    cgroups = CgroupMap(hooks.warn)  # cgroups are the host's, whatever the namespace

    def body(ns: Namespace) -> int:
        entry = gather.json_entry(ns, opts.summary, writer, environ, hooks.warn)
        nsdict = entry["netns"]
        walked.append(entry)
        if summary_only:
            return 0
        flt = parse_here()
        # a data view per namespace: interface indexes and names are the namespace's
        rows = gather.DataRows(opts, users, environ, cgroups.path)
        tail = writer.tail({"netns": nsdict})
        writer.open_sockets()
        ctx = gather.make_context(run.sel, opts, flt, environ, hooks.warn)
        try:
            for rec, data in rows.walk(ctx):
                if held is not None:
                    rec.attach(rows.view, None, ns)  # type: ignore[attr-defined]
                    held.append((rec, data, tail))
                else:
                    writer.socket(data, tail)
        finally:
            close = getattr(ctx.killer, "close", None)  # -K's socket was opened in here
            if close is not None:
                close()
        return 0

    # --sort/--top: every namespace's sockets in one order, written after the walk
    answers = run.answers
    held: list[tuple[object, dict[str, object], str]] | None = None
    if answers is not None and not summary_only:
        held = []
    try:
        writer.start(None)
        status = _walk(found, hooks, body)
        if not summary_only:
            writer.open_sockets()
        if held and answers is not None:
            _write_sorted(answers, held, users, environ, hooks.warn, writer)
        writer.finish(None if lines else {"namespaces": walked})
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return status


def _write_sorted(
    answers: Answers,
    held: list[tuple[object, dict[str, object], str]],
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    warn: Callable[[str], None],
    writer: Writer,
) -> None:
    """The sockets of every namespace in ``--sort`` order (ties: namespace walk order),
    cut to ``--top``."""
    from sockscope.ops import aggregate
    from sockscope.ops.keys import lookups, make_keys

    names, descending = aggregate.parse_sort(answers.sort or [])
    keys = make_keys(names, lookups(names, users, environ, warn))
    order = aggregate.sort_order([rec for rec, _d, _t in held], keys, descending)
    if answers.top is not None:
        order = order[: answers.top]
    for i in order:
        _rec, data, tail = held[i]
        writer.socket(data, tail)
