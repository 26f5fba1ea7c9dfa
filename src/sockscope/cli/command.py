"""The ``sockscope`` command: ss's flow from the command line to the exit status.

This is the only module that chooses exit codes (with the helpers of cli/status.py,
which also write the messages). ``main()`` follows ss.c's ``main()`` step by step
(iproute2 7.1): options in getopt order (cli/argv.py), the process map, ``-s``, the
leading ``state``/``exclude`` words, the selection defaults and checks, ``-D``
(cli/dump.py), the filter expression, the columns, the header, ``-E`` or the dumps in
ss's table order, and the final render (cli/listing.py; cli/jsonmode.py for ``--json``).
"""

from __future__ import annotations

import _signal as signal  # type: ignore[import-not-found]  # the C module: signal.py builds enums (~3 ms)
import errno
import gc
import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)
import sys

from sockscope.cli.argv import Run, apply_option, gnu_getopt, prog_name, read_states
from sockscope.cli.status import (
    EXIT_ARGUMENT,
    EXIT_SIGTERM,
    OUTPUT_ERRNOS,
    Exit,
    Terminated,
    die_by,
    discard_stdout,
    ensure_std_streams,
    exit_status,
    report,
    restore_handlers,
    warn,
    warn_raw,
)
from sockscope.errors import SockscopeError, UsageError, memory_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    from sockscope._startup import Bundle
    from sockscope.ops.procmap import PendingMap, ProcessMap
    from sockscope.query.filter import Filter


def main(argv: Sequence[str] | None = None) -> int:
    """Run ss with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Run as the command (no ``argv``), Ctrl-C ends the process by SIGINT as it ends ss;
    called with ``argv`` it returns 130 instead."""
    program = argv is None  # the command itself (python -m sockscope, the launcher)
    if argv is None:
        argv = sys.argv[1:]
        prog = prog_name(sys.argv[0] if sys.argv else "sockscope")
    else:
        prog = "sockscope"
    # a library caller gets its process back as it was: the collector's state and the
    # SIGPIPE disposition (a listing pauses the one and resets the other, as ss dies of
    # a closed pipe)
    collecting = gc.isenabled()
    sigpipe = None
    try:
        if not program:
            sigpipe = signal.getsignal(signal.SIGPIPE)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        if program:
            # Python ignores SIGXFSZ; ss is killed by it when stdout passes RLIMIT_FSIZE
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        # the long-running modes turn SIGTERM into Terminated: what they replace is put
        # back when main() returns (a library caller keeps its own handler)
        sigterm = {signal.SIGTERM: signal.getsignal(signal.SIGTERM)}
    except (ValueError, OSError):
        sigterm = {}
    ensure_std_streams(program)
    if program:
        sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)
    try:
        return _main(list(argv), prog)
    except Exit as e:
        return e.status
    except SockscopeError as e:
        report(e)
        return exit_status(e)
    except Terminated:
        # SIGTERM before a long-running mode's own loop took over (while it discovers
        # namespaces or sets up its screen): the same status as within the loop
        return EXIT_SIGTERM
    except KeyboardInterrupt as e:
        # ss dies of SIGINT (shells and xargs tell that from an exit status), and of
        # SIGTERM/SIGHUP/SIGQUIT, which raise Signalled while a --json document is open
        # so that it is closed first; a caller that runs main(argv) in its own process
        # gets the status instead
        signum = getattr(e, "signum", signal.SIGINT)
        return die_by(signum) if program else 128 + signum
    except BrokenPipeError:
        return 0
    except (MemoryError, ImportError, SystemError) as e:
        # RLIMIT_AS (ulimit -v) reached, or a module's library that cannot be mapped under
        # it: ss aborts on its failed malloc(); one line, as perror() words ENOMEM
        if memory_error(e):
            return _out_of_memory(program)
        if isinstance(e, SystemError):
            raise
        report(SockscopeError(f"sockscope: {e}"))  # another ImportError: what it says
        return 1
    except OSError as e:
        if e.errno in OUTPUT_ERRNOS:
            # stdout is full or gone: ss never checks its printf()s and exits 0
            discard_stdout()
            return 0
        if e.errno == errno.ENOMEM:
            return _out_of_memory(program)
        # a failure ss would report through perror(): one line, no traceback
        report(SockscopeError(f"sockscope: {e.strerror or e}"))
        return 1
    finally:
        restore_handlers(sigterm)
        try:
            sys.stdout.flush()
        except OSError:
            discard_stdout()
        if not program:
            if collecting:
                gc.enable()
            if sigpipe is not None:
                try:
                    signal.signal(signal.SIGPIPE, sigpipe)
                except (ValueError, OSError):  # not the main thread
                    pass


