"""``ss -s``: the socket summary read from ``/proc/net/sockstat{,6}`` and ``/proc/net/snmp``.

:func:`read` gathers the counters into a :class:`Summary` exactly as ss reads them
(ports of ``get_sockstat``, ``get_sockstat_line`` and ``get_snmp_int``, iproute2 7.1),
including its C parsing rules: ``fgets`` into a fixed buffer, ``sscanf`` conversions that
leave a counter untouched when they fail, 32-bit ``int`` arithmetic. :func:`render`
formats it as ``print_summary`` does. Both honour ``PROC_ROOT``, ``PROC_NET_SOCKSTAT``,
``PROC_NET_SOCKSTAT6`` and ``PROC_NET_SNMP``. Nothing here prints: failures that ss
reports with ``perror`` go to the ``warn`` callback.

(The module is not called ``summary`` because ``sockscope.summary`` is the public
function; a submodule of the same name would replace it on import.)
"""

from __future__ import annotations

import errno as _errno
import os

from sockscope.errors import SockscopeError
from sockscope.kernel.libc import fgets, int32
from sockscope.ops.netns import visit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

#: counters of ss.c's struct ssummary, in its order, then CurrEstab from /proc/net/snmp
FIELDS = (
    "socks",
    "tcp_mem",
    "tcp_total",
    "tcp_orphans",
    "tcp_tws",
    "tcp4_hashed",
    "udp4",
    "raw4",
    "frag4",
    "frag4_mem",
    "tcp6_hashed",
    "udp6",
    "raw6",
    "frag6",
    "frag6_mem",
    "tcp_estab",
)

#: get_sockstat_line: first word of a line -> the counters its %d conversions fill
_LINE_FIELDS: dict[bytes, tuple[str, ...]] = {
    b"sockets:": ("socks",),
    b"UDP:": ("udp4",),
    b"UDP6:": ("udp6",),
    b"RAW:": ("raw4",),
    b"RAW6:": ("raw6",),
    b"TCP6:": ("tcp6_hashed",),
    b"FRAG:": ("frag4", "frag4_mem"),
    b"FRAG6:": ("frag6", "frag6_mem"),
    b"TCP:": ("tcp4_hashed", "tcp_orphans", "tcp_tws", "tcp_total", "tcp_mem"),
}

_SPACE = b" \t\n\v\f\r"
_LONG_MAX = (1 << 63) - 1


class Summary:
    """The numbers behind ``ss -s`` (all C ``int``).

    Raw counters carry ss's names (``socks``, ``tcp_total`` = TCP ``alloc``,
    ``tcp4_hashed`` = TCP ``inuse``, ...); the properties give the derived values ss prints.
    """

    __slots__ = FIELDS

    socks: int
    tcp_mem: int
    tcp_total: int
    tcp_orphans: int
    tcp_tws: int
    tcp4_hashed: int
    udp4: int
    raw4: int
    frag4: int
    frag4_mem: int
    tcp6_hashed: int
    udp6: int
    raw6: int
    frag6: int
    frag6_mem: int
    tcp_estab: int

    def __init__(self, **counters: int) -> None:
        for name in FIELDS:
            setattr(self, name, counters.pop(name, 0))
        if counters:
            raise TypeError(f"unknown counters: {', '.join(sorted(counters))}")

    def as_dict(self) -> dict[str, int]:
        """The raw counters by name."""
        return {name: getattr(self, name) for name in FIELDS}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"Summary({inner})"

    # -- the values print_summary computes ----------------------------------------------
    @property
    def tcp_all(self) -> int:
        """``TCP:`` total: allocated plus time-wait sockets."""
        return int32(self.tcp_total + self.tcp_tws)

    @property
    def tcp_closed(self) -> int:
        """``closed``: allocated sockets not in the hash tables (time-wait excluded)."""
        return int32(self.tcp_total - (self.tcp4_hashed + self.tcp6_hashed - self.tcp_tws))

    def rows(self) -> tuple[tuple[str, int, int, int], ...]:
        """The transport table: (name, total, IPv4, IPv6) per line."""
        ip4 = int32(self.raw4 + self.udp4 + self.tcp4_hashed)
        ip6 = int32(self.raw6 + self.udp6 + self.tcp6_hashed)
        return (
            ("RAW", int32(self.raw4 + self.raw6), self.raw4, self.raw6),
            ("UDP", int32(self.udp4 + self.udp6), self.udp4, self.udp6),
            (
                "TCP",
                int32(self.tcp4_hashed + self.tcp6_hashed),
                self.tcp4_hashed,
                self.tcp6_hashed,
            ),
            ("INET", int32(ip4 + ip6), ip4, ip6),
            ("FRAG", int32(self.frag4 + self.frag6), self.frag4, self.frag6),
        )


