"""Operands of the ss filter language: hosts, ports, devices, marks and cgroups.

This module turns the text after ``src``/``dst``/``sport``/``dport``/``dev``/``fwmark``/
``cgroup`` into values, exactly as iproute2 7.1 does it (``parse_hostcond``,
``parse_devcond``, ``parse_markmask``, ``parse_cgroupcond`` in ``misc/ss.c`` and
``get_prefix_1``/``get_addr_1`` in ``lib/utils.c``). That includes the C library number
conventions (``strtoul(..., 0)`` octets, so ``0177.0.0.1`` and ``127.1`` are what they are
in ss), the family prefixes (``unix:``, ``link:``, ``netlink:``, ``vsock:``, ``inet:``,
``inet6:``) and the side effect a family has on the selection (:class:`FilterContext`).

Name lookups go to the C library (``getservbyname``, ``gethostbyname2``,
``if_nametoindex``) so that the answers are the ones ss would get. Errors raise
:class:`~sockscope.errors.FilterError` with ss's text and exit status.
"""

from __future__ import annotations

import _socket as socket  # the C module: socket.py costs ~3 ms of start-up (enum, selectors)
import os
import sys

from sockscope.errors import FilterError
from sockscope.kernel import abi
from sockscope.kernel.iproute import (
    LL_PROTO_NAMES,
    NL_PROTO_NAMES,
    NL_PROTOS_FILES,
    ephemeral_range,
    find_cgroup2_mount,
)
from sockscope.kernel.libc import (
    UINT_MAX,
    ULONG_MAX,
    c_strtol,
    c_strtoul,
    scanf_int,
    scanf_unsigned,
)

TYPE_CHECKING = False  # no typing import at run time
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "FilterContext",
    "HostCond",
    "Prefix",
    "ephemeral_range",
    "parse_cgroupcond",
    "parse_devcond",
    "parse_hostcond",
    "parse_markmask",
]


#: default_afs[].states of ss.c: the states a family option adds.
_FAMILY_STATES = {
    abi.AF_INET: abi.SS_CONN,
    abi.AF_INET6: abi.SS_CONN,
    abi.AF_UNIX: abi.SS_CONN,
    abi.AF_PACKET: 1 << abi.SS_CLOSE,
    abi.AF_NETLINK: 1 << abi.SS_CLOSE,
    abi.AF_VSOCK: abi.SS_CONN,
    abi.AF_TIPC: abi.TIPC_SS_CONN,
    abi.AF_XDP: 1 << abi.SS_CLOSE,
}

#: The operand prefixes parse_hostcond recognises, in its order.
FAMILY_PREFIXES = (
    ("unix:", abi.AF_UNIX),
    ("link:", abi.AF_PACKET),
    ("netlink:", abi.AF_NETLINK),
    ("vsock:", abi.AF_VSOCK),
    ("inet:", abi.AF_INET),
    ("inet6:", abi.AF_INET6),
)
FAMILY_PREFIX_OF = {fam: prefix for prefix, fam in FAMILY_PREFIXES}


