"""The options ss acts on at once while it reads its command line, beyond setting a
value: ``-h``/``-V``/``--version`` (and ``-f help``) print and leave, ``-F`` opens the
filter file, ``-N`` enters the namespace, ``-Z``/``-z`` ask for SELinux,
``--bpf-maps``/``--bpf-map-id`` check the maps.

cli/argv.py's option switch hands these to :func:`option` in getopt order; imported
only for them, so that a listing's start-up does without this module.
"""

from __future__ import annotations

import io
import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)
import sys

from sockscope.cli.status import Exit, warn
from sockscope.errors import ArgumentError, SockscopeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.cli.argv import Run


def option(run: Run, key: str, value: str) -> None:
    """Apply one of these options (a key of cli/argv.py's ``_ACTION_OPTS``)."""
    _ACTIONS[key](run, value)


def _opt_F(run: Run, value: str) -> None:
    if run.filter_fp is not None:
        raise ArgumentError("More than one filter file")
    if value.startswith("-"):
        # ``<&-``: Python leaves sys.stdin None where ss's fgets() on the closed
        # descriptor fails at once, which it takes for the end of the filter
        stdin = getattr(sys.stdin, "buffer", None)
        run.filter_fp = stdin if stdin is not None else io.BytesIO()
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
    raise Exit(0)


def _opt_version(_run: Run, _v: str) -> None:
    """--version: ss's line for -V, byte for byte, then sockscope's own (not for -V)."""
    from sockscope.cli.usage import VERSION, sockscope_version

    sys.stdout.write(VERSION + sockscope_version())
    raise Exit(0)


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
    netns.switch(value, warn)
    run.opts.net = value


def _opt_h(_run: Run, _v: str) -> None:
    """-h/--help: ss's usage text unchanged, then a section on sockscope's own options."""
    from sockscope.cli.usage import SOCKSCOPE_HELP

    show_help(SOCKSCOPE_HELP)


def _opt_bpf_maps(run: Run, _v: str) -> None:
    if run.opts.bpf_map_ids:
        raise ArgumentError("ss: --bpf-maps and --bpf-map-id cannot be used together")
    from sockscope.tables.inet.bpfstorage import Storages

    run.opts.bpf_maps = True
    run.opts.bpf_storages = Storages(show_all=True)


def _opt_bpf_map_id(run: Run, value: str) -> None:
    if run.opts.bpf_maps:
        raise SockscopeError("ss: --bpf-maps and --bpf-map-id cannot be used together")
    from sockscope.cli.status import warn
    from sockscope.ops import bpfmaps
    from sockscope.tables.inet.bpfstorage import Storages

    map_id = bpfmaps.parse_id(value)
    if map_id is None:
        raise SockscopeError(f"ss: invalid BPF map ID {value}")
    storages = run.opts.bpf_storages
    if not isinstance(storages, Storages):
        storages = run.opts.bpf_storages = Storages(show_all=False)
    if map_id not in run.opts.bpf_map_ids:
        bpfmaps.open_map(storages, map_id, value, warn)
    run.opts.bpf_map_ids.append(map_id)


def _selinux_enabled() -> bool:
    from sockscope.ops.procmap import selinux_enabled  # libselinux's is_selinux_enabled

    return selinux_enabled()


def show_help(extra: str = "") -> None:
    from sockscope.cli.usage import USAGE

    sys.stdout.write(USAGE + extra)
    sys.stdout.flush()
    raise Exit(0)


_ACTIONS: dict[str, Callable[[Run, str], None]] = {
    "F": _opt_F,
    "v": _opt_V,
    "V": _opt_V,
    "Z": _opt_Z,
    "z": _opt_z,
    "N": _opt_N,
    "h": _opt_h,
    "bpf-maps": _opt_bpf_maps,
    "bpf-map-id": _opt_bpf_map_id,
    "version": _opt_version,
}
