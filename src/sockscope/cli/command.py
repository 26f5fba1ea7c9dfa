"""The ``sockscope`` command: ss's command line, flow, messages and exit statuses.

This is the only module that prints to stderr or chooses exit codes. ``main()`` follows
ss.c's ``main()`` step by step (iproute2 7.1): options in getopt order, the process map,
``-s``, the leading ``state``/``exclude`` words, the selection defaults and checks, ``-D``,
the filter expression, the columns, the header, ``-E`` or the dumps in ss's table order,
and the final render.
"""

from __future__ import annotations

import _signal as signal  # type: ignore[import-not-found]  # the C module: signal.py builds enums (~3 ms)
import errno
import gc
import io
import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)
import sys

from sockscope.cli.status import (
    EXIT_ARGUMENT,
    EXIT_SIGTERM,
    Terminated,
    close_on_signals,
    exit_status,
    restore_handlers,
    shows_usage,
)
from sockscope.errors import ArgumentError, SockscopeError, UsageError
from sockscope.kernel import abi
from sockscope.options import Options
from sockscope.query.selection import FAMILY_WORDS, Selection, scan_state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import BinaryIO, NoReturn

    from sockscope.cli.answers import Answers
    from sockscope.ops.procmap import PendingMap, ProcessMap
    from sockscope.query.filter import Filter
    from sockscope.render.jsonout import Writer
    from sockscope.render.view import View

#: ss 7.1's getopt string, then sockscope's own short options (-j: --json, as in ip -j)
SHORTOPTS = "dhalBetuwxnro460spTbEf:mMiA:D:F:vVzZN:KHQSO" + "j"

#: long_opts[] of ss.c, in its order: (name, takes an argument, short option or key)
LONGOPTS: tuple[tuple[str, bool, str], ...] = (
    ("numeric", False, "n"),
    ("resolve", False, "r"),
    ("options", False, "o"),
    ("extended", False, "e"),
    ("memory", False, "m"),
    ("info", False, "i"),
    ("processes", False, "p"),
    ("threads", False, "T"),
    ("bpf", False, "b"),
    ("events", False, "E"),
    ("dccp", False, "d"),
    ("tcp", False, "t"),
    ("sctp", False, "S"),
    ("udp", False, "u"),
    ("raw", False, "w"),
    ("unix", False, "x"),
    ("tipc", False, "tipc"),
    ("vsock", False, "vsock"),
    ("all", False, "a"),
    ("listening", False, "l"),
    ("bound-inactive", False, "B"),
    ("ipv4", False, "4"),
    ("ipv6", False, "6"),
    ("packet", False, "0"),
    ("family", True, "f"),
    ("socket", True, "A"),
    ("query", True, "A"),
    ("summary", False, "s"),
    ("diag", True, "D"),
    ("filter", True, "F"),
    ("version", False, "version"),  # -V's long form in ss; sockscope adds its own version
    ("help", False, "h"),
    ("context", False, "Z"),
    ("contexts", False, "z"),
    ("net", True, "N"),
    ("tipcinfo", False, "tipcinfo"),
    ("tos", False, "tos"),
    ("cgroup", False, "cgroup"),
    ("kill", False, "K"),
    ("no-header", False, "H"),
    ("no-queues", False, "Q"),
    ("xdp", False, "xdp"),
    ("mptcp", False, "M"),
    ("oneline", False, "O"),
    ("inet-sockopt", False, "inet-sockopt"),
    ("bpf-maps", False, "bpf-maps"),
    ("bpf-map-id", True, "bpf-map-id"),
    # sockscope's own: machine-readable output (not ss options; keys that no ss option uses)
    ("json", False, "json"),
    ("json-lines", False, "json-lines"),
    ("jsonl", False, "json-lines"),
    # every network namespace of the host (cli/allns.py)
    ("all-netns", False, "all-netns"),
    # sockscope's own: answers instead of listings (cli/answers.py)
    ("count-by", True, "count-by"),
    ("top", True, "top"),
    ("sort", True, "sort"),
    ("watch", False, "watch"),
    ("top-view", False, "top-view"),
    ("metrics", False, "metrics"),
    ("textfile", True, "textfile"),
    ("max-series", True, "max-series"),
    ("listen", True, "listen"),
    ("min-interval", True, "min-interval"),
)
#: how many rows of LONGOPTS are ss's own: an abbreviation means what it means to ss
#: before sockscope's options are looked at (``--to`` stays ``--tos``)
SS_LONGOPTS = next(i for i, o in enumerate(LONGOPTS) if o[0] == "json")
#: sockscope's options with an optional argument (``--watch[=SECONDS]``,
#: ``--metrics[=FORMAT]``)
OPTIONAL_ARG = frozenset(("watch", "metrics"))