class FilterContext:
    """The part of ss's selection that filter parsing reads and changes.

    ``preferred_family`` is the AF_* of the last family option (AF_UNSPEC if none); host
    operands are parsed in it. ``families`` (``1 << AF_x`` bits) and ``preferred_family``
    are *reset* by every operand whose family is not unspecified, as ss's parse_hostcond
    does; ``states`` is kept (or, if 0, set to the family's default states). ``dbs`` (the
    ``1 << *_DB`` table bits) decides which of the tcp/udp service tables name lookups use.
    """

    __slots__ = ("dbs", "families", "preferred_family", "states", "warn", "warnings")

    def __init__(
        self,
        preferred_family: int = abi.AF_UNSPEC,
        families: int = (1 << abi.AF_MAX) - 1,
        dbs: int = abi.ALL_DB,
        states: int = abi.SS_CONN,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.preferred_family = preferred_family
        self.families = families
        self.dbs = dbs
        self.states = states
        #: the warnings ss prints on stderr while it parses (each a line with its
        #: newline), in order; ``warn``, when given, is also called with each as it comes
        #: (the CLI prints them then, before any error that follows)
        self.warnings: list[str] = []
        self.warn = warn

    def warning(self, text: str) -> None:
        """A warning of the parse (never an error: the parse goes on)."""
        self.warnings.append(text)
        if self.warn is not None:
            self.warn(text)

    def set_family(self, fam: int) -> None:
        """The tail of parse_hostcond: families := {fam}, preferred := fam, states kept."""
        self.families = 1 << fam
        self.preferred_family = fam
        if not self.states:
            self.states = _FAMILY_STATES.get(fam, 0)

    def __repr__(self) -> str:
        return (
            f"FilterContext(preferred_family={self.preferred_family}, "
            f"families={self.families:#x}, dbs={self.dbs:#x}, states={self.states:#x})"
        )


class Prefix:
    """An inet_prefix: family, prefix length in bits and the address bytes (16, padded)."""

    __slots__ = ("bitlen", "data", "family")

    def __init__(self, family: int, bitlen: int, data: bytes) -> None:
        self.family = family
        self.bitlen = bitlen
        self.data = data.ljust(16, b"\0")

    def _key(self) -> tuple[int, int, bytes]:
        return (self.family, self.bitlen, self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prefix) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Prefix({self.family}, {self.bitlen}, {self.data.hex()})"


class HostCond:
    """A parsed src/dst/sport/dport operand (ss's ``struct aafilter``).

    ``addrs`` holds the alternatives (one for a literal, every resolved address for a
    host name, in ss's list order; the kernel bytecode only ever uses the first).
    ``pattern`` is the unix glob when ``family`` is AF_UNIX. ``port`` is -1 for "any".
    ``text`` is the operand as written (after unescaping), used to print the filter back.
    """

    __slots__ = ("addrs", "family", "pattern", "port", "text")

    def __init__(
        self,
        family: int,
        addrs: tuple[Prefix, ...],
        port: int = -1,
        pattern: str | None = None,
        text: str = "",
    ) -> None:
        self.family = family
        self.addrs = addrs
        self.port = port
        self.pattern = pattern
        self.text = text

    @property
    def bitlen(self) -> int:
        """Prefix length of the first alternative (0: the address is not compared)."""
        return self.addrs[0].bitlen

    def _key(self) -> tuple[object, ...]:
        return (self.family, self.addrs, self.port, self.pattern)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostCond) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"HostCond({self.text!r}, family={self.family}, port={self.port})"


# --- C number conventions ---------------------------------------------------------------


def get_long(s: str) -> int | None:
    """get_long(..., 0) of lib/utils.c: the whole string must be a long."""
    value, end, erange = c_strtol(s)
    if not s or end != len(s) or erange:
        return None
    return value


def get_unsigned(s: str, limit: int = UINT_MAX) -> int | None:
    """get_unsigned/get_u32/get_u16(..., 0): whole string, at most ``limit``."""
    value, end, erange = c_strtoul(s)
    if not s or end != len(s) or erange or value > limit:
        return None
    return value


# --- addresses (lib/utils.c) ------------------------------------------------------------


def _get_addr_ipv4(s: str) -> bytes | None:
    """get_addr_ipv4: up to four strtoul(..., 0) components, missing ones are zero."""
    out = bytearray(4)
    for i in range(4):
        n, end, _ = c_strtoul(s, 0)
        if n > 255 or end == 0:
            return None
        out[i] = n
        if end == len(s):
            return bytes(out)
        if i == 3 or s[end] != ".":
            return None
        s = s[end + 1 :]
    return bytes(out)  # pragma: no cover - the loop always returns


def _get_addr_1(name: str, family: int) -> tuple[int, int, bytes] | None:
    """__get_addr_1: (family, bitlen or -2 for the wildcards, address bytes)."""
    if name in ("default", "all", "any"):
        return family, -2, b""
    if ":" in name:
        if family not in (abi.AF_UNSPEC, abi.AF_INET6):
            return None
        try:
            return abi.AF_INET6, 128, socket.inet_pton(socket.AF_INET6, name)
        except (OSError, ValueError):
            return None
    if family not in (abi.AF_UNSPEC, abi.AF_INET):
        return None
    data = _get_addr_ipv4(name)
    return None if data is None else (abi.AF_INET, 32, data)


def _mask2bits(mask: int) -> int:
    host = ~mask & UINT_MAX
    if host & (host + 1) & UINT_MAX:
        return -1
    return 32 - host.bit_length()


