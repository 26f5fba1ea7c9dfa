"""The non-inet tables (UNIX, PACKET, NETLINK, VSOCK, TIPC, XDP): dispatch and shared parts.

Each family lives in its own module (:mod:`~sockscope.unixsock`,
:mod:`~sockscope.packetsock`, :mod:`~sockscope.nlsock`, :mod:`~sockscope.vsock`,
:mod:`~sockscope.tipcsock`, :mod:`~sockscope.xdpsock`) with the same two entry points:

* ``records(ctx)``: the matching sockets of the table, from the source ss would use (a
  sock_diag dump, or the ``/proc/net`` file when the dump fails or ``PROC_ROOT`` /
  ``PROC_NET_*`` is set), with the user-space filter applied;
* ``row_fn(printer, ctx)``: a function turning one record into the row cells ss prints.

This module holds what they share: the sock_diag dump with ss's error rules
(``handle_netlink_request`` + ``rtnl_dump_filter``), first-wins attribute parsing
(``parse_rtattr``), the ``skmem:(...)`` text (``print_skmeminfo``), and the C library
behaviours the ``/proc`` parsers depend on (``fgets`` into a 256-byte buffer, ``sscanf``).
"""

from __future__ import annotations

import struct
from importlib import import_module
from operator import itemgetter

from sockscope.kernel import abi

from sockscope.kernel import netlink
from sockscope.errors import NetlinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import TypeVar

    _R = TypeVar("_R")

    from sockscope.render.columns import Renderer
    from sockscope.render.view import View
    from sockscope.render.printer import Printer
    from sockscope.tables.inet.source import Context

#: table name (as gather/sources.ORDER spell it) -> module implementing it
MODULES = {
    "unix": "unix",
    "packet": "packet",
    "netlink": "netlink",
    "vsock": "vsock",
    "tipc": "tipc",
    "xdp": "xdp",
}


def _module(name: str):  # type: ignore[no-untyped-def]
    return import_module(f".{MODULES[name]}", __package__)


def show(name: str, ctx: Context, printer: Printer, renderer: Renderer) -> None:
    """Dump one non-inet table into the renderer (the ``*_show()`` functions of ss.c)."""
    if name not in MODULES:
        return
    mod = _module(name)
    renderer.extend(map(mod.row_fn(printer, ctx), mod.records(ctx)))


def records(name: str, ctx: Context) -> Iterator[object]:
    """The matching sockets of one non-inet table (the library's and --json's data path)."""
    if name not in MODULES:
        return iter(())
    return _module(name).records(ctx)  # type: ignore[no-any-return]


# --- filter ------------------------------------------------------------------------------
def apply_filter(recs: Iterable[object], ctx: Context) -> Iterator[object]:
    """run_ssfilter on every record (ss applies the expression in user space)."""
    match = ctx.matcher
    if match is None:
        yield from recs
        return
    for rec in recs:
        if match(rec):
            yield rec


# --- sock_diag dumps -------------------------------------------------------------------------
class DumpFailed(Exception):
    """A sock_diag dump failed as a whole: ss then tries the table's /proc file."""


def diag_request(payload: bytes) -> bytes:
    """DIAG_REQUEST of ss.c: nlmsghdr (SOCK_DIAG_BY_FAMILY, dump, MAGIC_SEQ) + request."""
    return netlink.message(abi.SOCK_DIAG_BY_FAMILY, abi.NLM_F_REQUEST | abi.NLM_F_DUMP, payload)


def diag_dump(ctx: Context, request: bytes) -> Iterator[netlink.Message]:
    """handle_netlink_request: the reply messages of one dump.

    Raises :class:`DumpFailed` where the dump fails. ENOENT and EOPNOTSUPP (the kernel
    lacks the diag module) are silent; other errors print ``RTNETLINK answers: ...`` as
    libnetlink's perror does (these dumps do not suppress errors, unlike the inet ones).
    """
    try:
        sock = netlink.open_diag()
    except OSError as e:
        ctx.warn(f"Cannot open netlink socket: {e.strerror}")
        raise DumpFailed from None
    state = netlink.DumpState()
    try:
        yield from netlink.dump(sock, request, None, state)
    except NetlinkError as e:
        if e.errno not in netlink.SILENT_ERRNOS:
            ctx.warn(e.message)
        raise DumpFailed from None
    except OSError as e:
        ctx.warn(f"netlink receive error {e.strerror} ({e.errno})")
        raise DumpFailed from None
    finally:
        sock.close()
    if state.interrupted:
        ctx.warn("Dump was interrupted and may be inconsistent.")