class _Exit(Exception):
    """Leave main() with a status after the messages have been written."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _prog(argv0: str) -> str:
    """argv[0] as glibc's getopt messages show it."""
    if argv0.endswith("__main__.py"):
        return "sockscope"
    return argv0


def gnu_getopt(args: Sequence[str], prog: str) -> tuple[list[tuple[str, str]], list[str]]:
    """getopt_long with glibc's permutation, clustering, prefixes and messages.

    Returns the options in order as (key, value) pairs and the non-option arguments.
    Raises UsageError with glibc's message on a bad option.
    """
    opts: list[tuple[str, str]] = []
    rest: list[str] = []
    posix_order = b"POSIXLY_CORRECT" in posix.environ
    i = 0
    n = len(args)
    try:
        while i < n:
            arg = args[i]
            i += 1
            if arg == "--":
                rest.extend(args[i:])
                break
            if arg.startswith("--"):
                i = _long_option(arg[2:], args, i, opts, prog)
            elif arg.startswith("-") and arg != "-":
                i = _short_options(arg[1:], args, i, opts, prog)
            elif posix_order:
                rest.append(arg)
                rest.extend(args[i:])
                break
            else:
                rest.append(arg)
    except UsageError as e:
        # getopt reports a bad option only when it reaches it: the options before it
        # are applied first (ss -V -1 prints the version)
        e.parsed = opts  # type: ignore[attr-defined]
        raise
    return opts, rest


def _long_option(
    text: str, args: Sequence[str], i: int, opts: list[tuple[str, str]], prog: str
) -> int:
    name, eq, value = text.partition("=")
    exact = [o for o in LONGOPTS if o[0] == name]
    matches = (
        exact
        or [o for o in LONGOPTS[:SS_LONGOPTS] if o[0].startswith(name)]
        or [o for o in LONGOPTS if o[0].startswith(name)]
    )
    if not matches:
        raise UsageError(f"{prog}: unrecognized option '--{text}'")
    found = matches[0]
    if len({(o[1], o[2]) for o in matches}) > 1:
        names = "".join(f" '--{o[0]}'" for o in matches)
        raise UsageError(f"{prog}: option '--{name}' is ambiguous; possibilities:{names}")
    if found[1]:
        if not eq:
            if i >= len(args):
                raise UsageError(f"{prog}: option '--{found[0]}' requires an argument")
            value = args[i]
            i += 1
    elif eq and found[2] not in OPTIONAL_ARG:
        raise UsageError(f"{prog}: option '--{found[0]}' doesn't allow an argument")
    opts.append((found[2], value))
    return i


def _short_options(
    cluster: str, args: Sequence[str], i: int, opts: list[tuple[str, str]], prog: str
) -> int:
    k = 0
    while k < len(cluster):
        ch = cluster[k]
        k += 1
        pos = SHORTOPTS.find(ch)
        if ch == ":" or pos < 0:
            # getopt works on bytes: a multibyte character is invalid by its first byte
            enc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
            first = ch.encode(enc, errors)[:1].decode(enc, errors)
            raise UsageError(f"{prog}: invalid option -- '{first}'")
        if SHORTOPTS[pos + 1 : pos + 2] == ":":
            if k < len(cluster):
                opts.append((ch, cluster[k:]))
            elif i < len(args):
                opts.append((ch, args[i]))
                i += 1
            else:
                raise UsageError(f"{prog}: option requires an argument -- '{ch}'")
            return i
        opts.append((ch, ""))
    return i