def _get_netmask(s: str) -> int | None:
    """get_netmask: a number, or a dotted mask (contiguous ones only)."""
    plen = get_unsigned(s)
    if plen is not None:
        return plen
    addr = _get_addr_1(s, abi.AF_INET)
    if addr is not None and addr[0] == abi.AF_INET:
        bits = _mask2bits(int.from_bytes(addr[2].ljust(4, b"\0"), "big"))
        if bits >= 0:
            return bits
    return None


def _af_bit_len(family: int) -> int:
    return {abi.AF_INET6: 128, abi.AF_INET: 32}.get(family, 0)


def get_prefix(text: str, family: int) -> Prefix | None:
    """get_prefix_1 of lib/utils.c: ``ADDR[/LEN|/MASK]``, ``any``/``all``/``default``."""
    addr, slash, mask = text.partition("/")
    parsed = _get_addr_1(addr, family)
    if parsed is None:
        return None
    fam, bitlen, data = parsed
    if slash:
        if bitlen == -2:
            return None
        plen = _get_netmask(mask)
        if plen is None or plen > _af_bit_len(fam):
            return None
        bitlen = plen
    elif bitlen == -2:
        bitlen = 0
    return Prefix(fam, bitlen, data)


def _gethostbyname2(name: str, family: int) -> list[bytes]:
    """Every address gethostbyname2() returns, in its order (C library first)."""
    try:
        return _libc_gethostbyname2(name, family)
    except (ImportError, OSError, AttributeError):  # pragma: no cover - no usable libc
        pass
    try:
        infos = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return []
    out: list[bytes] = []
    for info in infos:
        packed = socket.inet_pton(family, str(info[4][0]).partition("%")[0])
        if packed not in out:
            out.append(packed)
    return out


def _libc_gethostbyname2(name: str, family: int) -> list[bytes]:
    import ctypes

    class HostEnt(ctypes.Structure):
        _fields_ = (
            ("h_name", ctypes.c_char_p),
            ("h_aliases", ctypes.POINTER(ctypes.c_char_p)),
            ("h_addrtype", ctypes.c_int),
            ("h_length", ctypes.c_int),
            ("h_addr_list", ctypes.POINTER(ctypes.POINTER(ctypes.c_char))),
        )

    libc = ctypes.CDLL(None)
    fn = libc.gethostbyname2
    fn.restype = ctypes.POINTER(HostEnt)
    fn.argtypes = (ctypes.c_char_p, ctypes.c_int)
    raw = os.fsencode(name)
    if b"\0" in raw:
        return []
    he = fn(raw, family)
    if not he:
        return []
    ent = he.contents
    if ent.h_addrtype not in (abi.AF_INET, abi.AF_INET6):
        return []
    out = []
    i = 0
    while ent.h_addr_list[i]:
        out.append(ctypes.string_at(ent.h_addr_list[i], ent.h_length))
        i += 1
    return out


def _get_dns_host(name: str, family: int) -> tuple[Prefix, ...]:
    """get_dns_host + remember_he: the resolved addresses in ss's list order.

    The first address stays at the head and every later one is inserted right after
    it, so the list reads: first, last, ..., second (then the same for AF_INET6).
    """
    found: list[Prefix] = []
    families = (abi.AF_INET, abi.AF_INET6) if family == abi.AF_UNSPEC else (family,)
    for fam in families:
        for data in _gethostbyname2(name, fam):
            prefix = Prefix(fam, len(data) * 8, data)
            if found:
                found.insert(1, prefix)
            else:
                found.append(prefix)
    return tuple(found)


# --- ports and services -----------------------------------------------------------------


def _getservbyname(name: str, proto: str) -> int | None:
    try:
        return socket.getservbyname(name, proto)
    except (OSError, UnicodeError, ValueError):
        return None