def render(s: Summary) -> str:
    """Port of ss.c:print_summary's printf calls (iproute2 7.1), byte for byte."""
    lines = [
        "Total: %d\n" % s.socks,
        "TCP:   %d (estab %d, closed %d, orphaned %d, timewait %d)\n"
        % (s.tcp_all, s.tcp_estab, s.tcp_closed, s.tcp_orphans, s.tcp_tws),
        "\n",
        "Transport Total     IP        IPv6\n",
    ]
    lines += ["%s\t  %-9d %-9d %-9d\n" % row for row in s.rows()]
    lines.append("\n")
    return "".join(lines)


# -- reading ---------------------------------------------------------------------------
def _proc_file(env_var: str, name: str, environ: Mapping[str, str]) -> str:
    """Port of lib/utils.c:generic_proc_open's path rule (``$VAR``, else ``$PROC_ROOT/name``).

    The ``$PROC_ROOT/name`` form is built in a 128-byte buffer with ``snprintf(store,
    127, ...)``, so it is cut to 126 bytes, as in ss.
    """
    path = environ.get(env_var)
    if path is not None:
        return path
    joined = os.fsencode(f"{environ.get('PROC_ROOT', '/proc')}/{name}")[:126]
    return os.fsdecode(joined)


def _scan_int(text: bytes, pos: int) -> tuple[int | None, int]:
    """glibc ``%d``: blanks, optional sign, digits; the value as stored into an ``int``."""
    end = len(text)
    while pos < end and text[pos] in _SPACE:
        pos += 1
    start = pos
    if pos < end and text[pos] in b"+-":
        pos += 1
    digits = pos
    while pos < end and 48 <= text[pos] <= 57:
        pos += 1
    if pos == digits:
        return None, start
    value = int(text[start:pos])
    value = max(-_LONG_MAX - 1, min(_LONG_MAX, value))  # strtol saturates at long
    return int32(value), pos


def _skip_word(text: bytes, pos: int) -> int | None:
    """glibc ``%*s``: blanks, then at least one non-blank."""
    end = len(text)
    while pos < end and text[pos] in _SPACE:
        pos += 1
    if pos == end:
        return None
    while pos < end and text[pos] not in _SPACE:
        pos += 1
    return pos


def _split_line(line: bytes) -> tuple[bytes, bytes] | None:
    """``sscanf(line, "%[^ ] %[^\\n]\\n", id, rem) == 2``: first word and the rest."""
    sp = line.find(b" ")
    if sp == 0:
        return None
    ident = line if sp < 0 else line[:sp]
    if sp < 0:
        return None
    pos = sp
    while pos < len(line) and line[pos] in _SPACE:
        pos += 1
    nl = line.find(b"\n", pos)
    rem = line[pos:] if nl < 0 else line[pos:nl]
    if not rem:
        return None
    return ident, rem


def _sockstat_line(line: bytes, counters: dict[str, int]) -> None:
    """Port of ss.c:get_sockstat_line: ``"%*s%d"`` pairs into the named counters."""
    parts = _split_line(line)
    if parts is None:
        return
    names = _LINE_FIELDS.get(parts[0])
    if names is None:
        return
    rem = parts[1]
    pos = 0
    for name in names:
        skipped = _skip_word(rem, pos)
        if skipped is None:
            return
        value, pos = _scan_int(rem, skipped)
        if value is None:
            return
        counters[name] = value