# --- option table: each handler applies one option in getopt order ------------------------
_FLAG_OPTS: dict[str, tuple[str, object]] = {
    "n": ("numeric", True),
    "r": ("resolve", True),
    "o": ("show_options", True),
    "m": ("show_mem", True),
    "i": ("show_tcpinfo", True),
    "E": ("events", True),
    "tipcinfo": ("show_tipcinfo", True),
    "tos": ("show_tos", True),
    "cgroup": ("show_cgroup", True),
    "K": ("kill", True),
    "H": ("show_header", False),
    "Q": ("show_queues", False),
    "O": ("oneline", True),
    "inet-sockopt": ("show_inet_sockopt", True),
    "s": ("summary", True),
}
_DB_OPTS = {
    "d": abi.DCCP_DB,
    "t": abi.TCP_DB,
    "S": abi.SCTP_DB,
    "u": abi.UDP_DB,
    "w": abi.RAW_DB,
    "M": abi.MPTCP_DB,
}
_AF_OPTS = {
    "x": abi.AF_UNIX,
    "vsock": abi.AF_VSOCK,
    "tipc": abi.AF_TIPC,
    "4": abi.AF_INET,
    "6": abi.AF_INET6,
    "0": abi.AF_PACKET,
    "xdp": abi.AF_XDP,
}
_STATE_OPTS = {
    "a": abi.SS_ALL,
    "l": (1 << abi.SS_LISTEN) | (1 << abi.SS_CLOSE),
    "B": 1 << abi.SS_BOUND_INACTIVE,
}


class Run:
    """The state of one invocation while options are applied (ss's globals)."""

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.opts = Options()
        self.sel = Selection()
        self.state_filter = 0
        self.saw_query = False
        self.filter_fp: BinaryIO | None = None
        #: -s with --json: the summary, written at the head of the JSON output
        self.summary: object = None
        self.all_netns = False
        #: descriptors left under RLIMIT_NOFILE at the start (None: plenty)
        self.spare_fds: int | None = None
        #: the caller's network namespace, opened before the first -N switches away from
        #: it: --listen binds its socket there, where the host's scraper can reach it
        self.home_netns: int | None = None
        #: sockscope's answer options (--count-by, --sort, --watch ...), None for a listing
        self.answers: Answers | None = None

    def close(self) -> None:
        """Let go of what the options opened (-F's file) and come home from -N's
        namespace: a library caller runs main() again and again in one process."""
        fp = self.filter_fp
        if fp is not None and fp is not sys.stdin.buffer:
            fp.close()
        if self.home_netns is not None:
            from sockscope.ops import netns

            try:
                netns.setns(self.home_netns, netns.CLONE_NEWNET)
            except OSError:  # never left (a -N that failed before its setns)
                pass
            finally:
                posix.close(self.home_netns)
                self.home_netns = None


def _usage_error(message: str | None = None) -> UsageError:
    return UsageError(message or "")


def _apply_option(run: Run, key: str, value: str) -> None:
    """One case of ss's option switch."""
    opts, sel = run.opts, run.sel
    if key in _FLAG_OPTS:
        attr, flag = _FLAG_OPTS[key]
        setattr(opts, attr, flag)
    elif key in _DB_OPTS:
        sel.db_set(_DB_OPTS[key])
    elif key in _AF_OPTS:
        sel.af_set(_AF_OPTS[key])
    elif key in _STATE_OPTS:
        run.state_filter = _STATE_OPTS[key]
    elif key in _OTHER_OPTS:
        _OTHER_OPTS[key](run, value)
    elif key in _ANSWER_OPTS:
        from sockscope.cli import answers

        answers.option(run, key, value)
    else:
        raise _usage_error()


def _opt_e(run: Run, _v: str) -> None:
    run.opts.show_options = True
    run.opts.show_details += 1


def _opt_p(run: Run, _v: str) -> None:
    run.opts.show_processes += 1


def _opt_T(run: Run, _v: str) -> None:
    run.opts.show_threads += 1


def _opt_b(run: Run, _v: str) -> None:
    run.opts.show_options = True
    run.opts.show_bpf += 1


def _opt_f(run: Run, value: str) -> None:
    family = FAMILY_WORDS.get(value)
    if family is not None:
        run.sel.af_set(family)
    elif value == "help":
        _help()
    else:
        raise UsageError(f'ss: "{value}" is invalid family')


def _opt_A(run: Run, value: str) -> None:
    sel = run.sel
    if not run.saw_query:
        sel.dbs = 0
        run.state_filter = run.state_filter or abi.SS_CONN
        run.saw_query = True
        sel.do_default = False
    for word in value.split(","):
        if not sel.db_parse(word):
            raise UsageError(f'ss: "{word}" is illegal socket table id')


def _opt_D(run: Run, value: str) -> None:
    run.opts.dump_file = value