def _libc_services(name: str, udp: bool, tcp: bool) -> tuple[int | None, int | None] | None:
    """ss's two getservbyname() calls, made the same way through the C library.

    Both calls return the same static ``struct servent``, so ss compares a buffer with
    itself (never "ambiguous") and, when the UDP lookup succeeds but the TCP one fails,
    reads the port of whatever entry the failed scan left there (with nss files: the
    last line of /etc/services). Returns (se1 port, se2 port) read as ss reads them, or
    None when libc cannot be called.
    """
    try:
        import ctypes

        class Servent(ctypes.Structure):
            _fields_ = (
                ("s_name", ctypes.c_char_p),
                ("s_aliases", ctypes.c_void_p),
                ("s_port", ctypes.c_int),
                ("s_proto", ctypes.c_char_p),
            )

        getserv = ctypes.CDLL(None).getservbyname
        getserv.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
        getserv.restype = ctypes.POINTER(Servent)
    except (ImportError, OSError, AttributeError):  # pragma: no cover - no usable libc
        return None
    raw = os.fsencode(name)
    se1 = getserv(raw, b"udp") if udp else None
    se2 = getserv(raw, b"tcp") if tcp else None
    one = se1.contents.s_port if se1 else None  # read after both calls, like ss
    two = se2.contents.s_port if se2 else None
    swap = socket.ntohs
    return (
        None if one is None else swap(one & 0xFFFF),
        None if two is None else swap(two & 0xFFFF),
    )


def _parse_port(port: str, ctx: FilterContext) -> int:
    """The port branch of parse_hostcond: a number (strtol base 0) or a service name."""
    value = get_long(port)
    if value is not None:
        return value
    want_udp = bool(ctx.dbs & (1 << abi.UDP_DB))
    want_tcp = bool(ctx.dbs & (1 << abi.TCP_DB))
    if "\0" not in port and (want_udp or want_tcp):
        both = _libc_services(port, want_udp, want_tcp)
        if both is not None:
            if both[0] is not None and both[1] is not None and both[0] != both[1]:
                raise _addr_error(f'Error: ambiguous port "{port}".')
            found = both[0] if both[0] is not None else both[1]
            if found is None:
                raise _addr_error(f'Error: "{port}" does not look like a port.')
            return found
    udp = _getservbyname(port, "udp") if ctx.dbs & (1 << abi.UDP_DB) else None
    tcp = _getservbyname(port, "tcp") if ctx.dbs & (1 << abi.TCP_DB) else None
    if udp is not None and tcp is not None and udp != tcp:
        raise _addr_error(f'Error: ambiguous port "{port}".')
    found = udp if udp is not None else tcp
    if found is None:  # ss would also search its rpcbind cache (-r only)
        raise _addr_error(f'Error: "{port}" does not look like a port.')
    return found


def _addr_error(first: str | None = None) -> FilterError:
    text = "Cannot parse dst/src address."
    return FilterError(text if first is None else f"{first}\n{text}")


# --- link, netlink, vsock operands ------------------------------------------------------


def _split_port(addr: str, is_port: bool) -> tuple[str, str | None]:
    """find_port: (address part, port part without its ':' or None)."""
    if is_port:
        return "", addr[1:] if addr.startswith(":") else addr
    head, colon, tail = addr.partition(":")
    return (head, tail) if colon else (addr, None)


def ll_proto_a2n(name: str) -> int | None:
    """ll_proto_a2n: an Ethernet protocol name (any case) or a 16-bit number."""
    low = name.lower() if name.isascii() else name
    for number, proto in LL_PROTO_NAMES:
        if proto.lower() == low:
            return number
    return get_unsigned(name, 0xFFFF)


def nl_proto_a2n(name: str) -> int | None:
    """nl_proto_a2n: a name from nl_protos (case-sensitive) or a number <= 255."""
    for number, proto in sorted(_nl_proto_table().items()):
        if proto == name:
            return number
    return get_unsigned(name, 255)


def _nl_proto_table() -> dict[int, str]:
    table = dict(NL_PROTO_NAMES)
    for path in NL_PROTOS_FILES:
        try:
            with open(path, "rb") as fp:
                lines = fp.read().decode("latin-1").splitlines()
        except FileNotFoundError:
            continue
        except OSError:
            break
        for line in lines:
            words = line.split()
            if not words or words[0].startswith("#") or len(words) < 2:
                continue
            num = _table_id(words[0])
            if num is not None and 0 <= num < 256:
                table[num] = words[1]
        break
    return table


def _table_id(word: str) -> int | None:
    if word[:2] in ("0x", "0X"):
        value, end, _ = c_strtoul(word[2:], 16)
    else:
        value, end, _ = c_strtol(word, 10)
    return value if end else None


