"""``--json`` / ``--json-lines``: the run whose sockets are written as data (-s's
summary first, ``-E``'s events as they come), not as ss's text.

Imported only for those options: a text listing never loads it.
"""

from __future__ import annotations

import _signal as signal  # type: ignore[import-not-found]  # the C module: signal.py builds enums (~3 ms)
import sys

from sockscope.cli.status import report, restore_handlers, to_devnull, warn, warn_raw
from sockscope.errors import SockscopeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sockscope.cli.argv import Run
    from sockscope.ops.procmap import PendingMap, ProcessMap
    from sockscope.query.filter import Filter
    from sockscope.render.jsonout import Writer
    from sockscope.render.view import View


class Signalled(KeyboardInterrupt):
    """SIGTERM, SIGHUP or SIGQUIT while a ``--json`` document is open: raised like Ctrl-C's
    KeyboardInterrupt, so that the document is closed, and then the process dies by
    ``signum`` as ss does (see :func:`close_on_signals`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def close_on_signals() -> dict[int, object]:
    """Make SIGTERM, SIGHUP and SIGQUIT raise :class:`Signalled` where they would kill the
    process (their action is the default: one that ``nohup`` or a caller set to ignore
    stays ignored). Returns the handlers replaced, for :func:`restore_handlers`."""

    def stop(signum: int, _frame: object) -> None:
        raise Signalled(signum)

    replaced: dict[int, object] = {}
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        try:
            if signal.getsignal(signum) == signal.SIG_DFL:
                replaced[signum] = signal.signal(signum, stop)
        except (ValueError, OSError):  # not the main thread: main(argv) from a library
            break
    return replaced


def _events_json(run: Run, flt: Filter | None, writer: Writer, view: View, groups: int) -> int:
    """-E with --json/--json-lines: one object per destroyed socket, flushed as it comes.

    The --json document stays open while events arrive and is closed when the run is
    interrupted, so what was written is a complete document.
    """
    from sockscope.ops import follow
    from sockscope.ops.destroy import Killer

    sel, opts = run.sel, run.opts
    killer = Killer(warn) if opts.kill else None
    writer.open_sockets()
    status = 0
    # SIGTERM/SIGHUP/SIGQUIT (Signalled, from show) end the run like Ctrl-C: the
    # --json document gets its closing and the status is 0
    try:
        matcher = None if flt is None else flt.matches
        for rec in follow.watch(groups, sel.families, matcher, killer):
            writer.socket(rec.to_dict(view))
            writer.out.flush()
    except KeyboardInterrupt:
        pass
    except SockscopeError as e:
        report(e)
        status = 255
    finally:
        if killer is not None:
            killer.close()
    writer.finish()
    return status


def _quiet_on_closed_pipe() -> None:
    """JSON output: a reader that goes away (``| head -1``) ends the run with status 0 and
    no message, however much was left to write. Writes fail with EPIPE (caught below)
    instead of killing the process by SIGPIPE, which a shell reports as 141. The text
    output keeps ss's behaviour: ss dies of SIGPIPE when its reader leaves early."""
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    except (ValueError, OSError):  # not the main thread (library use of main())
        pass


def show(
    run: Run,
    flt: Filter | None,
    users: ProcessMap | PendingMap | None,
    environ: dict[str, str],
    listing: bool = True,
) -> int:
    """--json / --json-lines: the same sockets as the text, written as data (jsonout)."""
    from sockscope.cli import listing as gather
    from sockscope.render import jsonout
    from sockscope.render.names import CgroupMap

    opts, sel = run.opts, run.sel
    rows = gather.DataRows(opts, users, environ, CgroupMap(warn).path)
    writer = jsonout.Writer(sys.stdout.buffer, opts.json == "lines")
    summary = None if run.summary is None else jsonout.summary_dict(run.summary)
    groups = 0
    if listing and opts.events:
        from sockscope.ops import follow

        groups = follow.groups_for(sel.families, sel.dbs)
        if not groups:
            # nothing is written (text -E exits 255 silently, as ss): no half document
            warn("-E: no tcp/udp events to follow with these tables and families")
            return 255
    _quiet_on_closed_pipe()
    replaced = close_on_signals()
    try:
        writer.start(summary)
        if listing and opts.events:
            return _events_json(run, flt, writer, rows.view, groups)
        if listing:
            writer.open_sockets()
            try:
                ctx = gather.make_context(sel, opts, flt, environ, warn, warn_raw)
                if writer.lines:
                    rows.write_lines(ctx, writer)
                else:
                    for _rec, data in rows.walk(ctx):
                        writer.socket(data)
            except KeyboardInterrupt:
                # Ctrl-C, or Signalled: what was written becomes a complete document,
                # then ss's death by that signal (main)
                writer.finish()
                raise
        writer.finish()
    except BrokenPipeError:
        # the reader went away (| head): end quietly, and keep the final flush silent
        to_devnull(sys.stdout.fileno())
    finally:
        restore_handlers(replaced)
    return 0