def _opt_F(run: Run, value: str) -> None:
    if run.filter_fp is not None:
        raise ArgumentError("More than one filter file")
    if value.startswith("-"):
        run.filter_fp = sys.stdin.buffer
    else:
        try:
            run.filter_fp = open(value, "rb")  # noqa: SIM115 - read later, like ss's FILE*
        except IsADirectoryError:  # fopen() opens a directory; fgets() then reads nothing
            run.filter_fp = io.BytesIO()
        except OSError as e:
            raise ArgumentError(f"fopen filter file: {posix.strerror(e.errno or 0)}") from None
    run.opts.filter_file = value


def _opt_V(_run: Run, _v: str) -> None:
    from sockscope.cli.usage import VERSION

    sys.stdout.write(VERSION)
    raise _Exit(0)


def _opt_version(_run: Run, _v: str) -> None:
    """--version: ss's line for -V, byte for byte, then sockscope's own (not for -V)."""
    from sockscope.cli.usage import VERSION, sockscope_version

    sys.stdout.write(VERSION + sockscope_version())
    raise _Exit(0)


def _opt_Z(run: Run, key: str) -> None:
    if not _selinux_enabled():
        raise SockscopeError("ss: SELinux is not enabled.")
    run.opts.show_proc_ctx += 1


def _opt_z(run: Run, _v: str) -> None:
    run.opts.show_sock_ctx += 1
    _opt_Z(run, "z")


def _opt_N(run: Run, value: str) -> None:
    from sockscope.ops import netns

    if run.home_netns is None:
        run.home_netns = netns.current()
    netns.switch(value, _warn)
    run.opts.net = value


def _opt_h(_run: Run, _v: str) -> None:
    """-h/--help: ss's usage text unchanged, then a section on sockscope's own options."""
    from sockscope.cli.usage import SOCKSCOPE_HELP

    _help(SOCKSCOPE_HELP)


def _opt_bpf_maps(run: Run, _v: str) -> None:
    if run.opts.bpf_map_ids:
        raise ArgumentError("ss: --bpf-maps and --bpf-map-id cannot be used together")
    run.opts.bpf_maps = True


def _opt_bpf_map_id(run: Run, value: str) -> None:
    if run.opts.bpf_maps:
        raise SockscopeError("ss: --bpf-maps and --bpf-map-id cannot be used together")
    from sockscope.ops import bpfmaps

    map_id = bpfmaps.parse_id(value)
    if map_id is None:
        raise SockscopeError(f"ss: invalid BPF map ID {value}")
    if map_id not in run.opts.bpf_map_ids:
        bpfmaps.check(map_id, value)
    run.opts.bpf_map_ids.append(map_id)


def _opt_json(run: Run, _v: str) -> None:
    run.opts.json = "json"


def _opt_json_lines(run: Run, _v: str) -> None:
    run.opts.json = "lines"


def _opt_all_netns(run: Run, _v: str) -> None:
    run.all_netns = True


_OTHER_OPTS: dict[str, Callable[[Run, str], None]] = {
    "e": _opt_e,
    "p": _opt_p,
    "T": _opt_T,
    "b": _opt_b,
    "f": _opt_f,
    "A": _opt_A,
    "D": _opt_D,
    "F": _opt_F,
    "v": _opt_V,
    "V": _opt_V,
    "Z": _opt_Z,
    "z": _opt_z,
    "N": _opt_N,
    "h": _opt_h,
    "bpf-maps": _opt_bpf_maps,
    "bpf-map-id": _opt_bpf_map_id,
    "json": _opt_json,
    "j": _opt_json,
    "json-lines": _opt_json_lines,
    "version": _opt_version,
    "all-netns": _opt_all_netns,
}


#: sockscope's own options, applied by cli/answers.py
_ANSWER_OPTS = frozenset(
    (
        "count-by",
        "top",
        "sort",
        "watch",
        "top-view",
        "metrics",
        "textfile",
        "max-series",
        "listen",
        "min-interval",
    )
)


def _selinux_enabled() -> bool:
    """libselinux's is_selinux_enabled: a mounted selinuxfs with a loaded policy."""
    return posix.access("/sys/fs/selinux/enforce", posix.F_OK)


def _help(extra: str = "") -> None:
    from sockscope.cli.usage import USAGE

    sys.stdout.write(USAGE + extra)
    sys.stdout.flush()
    raise _Exit(0)


