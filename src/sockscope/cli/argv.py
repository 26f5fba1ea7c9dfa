"""ss's command line as getopt_long reads it: the option table, glibc's parsing rules,
and ss's option switch.

ss acts on each option as getopt returns it (the first ``-A`` resets the tables, the last
of ``-a``/``-l`` wins, ``ss -V -1`` prints the version before the bad option is reported):
:func:`gnu_getopt` returns the options in that order and :func:`apply_option` applies
one. What they build up is one :class:`Run`; ``main()`` (cli/command.py) drives them.
The options that do more than set a value are applied by cli/optactions.py, and
sockscope's own answer options by cli/answers.py: a listing loads neither.
"""

from __future__ import annotations

import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)
import sys

from sockscope.errors import ArgumentError, UsageError
from sockscope.kernel import abi
from sockscope.options import Options
from sockscope.query.selection import FAMILY_WORDS, Selection, scan_state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import BinaryIO

    from sockscope.cli.answers import Answers


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


def prog_name(argv0: str) -> str:
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
        if fp is not None and fp is not getattr(sys.stdin, "buffer", None):  # (None: <&-)
            fp.close()
        storages = self.opts.bpf_storages
        if storages is not None:
            storages.close()  # type: ignore[attr-defined]
            self.opts.bpf_storages = None
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


def apply_option(run: Run, key: str, value: str) -> None:
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
    elif key in _ACTION_OPTS:
        from sockscope.cli import optactions

        optactions.option(run, key, value)
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
        from sockscope.cli.optactions import show_help

        show_help()
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
    "json": _opt_json,
    "j": _opt_json,
    "json-lines": _opt_json_lines,
    "all-netns": _opt_all_netns,
}


#: the options that do more than set a value (print and leave, open a file, enter a
#: namespace, ask the system), applied by cli/optactions.py: a listing never loads it
_ACTION_OPTS = frozenset(("F", "v", "V", "version", "Z", "z", "N", "h", "bpf-maps", "bpf-map-id"))


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


def read_states(run: Run, args: list[str]) -> list[str]:
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
