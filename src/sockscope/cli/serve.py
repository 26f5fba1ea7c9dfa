"""``--listen ADDR:PORT``: serve ``--metrics`` over HTTP until SIGTERM or SIGINT.

The command's selection, filter, ``-N``, ``--count-by`` and ``--max-series`` are read
once; every scrape of ``/metrics`` runs a fresh collection of them (through
:class:`sockscope.ops.exporter.Collector`: at most one per ``--min-interval`` seconds,
default 1, shared by the scrapes that come meanwhile). ``:PORT`` binds to 127.0.0.1.
With ``-N NAME`` the dumps are NAME's, as everything of ``ss -N`` is, but the listening
socket is made in the caller's namespace: a Prometheus on the host scrapes a namespace
that has no route to it (to serve inside NAME, run ``nsenter --net=... sockscope``).

Messages (stderr): one line when serving starts, one per failed collection (the scrape
gets an HTTP 500 and the server keeps running). Exit statuses: 255 for a bad
``--listen`` word or option combination (ss's argument errors), 1 when the socket
cannot be bound (port in use, address not on this host), 0 after SIGTERM; SIGINT ends
the process by SIGINT after the same graceful shutdown, as Ctrl-C ends ss.
"""

from __future__ import annotations

import os
import signal

from sockscope.errors import ArgumentError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.cli.answers import Answers
    from sockscope.ops.exporter import Collector, Exporter
    from sockscope.ops.procmap import PendingMap, ProcessMap
    from sockscope.tables.context import Context

#: options that make no sense for a server (checked before anything is bound)
_REFUSED = (
    ("textfile", "--textfile"),
    ("watch", "--watch"),
    ("top_view", "--top-view"),
)


def check(answers: Answers, ctx: Context) -> None:
    """Refuse what --listen cannot combine with: -K would close sockets at every scrape."""
    for attr, name in _REFUSED:
        value = getattr(answers, attr)
        if value is not None and value is not False:
            raise ArgumentError(f"sockscope: --listen and {name} cannot be used together")
    if answers.metrics_format != "prometheus":
        raise ArgumentError("sockscope: --listen serves the Prometheus format only")
    if ctx.opts.kill:
        raise ArgumentError("sockscope: --listen and -K cannot be used together")
    if ctx.opts.events:
        raise ArgumentError("sockscope: --listen and -E cannot be used together")
    from sockscope.ops.keys import Lookups, make_keys

    make_keys(answers.count_by or [], Lookups())  # unknown keys: now, not at each scrape


def _bind(family: int, host: str, port: int, collector: Collector, home: int | None) -> Exporter:
    """The exporter, its socket created in namespace ``home`` when given (the socket keeps
    the namespace it was made in; this thread goes back to -N's namespace for the dumps)."""
    from sockscope.ops import exporter, netns

    if home is None:
        return exporter.Exporter(family, host, port, collector)
    back = netns.current()
    try:
        return netns.call_there(
            lambda: netns.setns(home),
            back,
            lambda: exporter.Exporter(family, host, port, collector),
        )
    finally:
        os.close(back)


def run(
    answers: Answers,
    ctx: Context,
    users: ProcessMap | PendingMap | None,
    warn: Callable[[str], None],
    metrics_text: Callable[[Answers, Context, ProcessMap | None, Callable[[str], None]], bytes],
    home: int | None = None,
) -> int:
    """Bind, serve until a signal, shut down; the exit status. ``metrics_text`` is the
    collection of ``--metrics`` (:func:`sockscope.cli.answers.metrics_text`), passed in
    so that this module does not import the one that calls it. ``home`` is an fd on the
    namespace the command started in when ``-N`` left it: the socket is bound there."""
    from sockscope.ops import exporter

    check(answers, ctx)
    assert answers.listen is not None
    family, host, port = exporter.parse_listen(answers.listen)
    opts = ctx.opts
    wants_users = users is not None

    def collect() -> bytes:
        fresh = None
        if wants_users:  # -p: the owners of the sockets of this scrape, not of the start
            from sockscope.ops.procmap import ProcessMap

            fresh = ProcessMap.build(ctx.environ, opts)
        return metrics_text(answers, ctx.fresh(), fresh, warn)

    collector = exporter.Collector(collect, answers.min_interval, warn)
    server = _bind(family, host, port, collector, home)

    def stop(signum: int, _frame: object) -> None:
        server.stop(signum)

    before = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    # the command runs with SIGPIPE's default action, as ss does: a scraper that
    # closes its connection before the response is written must not end the server
    before[signal.SIGPIPE] = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        warn(f"sockscope: serving the metrics on {server.url}")
        server.serve()
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    if server.signum == signal.SIGINT:
        raise KeyboardInterrupt
    return 0
