"""sockscope: iproute2's ss, rebuilt in Python, as a command and a library.

The command ``sockscope`` prints byte for byte what upstream ss 7.1 prints. The library
yields the same sockets as typed records, streaming::

    import sockscope
    for s in sockscope.sockets(tables=["tcp"], states=["listening"]):
        print(s.netid, s.state_name, s.local_address, s.local_port)

    f = sockscope.parse_filter("sport = :22 or dport = :22")
    f.matches(s); str(f); f.bytecode()

Heavier pieces are imported on first use, so ``import sockscope`` stays cheap.
"""


# (no ``from __future__ import annotations``: it imports the __future__ module, which
# could fail for want of memory before the hook below is installed, and under `python -m`
# before the try below can catch a Ctrl-C; the annotations here need nothing that is not
# there at run time)
def _end_by_sigint(_signum: object = None, _frame: object = None) -> None:
    """``python -m sockscope``'s SIGINT handler from the package's first statement until
    main() (cli.command.launch puts Python's back): the process ends at once by SIGINT,
    as Ctrl-C ends ss. A KeyboardInterrupt raised there would be a traceback (in runpy's
    frames, at __main__'s first instruction before its try: the signal-startup
    campaign's "line 0", about 1 run in 1,400), or "Exception ignored" in one of
    importlib's callbacks, and the listing would run on."""
    import _signal  # type: ignore[import-not-found]  # (built in; signal.py builds enums)
    import posix

    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    posix.kill(posix.getpid(), _signal.SIGINT)


try:  # (a def above can not be interrupted: only the module's first instruction can)
    import sys as _sys

    # `python -m sockscope`: argv[0] is "-m" while runpy imports the package
    if _sys.argv[:1] == ["-m"] and "sockscope" in _sys.orig_argv:
        import _signal

        if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:  # not nohup's
            _signal.signal(_signal.SIGINT, _end_by_sigint)
except KeyboardInterrupt:
    import sys as _sys

    if _sys.argv[:1] != ["-m"]:
        raise  # imported by a program: the Ctrl-C is its own
    _end_by_sigint()
    raise SystemExit(130) from None


def _out_of_memory_hook(previous: object) -> object:
    """``python -m sockscope``'s sys.excepthook while runpy imports this package and then
    finds and loads ``__main__`` (sys.argv[0] is ``-m`` only then), where ``__main__``'s
    own handler cannot act yet: memory running out there (RLIMIT_AS: importlib's
    directory listing fails with ENOMEM, dlopen cannot map a C module) is the command's
    one line and status 1, not runpy's traceback. Anything else goes to ``previous``."""

    def hook(kind: type[BaseException], value: BaseException, tb: object) -> None:
        import errno  # (built in)
        import posix

        text = str(value) if isinstance(value, ImportError | SystemError) else ""
        # sockscope.errors.NOMEM_CUES, copied: this runs before that module is imported
        cues = (
            "failed to map segment",
            "cannot map zero-fill",
            "annot allocate memory",
            "NULL without setting an exception",
            "error return without exception set",
            "raised unreported exception",
        )
        if (
            isinstance(value, MemoryError)
            or (isinstance(value, OSError) and value.errno == errno.ENOMEM)
            or any(c in text for c in cues)
        ):
            try:
                posix.write(2, b"sockscope: Cannot allocate memory\n")
            except OSError:
                pass
            posix._exit(1)
        previous(kind, value, tb)  # type: ignore[operator]

    return hook


if _sys.argv[:1] == ["-m"] and "sockscope" in _sys.orig_argv:
    _sys.excepthook = _out_of_memory_hook(_sys.excepthook)  # type: ignore[assignment]

try:  # (after the hook, which covers this import too)
    from sockscope.errors import (
        ArgumentError,
        EventError,
        FilterError,
        KillError,
        NamespaceError,
        NetlinkError,
        NotSupportedError,
        SockscopeError,
        UsageError,
    )
except KeyboardInterrupt:
    if _sys.argv[:1] != ["-m"]:
        raise  # imported by a program: the Ctrl-C is its own
    # `python -m sockscope` without the handler above (never installed, or put back):
    # ss's death by SIGINT all the same, not a traceback
    _end_by_sigint()
    raise SystemExit(130) from None

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sockscope.accel import backend
    from sockscope.api import (
        Query,
        Socket,
        count,
        events,
        kill,
        metrics,
        namespaces,
        parse_filter,
        socket_types,
        sockets,
        summary,
        watch,
    )
    from sockscope.cli import main
    from sockscope.ops.aggregate import Group
    from sockscope.ops.watch import Change
    from sockscope.tables.common import Owner
    from sockscope.tables.inet.record import InetSocket
    from sockscope.tables.netlink import NetlinkSocket
    from sockscope.tables.packet import PacketSocket
    from sockscope.tables.tipc import TipcSocket
    from sockscope.tables.unix import UnixSocket
    from sockscope.tables.vsock import VsockSocket
    from sockscope.tables.xdp import XdpSocket

__all__ = [
    "ArgumentError",
    "Change",
    "EventError",
    "FilterError",
    "Group",
    "InetSocket",
    "KillError",
    "NamespaceError",
    "NetlinkError",
    "NetlinkSocket",
    "NotSupportedError",
    "Owner",
    "PacketSocket",
    "Query",
    "Socket",
    "SockscopeError",
    "TipcSocket",
    "UnixSocket",
    "UsageError",
    "VsockSocket",
    "XdpSocket",
    "__version__",
    "backend",
    "count",
    "events",
    "kill",
    "main",
    "metrics",
    "namespaces",
    "parse_filter",
    "socket_types",
    "sockets",
    "summary",
    "watch",
]

__version__ = "0.1.0"

#: public name -> (module, attribute): imported on first use (PEP 562), so that
#: ``import sockscope`` stays cheap and the command's start-up loads only what it uses
_LAZY = {
    "Query": ("api", "Query"),
    "sockets": ("api", "sockets"),
    "socket_types": ("api", "socket_types"),
    "parse_filter": ("api", "parse_filter"),
    "namespaces": ("api", "namespaces"),
    "summary": ("api", "summary"),
    "kill": ("api", "kill"),
    "events": ("api", "events"),
    "count": ("api", "count"),
    "metrics": ("api", "metrics"),
    "watch": ("api", "watch"),
    "Group": ("ops.aggregate", "Group"),
    "Change": ("ops.watch", "Change"),
    "main": ("cli", "main"),
    "Owner": ("tables.common", "Owner"),
    "InetSocket": ("tables.inet.record", "InetSocket"),
    "UnixSocket": ("tables.unix", "UnixSocket"),
    "PacketSocket": ("tables.packet", "PacketSocket"),
    "NetlinkSocket": ("tables.netlink", "NetlinkSocket"),
    "VsockSocket": ("tables.vsock", "VsockSocket"),
    "TipcSocket": ("tables.tipc", "TipcSocket"),
    "XdpSocket": ("tables.xdp", "XdpSocket"),
    "backend": ("accel", "backend"),
}


def __getattr__(name: str) -> object:
    """Import the public functions lazily (PEP 562)."""
    if name == "Socket":  # the union of the record classes, built on first use
        from sockscope.api import socket_types

        union: object = None
        for cls in socket_types():
            union = cls if union is None else union | cls
        globals()[name] = union
        return union
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'sockscope' has no attribute {name!r}") from None
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value