def _read(path: str) -> Iterator[bytes]:
    """fopen(path, "r") now (OSError if it fails), then the file's pieces as fgets reads
    them: a directory opens fine and reads as empty, a read error ends the file."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def pieces() -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return  # fgets returns NULL on a read error: the end of the file for ss
                if not chunk:
                    return
                yield chunk
        finally:
            os.close(fd)

    return pieces()


def _strerror(e: OSError) -> str:
    return os.strerror(e.errno or 0)


def read_sockstat(environ: Mapping[str, str], counters: dict[str, int]) -> OSError | None:
    """Port of ss.c:get_sockstat. Returns the error of opening sockstat, if any.

    ``sockstat6`` is optional: when it cannot be opened the v6 counters stay 0.
    """
    try:
        data = _read(_proc_file("PROC_NET_SOCKSTAT", "net/sockstat", environ))
    except OSError as e:
        return e
    for line in fgets(data, 256, to_nul=True):
        _sockstat_line(line, counters)
    try:
        data = _read(_proc_file("PROC_NET_SOCKSTAT6", "net/sockstat6", environ))
    except OSError:
        return None
    for line in fgets(data, 256, to_nul=True):
        _sockstat_line(line, counters)
    return None


def snmp_int(data: bytes | Iterable[bytes], proto: bytes, key: bytes) -> int | None:
    """Port of ss.c:get_snmp_int over the file's contents; None if not found (ESRCH).

    The header line gives the position of ``key`` by counting blanks; the value line's
    field at that position is read. Quirk kept: when the key is missing from the header,
    the position is the number of blanks in it, i.e. the last value is returned.
    """
    lines = fgets(data, 1024, to_nul=True)
    for line in lines:
        if not line.startswith(proto):
            continue
        pos = 0
        p = line.find(b" ")
        while p >= 0:
            pos += 1
            p += 1
            if line.startswith(key, p) and line[p + len(key) : p + len(key) + 1] in (b" ", b"\n"):
                break
            p = line.find(b" ", p)
        values = next(lines, None)
        if values is None or not values.startswith(proto):
            return None
        p = values.find(b" ")
        while p >= 0:
            p += 1
            pos -= 1
            if pos == 0:
                value, _end = _scan_int(values, p)
                return 0 if value is None else value
            p = values.find(b" ", p)
    return None


def read(
    environ: Mapping[str, str] | None = None, warn: Callable[[str], None] | None = None
) -> Summary:
    """Read the counters ss -s prints from the current network namespace.

    ``environ`` defaults to ``os.environ``. ss's ``perror`` messages
    (``ss: get_sockstat: <strerror>``, ``ss: get_snmpstat: <strerror>``) are passed to
    ``warn``; the counters concerned are then 0.
    """
    env = os.environ if environ is None else environ
    counters: dict[str, int] = {}
    err = read_sockstat(env, counters)
    if err is not None:
        counters.clear()
        if warn is not None:
            warn(f"ss: get_sockstat: {_strerror(err)}")
    estab: int | None
    try:
        data = _read(_proc_file("PROC_NET_SNMP", "net/snmp", env))
    except OSError as e:
        if warn is not None:
            warn(f"ss: get_snmpstat: {_strerror(e)}")
        estab = 0
    else:
        estab = snmp_int(data, b"Tcp:", b"CurrEstab")
        if estab is None:
            if warn is not None:
                warn(f"ss: get_snmpstat: {os.strerror(_errno.ESRCH)}")
            estab = 0
    counters["tcp_estab"] = estab
    return Summary(**counters)


def summary(netns: str | None = None, environ: Mapping[str, str] | None = None) -> Summary:
    """Library: the counters behind ``ss -s`` (``sockscope.summary()``).

    ``netns`` names a network namespace under /var/run/netns to read instead of the
    current one; ``environ`` (default ``os.environ``) supplies ``PROC_ROOT`` and the
    ``PROC_NET_*`` overrides. Where ss would print a ``perror`` message and go on with
    zeros, this raises :class:`~sockscope.errors.SockscopeError` with that message.
    """
    problems: list[str] = []
    if netns is None:
        result = read(environ, problems.append)
    else:
        result = visit(netns, lambda: read(environ, problems.append))
    if problems:
        raise SockscopeError("\n".join(problems))
    return result


# -- node_exporter's reading (``--metrics``) -------------------------------------------
def read_pairs(
    environ: Mapping[str, str] | None = None,
) -> list[tuple[bool, str, list[str]]]:
    """``/proc/net/sockstat`` then ``sockstat6`` as the Prometheus node_exporter's
    sockstat collector reads them (procfs ``parseSockstat``): per line, whether it is
    the IPv6 file's, the protocol (``TCP``, ``UDP6``, ``sockets``; the colon dropped)
    and its ``key value`` words.

    Honours ``PROC_NET_SOCKSTAT``, ``PROC_NET_SOCKSTAT6`` and ``PROC_ROOT`` as ``-s``
    does, except that without ``PROC_ROOT`` the files are read through
    ``/proc/thread-self/net``, so a thread that entered a namespace reads that
    namespace's (``/proc/net`` follows the main thread's). A missing file is skipped
    (IPv6 disabled); another error, or a malformed line (fewer than three words, an odd
    number of words after the protocol), raises :class:`~sockscope.errors.SockscopeError`.
    """
    env = os.environ if environ is None else environ
    out: list[tuple[bool, str, list[str]]] = []
    for var, name in (
        ("PROC_NET_SOCKSTAT", "net/sockstat"),
        ("PROC_NET_SOCKSTAT6", "net/sockstat6"),
    ):
        if var not in env and "PROC_ROOT" not in env and os.path.exists("/proc/thread-self"):
            path = f"/proc/thread-self/{name}"
        else:
            path = _proc_file(var, name, env)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise SockscopeError(f"sockscope: {path}: {_strerror(e)}") from None
        for line in data.decode("ascii", "replace").splitlines():
            words = line.split(" ")
            if len(words) < 3 or len(words) % 2 == 0:
                raise SockscopeError(f"sockscope: {path}: malformed sockstat line: {line!r}")
            out.append((name.endswith("6"), words[0].removesuffix(":"), words[1:]))
    return out