def decoded(
    messages: Iterable[netlink.Message],
    decode: Callable[[bytes, int, int], _R | None],
    dbs: int = -1,
    type_db: dict[int, int] | None = None,
) -> Iterator[_R]:
    """The records of one dump (``diag_dump``'s messages): every message decoded; with
    ``type_db`` (socket type -> table), sockets of tables not in ``dbs`` are dropped (ss
    checks the types in user space)."""
    hdr = abi.NLMSGHDR.size
    for _mtype, buf, off, length in messages:
        rec = decode(buf, off + hdr, off + length)
        if rec is None:
            continue
        if type_db is not None:
            db = type_db.get(rec.type)  # type: ignore[attr-defined]
            if db is not None and not dbs >> db & 1:
                continue
        yield rec


def dump_else_proc(
    ctx: Context,
    env_var: str,
    dump: Callable[[Context], Iterator[_R]],
    proc: Callable[[Context], Iterator[_R]],
) -> Iterator[_R]:
    """The shape of unix_show, packet_show and netlink_show: the sock_diag dump through
    the filter, or the /proc reader when ``$env_var`` or ``$PROC_ROOT`` is set or the
    dump fails as a whole (rows already produced stay, as ss's already-printed rows do).
    ``proc`` applies the filter itself."""
    env = ctx.environ
    if env_var not in env and "PROC_ROOT" not in env:
        try:
            yield from apply_filter(dump(ctx), ctx)  # type: ignore[misc]
            return
        except DumpFailed:
            pass
    yield from proc(ctx)


def parse_attrs(buf: bytes, off: int, end: int) -> dict[int, tuple[int, int]]:
    """parse_rtattr: type -> (payload start, payload end); the *first* of a type wins."""
    out: dict[int, tuple[int, int]] = {}
    unpack = abi.RTATTR.unpack_from
    while off + 4 <= end:
        length, rtype = unpack(buf, off)
        if length < 4 or off + length > end:
            break
        if rtype not in out:
            out[rtype] = (off + 4, off + length)
        off += (length + 3) & ~3
    return out


def u32_at(buf: bytes, span: tuple[int, int] | None) -> int:
    """rta_getattr_u32, 0 for a missing or short attribute."""
    if span is None or span[1] - span[0] < 4:
        return 0
    return int.from_bytes(buf[span[0] : span[0] + 4], "little")


def u64_at(buf: bytes, span: tuple[int, int] | None) -> int:
    """rta_getattr_u64, 0 for a missing or short attribute."""
    if span is None or span[1] - span[0] < 8:
        return 0
    return int.from_bytes(buf[span[0] : span[0] + 8], "little")


def struct_at(layout: struct.Struct, buf: bytes, span: tuple[int, int]) -> tuple[int, ...]:
    """RTA_DATA cast to a struct: a short payload reads as zero-filled."""
    data = buf[span[0] : span[1]]
    if len(data) < layout.size:
        data = data.ljust(layout.size, b"\0")
    return layout.unpack_from(data)


def meminfo(buf: bytes, span: tuple[int, int] | None) -> tuple[int, ...] | None:
    """An SK_MEMINFO_* u32 array (as many words as were sent), None when absent."""
    if span is None:
        return None
    n = (span[1] - span[0]) // 4
    return struct.unpack_from(f"={n}I", buf, span[0])


def skmem_text(words: tuple[int, ...] | None) -> str:
    """print_skmeminfo: `` skmem:(r..,rb..,t..,tb..,f..,w..,o..[,bl..][,d..])``."""
    if words is None:
        return ""
    w = list(words[:9]) + [0] * (7 - len(words))
    text = " skmem:(r{},rb{},t{},tb{},f{},w{},o{}".format(*w[:7])
    if len(words) > abi.SK_MEMINFO_BACKLOG:
        text += f",bl{words[abi.SK_MEMINFO_BACKLOG]}"
    if len(words) > abi.SK_MEMINFO_DROPS:
        text += f",d{words[abi.SK_MEMINFO_DROPS]}"
    return text + ")"


def skmem_dict(words: tuple[int, ...]) -> dict[str, int]:
    """An SK_MEMINFO array as the data view's ``skmem`` object."""
    from sockscope.render.view import skmem

    return skmem(struct.pack(f"={len(words)}I", *words), (0, 4 * len(words)))


def add_owners(view: View | None, inode: int, out: dict[str, object]) -> None:
    """``users`` of the data view (``-p``), when the view asks for owners."""
    if view is None:
        return
    from sockscope.render.view import owners

    users = owners(view, inode)
    if users:
        out["users"] = users


def details_text(uid: int, inode: int, cookie: int) -> str:
    """sock_details_print for the families without mark/cgroup (packet, xdp, tipc)."""
    return (f" uid:{uid}" if uid else "") + f" ino:{inode} sk:{cookie:x}"