def _parse_link(addr: str, is_port: bool, ctx: FilterContext) -> HostCond:
    addr, port_text = _split_port(addr, is_port)
    port = -1
    if port_text and port_text != "*":
        value = get_long(port_text)
        if value is None:
            value = name_to_index(port_text, ctx)
            if value <= 0:
                raise _addr_error()
        port = value
    prefix = Prefix(abi.AF_PACKET, 0, b"")
    if not is_port and addr and addr != "*":
        proto = ll_proto_a2n(addr)
        if proto is None:
            raise _addr_error()
        prefix = Prefix(abi.AF_PACKET, 32, proto.to_bytes(4, sys.byteorder))
    return HostCond(abi.AF_PACKET, (prefix,), port)


def _parse_netlink(addr: str, is_port: bool) -> HostCond:
    addr, port_text = _split_port(addr, is_port)
    port = -1
    if port_text and port_text != "*":
        value = get_long(port_text)
        if value is None:
            if port_text != "kernel":
                raise _addr_error()
            value = 0
        port = value
    prefix = Prefix(abi.AF_NETLINK, 0, b"")
    if not is_port and addr and addr != "*":
        proto = nl_proto_a2n(addr)
        if proto is None:
            raise _addr_error()
        prefix = Prefix(abi.AF_NETLINK, 32, proto.to_bytes(4, sys.byteorder))
    return HostCond(abi.AF_NETLINK, (prefix,), port)


def _parse_vsock(addr: str, is_port: bool) -> HostCond:
    """The vsock branch, bugs included: the CID is never compared (prefix length 0)
    and a port is stored with a 32-bit write into a -1 long, so it never matches."""
    addr, port_text = _split_port(addr, is_port)
    port = -1
    if port_text is not None and port_text != "*":
        value = get_unsigned(port_text)
        if value is None:
            raise _addr_error()
        port = value - (1 << 32)
    cid = UINT_MAX
    if not is_port and addr and addr != "*":
        value = get_unsigned(addr)
        if value is None:
            raise _addr_error()
        cid = value
    return HostCond(abi.AF_VSOCK, (Prefix(abi.AF_VSOCK, 0, cid.to_bytes(4, sys.byteorder)),), port)


# --- inet operands ----------------------------------------------------------------------


def _parse_inet(addr: str, is_port: bool, fam: int, ctx: FilterContext) -> HostCond:
    port_text: str | None
    if addr.startswith("["):
        addr, bracket, port_text = addr[1:].partition("]")
        if not bracket:
            raise _addr_error()
    elif addr.startswith("*"):
        port_text = addr[1:]
    elif is_port:
        port_text = None
    else:
        colon = addr.rfind(":", max(addr.find("/"), 0))
        port_text = None if colon < 0 else addr[colon:]
        if colon >= 0:
            addr = addr[:colon]
    if is_port:  # the whole (bracket-stripped) operand is the port
        port_text = addr
    port = -1
    if port_text:
        if port_text.startswith(":"):
            port_text = port_text[1:]
        if port_text and not port_text.startswith("*"):
            port = _parse_port(port_text, ctx)
    addrs: tuple[Prefix, ...] = (Prefix(fam, 0, b""),)
    if not is_port and addr and not addr.startswith("*"):
        prefix = get_prefix(addr, fam)
        if prefix is not None:
            addrs = (prefix,)
        else:
            addrs = _get_dns_host(addr, fam)
            if not addrs:
                raise _addr_error(f'Error: an inet prefix is expected rather than "{addr}".')
    return HostCond(fam, addrs, port)


def parse_hostcond(text: str, is_port: bool, ctx: FilterContext) -> HostCond:
    """parse_hostcond of ss.c: one src/dst (``is_port`` false) or sport/dport operand.

    Raises FilterError (status 1) like ss; on success, a family other than "unspecified"
    resets ``ctx.families`` and ``ctx.preferred_family`` to it.
    """
    fam = ctx.preferred_family
    addr = text
    for prefix, prefix_fam in FAMILY_PREFIXES:
        if addr.startswith(prefix):
            fam, addr = prefix_fam, addr[len(prefix) :]
            break
    cond: HostCond
    if fam == abi.AF_UNIX:
        cond = HostCond(abi.AF_UNIX, (Prefix(abi.AF_UNIX, 0, b""),), pattern=addr)
    elif fam == abi.AF_PACKET:
        cond = _parse_link(addr, is_port, ctx)
    elif fam == abi.AF_NETLINK:
        cond = _parse_netlink(addr, is_port)
    elif fam == abi.AF_VSOCK:
        cond = _parse_vsock(addr, is_port)
    else:
        cond = _parse_inet(addr, is_port, fam, ctx)
    cond.text = text
    if fam != abi.AF_UNSPEC:
        ctx.set_family(fam)
    return cond