def _read_states(run: Run, args: list[str]) -> list[str]:
    """The leading ``state X`` / ``exclude X`` words of the filter (main() in ss.c)."""
    saw_states = False
    while args:
        word = args[0]
        if word == "state" or word in ("exclude", "excl"):
            if len(args) < 2:
                raise ArgumentError('Command line is not complete. Try option "help"')
            mask = scan_state(args[1])
            if mask is None:
                # fprintf("%s\n"): a name ending in a newline gives two
                raise ArgumentError(f"ss: wrong state name: {args[1]}\n")
            if word == "state":
                if not saw_states:
                    run.state_filter = 0
                run.state_filter |= mask
            else:
                if not saw_states:
                    run.state_filter = abi.SS_ALL
                run.state_filter &= ~mask
            saw_states = True
            args = args[2:]
        else:
            break
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run ss with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Run as the command (no ``argv``), Ctrl-C ends the process by SIGINT as it ends ss;
    called with ``argv`` it returns 130 instead."""
    program = argv is None  # the command itself (python -m sockscope, the launcher)
    if argv is None:
        argv = sys.argv[1:]
        prog = _prog(sys.argv[0] if sys.argv else "sockscope")
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
    _ensure_std_streams()
    try:
        return _main(list(argv), prog)
    except _Exit as e:
        return e.status
    except SockscopeError as e:
        _report(e)
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
        return _die_by(signum) if program else 128 + signum
    except BrokenPipeError:
        return 0
    except (MemoryError, ImportError) as e:
        # RLIMIT_AS (ulimit -v) reached, or a module's library that cannot be mapped under
        # it: ss aborts on its failed malloc(); one line, as perror() words ENOMEM
        why = posix.strerror(errno.ENOMEM) if isinstance(e, MemoryError) else str(e)
        _report(SockscopeError(f"sockscope: {why}"))
        return 1
    except OSError as e:
        if e.errno in _OUTPUT_ERRNOS:
            # stdout is full or gone: ss never checks its printf()s and exits 0
            _discard_stdout()
            return 0
        # a failure ss would report through perror(): one line, no traceback
        _report(SockscopeError(f"sockscope: {e.strerror or e}"))
        return 1
    finally:
        restore_handlers(sigterm)
        try:
            sys.stdout.flush()
        except OSError:
            _discard_stdout()
        if not program:
            if collecting:
                gc.enable()
            if sigpipe is not None:
                try:
                    signal.signal(signal.SIGPIPE, sigpipe)
                except (ValueError, OSError):  # not the main thread
                    pass


def launch(launched: bool = False) -> NoReturn:
    """The command as scripts/sockscope-run starts it (``launched``: by the shell half,
    whose interpreter the kernel named the process after), with the collector disabled
    while the package was imported.

    The imported objects are frozen: they make no garbage cycles, and are left out of
    every later pass (the pass that enabling the collector would start costs a fifth of
    a millisecond)."""
    if launched:
        _name(sys.argv[0])
    gc.freeze()
    gc.enable()
    leave(main())


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

    if status == 0 and "threading" not in sys.modules and not atexit._ncallbacks():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass  # the ordinary exit reports it as Python does
        else:
            posix._exit(0)
    sys.exit(status)


def _die_by(signum: int) -> int:
    """End the process by the default action of ``signum``; 128 + signum if it survives
    (the signal is blocked or ignored by whoever called us in-process)."""
    try:
        signal.signal(signum, signal.SIG_DFL)
        posix.kill(posix.getpid(), signum)
    except (OSError, ValueError):
        pass
    return 128 + signum


#: write errors of a full, broken or closed stdout
_OUTPUT_ERRNOS = frozenset(
    # EAGAIN: a non-blocking stdout that is full (ss's printf()s fail and it exits 0)
    (errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EPIPE, errno.EBADF, errno.EAGAIN)
)


def _to_devnull(fd: int) -> None:
    """Point descriptor ``fd`` at /dev/null (os.devnull, without os.py): what is written
    there from now on is dropped, and the flush at exit succeeds."""
    null = posix.open("/dev/null", posix.O_WRONLY)
    if null != fd:  # (a closed fd is the lowest free one: the open itself took it)
        posix.dup2(null, fd)
        posix.close(null)


def _environ() -> dict[str, str]:
    """A copy of the environment as ``dict(os.environ)`` makes it (the same decoding, and
    the same variables: os.environ writes through to posix.environ), without os.py."""
    enc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    return {k.decode(enc, errors): v.decode(enc, errors) for k, v in posix.environ.items()}


def _ensure_std_streams() -> None:
    """``sockscope >&-`` / ``2>&-``: ss writes to the closed descriptor, fails silently and
    exits 0. Python leaves sys.stdout None; point the descriptor at /dev/null (so that no
    socket opened later takes it) and give the stream back."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if stream is not None:
            # argv words are decoded with surrogateescape: messages that echo them give
            # their bytes back, as ss prints them (not "\udcff")
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                try:
                    stream.flush()
                    reconfigure(encoding=sys.getfilesystemencoding(), errors="surrogateescape")
                except (OSError, ValueError):
                    pass
            continue
        try:
            posix.fstat(fd)
        except OSError:
            _to_devnull(fd)
        setattr(sys, name, open(fd, "w", encoding="utf-8", errors="surrogateescape", closefd=False))  # noqa: SIM115