# --- rows ------------------------------------------------------------------------------------
def picker(printer: Printer) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """Select the enabled slots from a full 10-cell row (Netid .. extra information)."""
    return itemgetter(*printer.enabled)


def to_signed32(value: int) -> int:
    """A u32 as C's ``int`` reads it."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


# --- C library behaviour the /proc parsers depend on ----------------------------------------
def fgets(data: bytes, size: int = 256) -> Iterator[bytes]:
    """What successive ``fgets(buf, size, fp)`` calls return over ``data``.

    A line longer than ``size - 1`` bytes comes back in pieces; the last line may lack
    its newline.
    """
    pos = 0
    end = len(data)
    room = size - 1
    while pos < end:
        nl = data.find(b"\n", pos, pos + room)
        stop = min(pos + room, end) if nl < 0 else nl + 1
        yield data[pos:stop]
        pos = stop


def open_fgets(path: str, size: int = 256) -> Iterator[bytes]:
    """fopen(path) now (OSError if it fails), then what successive ``fgets`` calls return,
    read lazily in bounded pieces: a file without end (``/dev/zero``) costs no memory. A
    read error ends the lines, as fgets() returning NULL does."""
    f = open(path, "rb")  # noqa: SIM115 - closed by the generator

    def lines() -> Iterator[bytes]:
        with f:
            buf = b""
            room = size - 1
            while True:
                nl = buf.find(b"\n", 0, room)
                if nl >= 0 or len(buf) >= room:
                    stop = room if nl < 0 else nl + 1
                    yield buf[:stop]
                    buf = buf[stop:]
                    continue
                try:
                    chunk = f.read1(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    if buf:
                        yield buf
                    return
                buf += chunk

    return lines()


_BLANKS = b" \t\n\v\f\r"
_DIGITS = {10: b"0123456789", 16: b"0123456789abcdefABCDEF"}


def _scan_int(text: bytes, pos: int, base: int) -> tuple[int, int] | None:
    """One integer conversion at ``pos`` (blanks already skipped): (value, new pos)."""
    i = pos
    neg = False
    if i < len(text) and text[i] in b"+-":
        neg = text[i] == 45
        i += 1
    if base == 16 and text[i : i + 2].lower() == b"0x":
        i += 2
    digits = _DIGITS[base]
    start = i
    while i < len(text) and text[i] in digits:
        i += 1
    if i == start:
        return None
    value = int(text[start:i], base)
    return (-value if neg else value), i


def scanf(text: bytes, fmt: str) -> list[object]:
    """A small ``sscanf``: the values assigned, in order (their count is sscanf's result).

    Supports blanks (any run of whitespace), literal characters, ``%d %u %x %lld %llu
    %llx %s``, ``%*`` (convert without assigning). Integers wrap like the C variables
    they are stored in: 32 bits unless ``ll``; ``%d`` signed, ``%u``/``%x`` unsigned.
    The input ends at a NUL byte, as a C string does.
    """
    nul = text.find(b"\0")
    if nul >= 0:
        text = text[:nul]
    out: list[object] = []
    pos = 0
    i = 0
    n = len(fmt)
    while i < n:
        ch = fmt[i]
        if ch == " ":
            while pos < len(text) and text[pos] in _BLANKS:
                pos += 1
            i += 1
            continue
        if ch != "%":
            if pos >= len(text) or text[pos] != ord(ch):
                return out
            pos += 1
            i += 1
            continue
        i += 1
        skip = fmt[i] == "*"
        if skip:
            i += 1
        wide = fmt.startswith("ll", i)
        if wide:
            i += 2
        conv = fmt[i]
        i += 1
        while pos < len(text) and text[pos] in _BLANKS:
            pos += 1
        if pos >= len(text):
            return out
        if conv == "s":
            start = pos
            while pos < len(text) and text[pos] not in _BLANKS:
                pos += 1
            if not skip:
                out.append(text[start:pos])
            continue
        got = _scan_int(text, pos, 16 if conv == "x" else 10)
        if got is None:
            return out
        value, pos = got
        if not skip:
            out.append(_c_int(value, conv, wide))
    return out


def _c_int(value: int, conv: str, wide: bool) -> int:
    """strtol/strtoul clamping, then the store into a 32- or 64-bit variable."""
    if conv == "d":
        value = max(-(1 << 63), min(value, (1 << 63) - 1))
    elif value > (1 << 64) - 1 or value < -((1 << 64) - 1):
        value = (1 << 64) - 1
    bits = 64 if wide else 32
    value &= (1 << bits) - 1
    if conv == "d" and value >> (bits - 1):
        value -= 1 << bits
    return value