# --- dev, fwmark, cgroup ----------------------------------------------------------------


#: ll_link_get's request: nlmsghdr + ifinfomsg + 1024 bytes, of which IFLA_EXT_MASK
#: takes 8; a name attribute (the name and its NUL) that does not fit is refused
_LINK_REQUEST_BOUND = 16 + 16 + 1024
_LINK_REQUEST_USED = 16 + 16 + 8


def name_to_index(name: str, ctx: FilterContext | None = None) -> int:
    """ll_name_to_index: a device name (if_nametoindex) or the ``ifN`` form; 0 if none.

    A name that is no device is first asked of the kernel by ll_link_get, whose request
    has room for a name of 1,011 bytes: a longer one makes libnetlink's addattr_l print
    a warning (to ``ctx``) before the lookup goes on without it.
    """
    size = len(name.encode("utf-8", "surrogateescape"))
    if _LINK_REQUEST_USED + ((size + 5 + 3) & ~3) > _LINK_REQUEST_BOUND and ctx is not None:
        ctx.warning(f"addattr_l ERROR: message exceeded bound of {_LINK_REQUEST_BOUND}\n")
    try:
        return socket.if_nametoindex(name)
    except (OSError, ValueError, UnicodeError):
        pass
    if name.startswith("if"):
        return scanf_unsigned(name[2:]) or 0
    return 0


def parse_devcond(text: str, ctx: FilterContext | None = None) -> int:
    """parse_devcond: the interface index of ``dev NAME|INDEX`` (warnings to ``ctx``)."""
    index = name_to_index(text, ctx)
    if index == 0:
        value = get_unsigned(text, ULONG_MAX)
        if value is None or value > UINT_MAX:
            raise FilterError("Cannot parse device.")
        index = value
    return index


def parse_markmask(text: str) -> tuple[int, int]:
    """parse_markmask: ``MARK[/MASK]`` with scanf's ``%i`` (trailing junk ignored)."""
    error = FilterError(f"Cannot parse mark {text}.")
    first = scanf_int(text)
    if first is None:
        raise error
    if "/" not in text:
        return first[0], UINT_MAX
    rest = text[first[1] :]
    second = scanf_int(rest[1:]) if rest.startswith("/") else None
    if second is None:
        raise error
    return first[0], second[0]


def parse_cgroupcond(text: str) -> int:
    """parse_cgroupcond: the cgroup v2 id of a path (get_cgroup2_id of lib/fs.c)."""
    notes: list[str] = []
    cgroup_id = _cgroup2_id(text, notes.append)
    if not cgroup_id:
        notes.append(f"Cannot parse cgroup {text}.")
        raise FilterError("\n".join(notes))
    return cgroup_id


def _cgroup2_id(path: str, note: Callable[[str], None]) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(16)
    mount_id = ctypes.c_int()

    def handle(dirfd: int, name: str) -> int | None:
        ctypes.memmove(buf, (8).to_bytes(4, sys.byteorder), 4)
        raw = os.fsencode(name)
        if libc.name_to_handle_at(dirfd, raw, buf, ctypes.byref(mount_id), 0) < 0:
            return None
        if int.from_bytes(buf.raw[:4], sys.byteorder) != 8:
            note("Invalid size of cgroup2 ID")
            return 0
        return int.from_bytes(buf.raw[8:16], sys.byteorder)

    found = handle(-100, path)  # AT_FDCWD
    if found is not None:
        return found
    path = path.lstrip("/")
    if not path:
        note("Invalid cgroup2 path")
        return 0
    mnt = find_cgroup2_mount(note)
    if mnt is None:
        return 0
    try:
        fd = os.open(mnt, os.O_RDONLY)
    except OSError:
        note("Failed to open cgroup2 mount")
        return 0
    try:
        found = handle(fd, path)
        if found is None:
            note(f"Failed to get cgroup2 ID: {os.strerror(ctypes.get_errno())}")
            return 0
        return found
    finally:
        os.close(fd)