def _out_of_memory(program: bool) -> int:
    """The end of a run that ran out of memory: ss aborts on its failed malloc(); here
    the rows made so far, one line as perror() words ENOMEM, status 1. Written with
    nothing left to allocate (a second MemoryError in a report would bring a second
    line from __main__'s handler), and, for the command, without the interpreter's
    finalization, which out of memory prints what it fails to collect or to flush
    ("MemoryError" lines after the message)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError, MemoryError):
        discard_stdout()
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError, MemoryError):
        pass
    try:
        posix.write(2, b"sockscope: Cannot allocate memory\n")
    except OSError:
        pass
    if program:
        posix._exit(1)
    return 1


def _quiet_unraisable(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """A sys.unraisablehook for the command: a MemoryError raised where Python cannot
    raise it (a generator of the listing closed while its MemoryError unwinds the
    stack) is not printed as ``Exception ignored in ...`` and a traceback; the one
    ``Cannot allocate memory`` line follows. Anything else goes to ``previous``."""

    def hook(unraisable: Any) -> None:
        if not memory_error(unraisable.exc_value):
            previous(unraisable)

    return hook


def launch(
    launched: bool = False, top: str | None = None, bundle: Bundle | None = None
) -> NoReturn:
    """The command as scripts/sockscope-run starts it (``launched``: by the shell half,
    whose interpreter the kernel named the process after), with the collector disabled
    while the package was imported.

    The imported objects are frozen: they make no garbage cycles, and are left out of
    every later pass (the pass that enabling the collector would start costs a fifth of
    a millisecond).

    ``top`` is the directory on sys.path that holds the package, ``bundle`` the start-up
    bundle that served its modules (:mod:`sockscope._startup`), None when there was
    none to read: after a successful run, a missing or stale one is written again."""
    if callable(signal.getsignal(signal.SIGINT)):  # __main__'s while the modules loaded
        # main() turns Ctrl-C's KeyboardInterrupt into ss's death by SIGINT once its own
        # try is entered (an open --json document is closed first); until then the
        # KeyboardInterrupt reaches the callers' except clause, which does the same
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if launched:
        _name(sys.argv[0])
    gc.freeze()
    gc.enable()
    status = main()
    if status == 0 and top is not None and (bundle is None or bundle.stale):
        _refresh(top, bundle)
    leave(status)


def _refresh(top: str, bundle: Bundle | None) -> None:
    """Write the start-up bundle again (the output is flushed already: its reader has
    all of it), where the installation can be written."""
    try:
        sys.stdout.flush()
        if bundle is not None:
            bundle.refresh()
        elif posix.access(f"{top}/sockscope/__pycache__", posix.W_OK):
            from sockscope._startup import write

            write(top)
    except Exception:  # (a cache not written: the run's status stands)
        pass


def _name(command: str) -> None:
    """The process's name (comm: ps, top, pgrep, killall, ss -p) back to the command's."""
    enc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    try:
        fd = posix.open("/proc/self/comm", posix.O_WRONLY | posix.O_CLOEXEC)
    except OSError:
        return
    try:
        posix.write(fd, command.rpartition("/")[2].encode(enc, errors)[:15])
    except OSError:
        pass
    finally:
        posix.close(fd)


def leave(status: int) -> NoReturn:
    """End the command with ``status``: ``sys.exit``, or, after a successful run, as ss
    ends, without the interpreter's finalization when nothing needs it.

    Python's finalization collects every object and tears every module down: about
    2.5 ms of a 300-socket listing, where ss only exits. It is skipped (``os._exit``
    after the flushes it would make) when the status is 0 (an error path may leave a
    file to close, as -D's), no ``threading`` thread can be waiting to be joined and no
    ``atexit`` function is registered (the receive threads of the dumps are ``_thread``
    ones: finalization never waits for them).
    """
    import atexit

    # main() has returned: a Ctrl-C from here on ends the process as it ends ss, not as
    # a KeyboardInterrupt in the interpreter's finalization ("Exception ignored in
    # threading._shutdown", status 0)
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except (ValueError, OSError):
        pass  # not the main thread
    if status == 0 and "threading" not in sys.modules and not atexit._ncallbacks():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass  # the ordinary exit reports it as Python does
        else:
            posix._exit(0)
    sys.exit(status)


def _environ() -> dict[str, str]:
    """A copy of the environment as ``dict(os.environ)`` makes it (the same decoding, and
    the same variables: os.environ writes through to posix.environ), without os.py."""
    enc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    return {k.decode(enc, errors): v.decode(enc, errors) for k, v in posix.environ.items()}


#: with fewer descriptors than this to spare (RLIMIT_NOFILE), nothing runs beside the
#: dumps (a /proc scan in a thread holds up to 4, the two families' dumps 2, an import 1)
#: and every module is imported before the first
_FEW_FDS = 16
#: the subpackages whose modules a listing imports when it first needs them
_LAZY_PACKAGES = ("kernel", "query", "tables", "tables/inet", "render", "ops")
#: the C modules (shared libraries) that its modules import late
_LAZY_LIBRARIES = ("_bisect", "_queue")


def _spare_descriptors() -> int | None:
    """How many more descriptors RLIMIT_NOFILE lets this process open (it bounds the
    numbers of new descriptors, not their count); None when the soft limit is 256 or
    more: plenty, not counted (a listing of /proc/self/fd on every run would cost more
    than the check saves). ``sysconf(_SC_OPEN_MAX)`` is the soft limit, read without
    importing ``resource``."""
    soft = posix.sysconf("SC_OPEN_MAX")
    if soft < 0 or soft >= 256:
        return None
    try:
        names = posix.listdir("/proc/self/fd")  # one of them is the listing's own
    except OSError:
        return 0
    return soft - (sum(1 for n in names if n.isdigit() and int(n) < soft) - 1)


def _import_ahead() -> None:
    """Import every module a listing may load late, now. With RLIMIT_NOFILE at 4, the
    one descriptor left is a dump's socket while the rows are made: a module read then
    fails to open where ss, which has no files of its own to read, lists on."""
    import os  # (only here: the start-up of a listing does without os.py)
    from importlib import import_module

    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for sub in _LAZY_PACKAGES:
        try:
            names = sorted(os.listdir(os.path.join(top, sub)))
        except OSError:
            continue
        package = "sockscope." + sub.replace("/", ".")
        for name in names:
            if name.endswith(".py") and name != "__init__.py":
                try:
                    import_module(f"{package}.{name[:-3]}")
                except ImportError:  # a module for a platform or an option not here
                    pass
    for name in _LAZY_LIBRARIES:
        import_module(name)


def _main(argv: list[str], prog: str) -> int:
    run = Run(prog)
    try:
        return _run(run, argv)
    finally:
        run.close()


def _run(run: Run, argv: list[str]) -> int:
    """The invocation ``argv`` (main without its exception and signal handling)."""
    prog = run.prog
    late: UsageError | None = None
    try:
        pairs, args = gnu_getopt(argv, prog)
    except UsageError as e:
        pairs, args, late = e.parsed, [], e  # type: ignore[attr-defined]
    for key, value in pairs:
        apply_option(run, key, value)
    if late is not None:
        raise late
    opts, sel = run.opts, run.sel
    environ = _environ()
    if run.all_netns:
        from sockscope.cli import allns

        allns.check(run)
    summary_only = sel.do_default and not args
    run.spare_fds = _spare_descriptors()
    few = run.spare_fds is not None and run.spare_fds < _FEW_FDS
    if few:
        _import_ahead()

    users: ProcessMap | PendingMap | None = None
    if opts.wants_users:
        from sockscope.ops import procmap

        if few:  # first and alone, as ss's: what it can open depends on what is open
            users = procmap.ProcessMap.build(environ, opts)
        else:  # the /proc scan overlaps the dumps
            users = procmap.PendingMap(environ, opts)

    if opts.summary and not run.all_netns:
        from sockscope.ops.sockstat import read as read_summary
        from sockscope.ops.sockstat import render as render_summary

        counters = read_summary(environ, warn)
        if opts.json:
            run.summary = counters
            if sel.do_default and not args:
                from sockscope.cli import jsonmode

                return jsonmode.show(run, None, None, environ, listing=False)
        else:
            sys.stdout.write(render_summary(counters))
            sys.stdout.flush()
            if sel.do_default and not args:
                return 0

    args = read_states(run, args)
    sel.finish(run.state_filter)

    if sel.dbs == 0:
        warn("ss: no socket tables to show with such filter.")
        return 0
    if sel.families == 0:
        warn("ss: no families to show with such filter.")
        return 0
    if sel.states == 0:
        warn("ss: no socket states to show with such filter.")
        return 0

    if opts.dump_file is not None:
        from sockscope.cli.dump import dump

        return dump(run)

    if run.all_netns and run.answers is not None:
        from sockscope.cli import answers

        if not answers.per_namespace(run):
            return answers.show_all_netns(
                run, _parse_filter(run, args), users, environ, warn, warn_raw
            )
    if run.all_netns:
        hooks = allns.Hooks(_parse_filter, _show, report, warn)
        return allns.show(run, args, users, environ, opts.summary and summary_only, hooks)
    flt = _parse_filter(run, args)
    return _show(run, flt, users, environ)


def _parse_filter(run: Run, args: list[str]) -> Filter | None:
    """The filter expression from argv and -F (ssfilter_parse)."""
    if not args and run.filter_fp is None:
        return None
    from sockscope.query import filter as ssfilter

    ctx = ssfilter.FilterContext(
        preferred_family=run.sel.preferred_family,
        families=run.sel.families,
        dbs=run.sel.dbs,
        warn=warn_raw,  # printed as they come, before any error of the parse
    )
    # the -F file is read lazily after argv, so errors come in ss's order
    flt = ssfilter.parse_filter(args, ctx, fp=run.filter_fp)
    run.sel.families = ctx.families
    run.sel.preferred_family = ctx.preferred_family
    return flt


def _show(
    run: Run, flt: Filter | None, users: ProcessMap | PendingMap | None, environ: dict[str, str]
) -> int:
    """Columns, header, then every selected table in ss's order, then the render."""

    opts, sel = run.opts, run.sel
    if run.answers is not None:
        from sockscope.cli import answers

        status = answers.show(run, flt, users, environ, warn, warn_raw)
        if status is not None:
            return status
    if opts.json:
        from sockscope.cli import jsonmode

        return jsonmode.show(run, flt, users, environ)
    if not opts.events:
        # A listing allocates hundreds of thousands of acyclic tuples: the cyclic
        # collector only costs time here (measured ~8% of -tan at 100k sockets), and
        # in the imports of the listing's modules (a few passes, ~0.1 ms each).
        gc.disable()
    from sockscope.cli import listing as gather

    ctx = None
    if not opts.events:
        ctx = gather.make_context(sel, opts, flt, environ, warn, warn_raw)
        # the first table's kernel dumps run while the renderer's modules are imported
        gather.start_dumps(ctx)
    renderer, printer = gather.text_output(sel, opts, users, environ, warn, spare_fds=run.spare_fds)
    out = sys.stdout.buffer
    if ctx is None:
        from sockscope.ops.follow import follow

        out.flush()
        ok = follow(run.sel, opts, flt, printer, renderer, environ, warn, out.flush)
        return 0 if ok else EXIT_ARGUMENT

    gather.show_all(ctx, printer, renderer)
    renderer.finish()
    out.flush()
    return 0