def _discard_stdout() -> None:
    """After a failed write: what is still buffered goes to /dev/null, so that the final
    flush at exit succeeds (no 'Exception ignored' message, no status 120)."""
    try:
        _to_devnull(sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _report(e: SockscopeError) -> None:
    try:
        sys.stdout.flush()
    except OSError:
        # full, closed or non-blocking stdout: the message on stderr still comes
        _discard_stdout()
    text = e.message
    if text:
        _to_stderr(text if text.endswith("\n") else text + "\n")
    if shows_usage(e):
        from sockscope.cli.usage import USAGE

        _to_stderr(USAGE)


def _warn_raw(text: str) -> None:
    """Write ss's exact stderr text (some of its messages end without a newline)."""
    _to_stderr(text)


def _warn(message: str) -> None:
    _to_stderr(message if message.endswith("\n") else message + "\n")


def _to_stderr(text: str) -> None:
    """Write to stderr as ss's fprintf does: a full or broken stderr (``2>/dev/full``)
    changes neither the output nor the status; what cannot be written is dropped."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        try:
            _to_devnull(sys.stderr.fileno())
        except (OSError, ValueError):
            pass


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
        _apply_option(run, key, value)
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

        counters = read_summary(environ, _warn)
        if opts.json:
            run.summary = counters
            if sel.do_default and not args:
                return _show_json(run, None, None, environ, listing=False)
        else:
            sys.stdout.write(render_summary(counters))
            sys.stdout.flush()
            if sel.do_default and not args:
                return 0

    args = _read_states(run, args)
    sel.finish(run.state_filter)

    if sel.dbs == 0:
        _warn("ss: no socket tables to show with such filter.")
        return 0
    if sel.families == 0:
        _warn("ss: no families to show with such filter.")
        return 0
    if sel.states == 0:
        _warn("ss: no socket states to show with such filter.")
        return 0

    if opts.dump_file is not None:
        return _dump(run)

    if run.all_netns and run.answers is not None:
        from sockscope.cli import answers

        if not answers.per_namespace(run):
            return answers.show_all_netns(
                run, _parse_filter(run, args), users, environ, _warn, _warn_raw
            )
    if run.all_netns:
        hooks = allns.Hooks(_parse_filter, _show, _report, _warn)
        return allns.show(run, args, users, environ, opts.summary and summary_only, hooks)
    flt = _parse_filter(run, args)
    return _show(run, flt, users, environ)


def _dump(run: Run) -> int:
    """-D FILE: the raw TCP dump, as ss writes it."""
    from sockscope.tables.context import Context
    from sockscope.tables.inet import source as sources

    sel, opts = run.sel, run.opts
    if not sel.has_db(abi.TCP_DB):
        _warn("ss: tcpdiag dump requested and no tcp in filter.")
        return 0
    # ss writes to stdout when the name starts with '-'; an empty name goes to fopen("")
    path = opts.dump_file or ""
    if path.startswith("-"):
        out = _DumpOut(sys.stdout.buffer)
        sources.dump_tcp(Context(sel, opts), out)  # type: ignore[arg-type]
        out.flush()
    else:
        try:
            f = open(path, "wb")  # noqa: SIM115
        except OSError as e:
            raise ArgumentError(f"fopen dump file: {posix.strerror(e.errno or 0)}") from None
        out = _DumpOut(f)
        sources.dump_tcp(Context(sel, opts), out)  # type: ignore[arg-type]
        out.flush()
        try:
            f.close()
        except OSError as e:  # what the failed flush left in the buffer
            out.errno = out.errno or e.errno or errno.EIO
    if out.errno:
        # ss ignores its fwrite() errors; a dump written nowhere is reported (QUIRKS.md)
        if path.startswith("-"):
            _discard_stdout()
        raise SockscopeError(f"sockscope: writing the dump: {posix.strerror(out.errno)}")
    return 0


class _DumpOut:
    """The -D output: like ss's fwrite(), a failed write does not stop the dump; the
    first error is kept and reported at the end."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.errno = 0

    def write(self, data: bytes) -> int:
        if not self.errno:
            try:
                self.out.write(data)
            except OSError as e:
                self.errno = e.errno or errno.EIO
        return len(data)

    def flush(self) -> None:
        if not self.errno:
            try:
                self.out.flush()
            except OSError as e:
                self.errno = e.errno or errno.EIO


def _parse_filter(run: Run, args: list[str]) -> Filter | None:
    """The filter expression from argv and -F (ssfilter_parse)."""
    if not args and run.filter_fp is None:
        return None
    from sockscope.query import filter as ssfilter

    ctx = ssfilter.FilterContext(
        preferred_family=run.sel.preferred_family,
        families=run.sel.families,
        dbs=run.sel.dbs,
        warn=_warn_raw,  # printed as they come, before any error of the parse
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

        status = answers.show(run, flt, users, environ, _warn, _warn_raw)
        if status is not None:
            return status
    if opts.json:
        return _show_json(run, flt, users, environ)
    if not opts.events:
        # A listing allocates hundreds of thousands of acyclic tuples: the cyclic
        # collector only costs time here (measured ~8% of -tan at 100k sockets), and
        # in the imports of the listing's modules (a few passes, ~0.1 ms each).
        gc.disable()
    from sockscope.cli import listing as gather

    ctx = None
    if not opts.events:
        ctx = gather.make_context(sel, opts, flt, environ, _warn, _warn_raw)
        # the first table's kernel dumps run while the renderer's modules are imported
        gather.start_dumps(ctx)
    renderer, printer = gather.text_output(
        sel, opts, users, environ, _warn, spare_fds=run.spare_fds
    )
    out = sys.stdout.buffer
    if ctx is None:
        from sockscope.ops.follow import follow

        out.flush()
        ok = follow(run.sel, opts, flt, printer, renderer, environ, _warn)
        return 0 if ok else EXIT_ARGUMENT

    gather.show_all(ctx, printer, renderer)
    renderer.finish()
    out.flush()
    return 0


def _events_json(run: Run, flt: Filter | None, writer: Writer, view: View, groups: int) -> int:
    """-E with --json/--json-lines: one object per destroyed socket, flushed as it comes.

    The --json document stays open while events arrive and is closed when the run is
    interrupted, so what was written is a complete document.
    """
    from sockscope.ops import follow
    from sockscope.ops.destroy import Killer

    sel, opts = run.sel, run.opts
    killer = Killer(_warn) if opts.kill else None
    writer.open_sockets()
    status = 0
    # SIGTERM/SIGHUP/SIGQUIT (Signalled, from _show_json) end the run like Ctrl-C: the
    # --json document gets its closing and the status is 0
    try:
        matcher = None if flt is None else flt.matches
        for rec in follow.watch(groups, sel.families, matcher, killer):
            writer.socket(rec.to_dict(view))
            writer.out.flush()
    except KeyboardInterrupt:
        pass
    except SockscopeError as e:
        _report(e)
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


def _show_json(
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
    rows = gather.DataRows(opts, users, environ, CgroupMap(_warn).path)
    writer = jsonout.Writer(sys.stdout.buffer, opts.json == "lines")
    summary = None if run.summary is None else jsonout.summary_dict(run.summary)
    groups = 0
    if listing and opts.events:
        from sockscope.ops import follow

        groups = follow.groups_for(sel.families, sel.dbs)
        if not groups:
            # nothing is written (text -E exits 255 silently, as ss): no half document
            _warn("-E: no tcp/udp events to follow with these tables and families")
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
                ctx = gather.make_context(sel, opts, flt, environ, _warn, _warn_raw)
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
        _to_devnull(sys.stdout.fileno())
    finally:
        restore_handlers(replaced)
    return 0
