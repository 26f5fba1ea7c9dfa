"""The extra-information cell of inet rows: ``-o -e --tos --cgroup --inet-sockopt -m -i``.

Ports of ss.c's ``tcp_timer_print``, ``print_ms_timer``, ``sock_details_print`` and the
option blocks of ``inet_show_sock`` (iproute2 7.1). Each returns the text ss appends to
the extra-information slot, every item with its leading blank.
"""

from __future__ import annotations

import os
import struct

from . import abi, netlink

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .options import Options
    from .records import InetSocket
    from .show import Printer

_TIMER_NAMES = ("off", "on", "keepalive", "timewait", "persist", "delack")
_SCTP_STATES = abi.SCTP_STATE_NAMES
_U8 = struct.Struct("=B")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")
_SOCKOPT_FLAGS = (
    "recverr",
    "is_icsk",
    "freebind",
    "hdrincl",
    "mc_loop",
    "transparent",
    "mc_all",
    "nodefrag",
    "bind_addr_no_port",
    "recverr_rfc4884",
    "defer_connect",
)


def inet_wanted(opts: Options) -> bool:
    """Whether any option puts text in the extra-information cell of inet rows."""
    return bool(
        opts.show_options
        or opts.show_details
        or opts.show_tos
        or opts.show_cgroup
        or opts.show_inet_sockopt
        or opts.show_mem
        or opts.show_tcpinfo
    )


def ms_timer(ms: int) -> str:
    """Port of ss.c:print_ms_timer (7.1: ``1.396sec``, ``003ms``, ``1min21sec``)."""
    secs, msecs = divmod(ms, 1000)
    minutes, secs = divmod(secs, 60)
    out = ""
    if minutes:
        msecs = 0
        out = "%dmin" % minutes
        if minutes > 9:
            secs = 0
    if secs:
        if secs > 9:
            msecs = 0
        out += "%d%s" % (secs, "." if msecs else "sec")
    if msecs:
        out += "%03d%s" % (msecs, "sec" if secs else "ms")
    return out


def timer_text(timer: int, expires: int, retrans: int, sctp: bool = False) -> str:
    """tcp_timer_print / sctp_timer_print: `` timer:(name,expire,retrans)``."""
    if not timer:
        return ""
    if sctp:
        name = "T3_RTX"
    else:
        name = _TIMER_NAMES[timer] if timer < len(_TIMER_NAMES) else "unknown"
    return f" timer:({name},{ms_timer(expires)},{retrans})"


def sctp_state_name(sock: InetSocket) -> str:
    """The SCTP association state word drawn after `` `- ``."""
    state = sock[1]
    return _SCTP_STATES[state] if state < len(_SCTP_STATES) else "UNDEF"


class CgroupMap:
    """lib/cg_map.c: cgroup v2 id -> path relative to the cgroup2 mount."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.paths: dict[int, str] | None = None
        self.mount: str | None = None

    def _find_mount(self) -> str | None:
        try:
            with open("/proc/mounts", "rb") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2] == b"cgroup2":
                        return parts[1].decode("latin-1")
        except OSError:
            pass
        self.warn("Failed to find cgroup2 mount")
        return None

    def _build(self) -> dict[int, str]:
        paths: dict[int, str] = {}
        mnt = self._find_mount()
        self.mount = mnt
        if mnt is None:
            return paths
        try:
            root_dev = os.stat(mnt).st_dev
        except OSError:
            return paths
        for dirpath, dirnames, _files in os.walk(mnt):
            try:
                st = os.stat(dirpath)
            except OSError:
                continue
            if st.st_dev != root_dev:
                dirnames[:] = []
                continue
            rel = dirpath[len(mnt) :] or "/"
            paths.setdefault(st.st_ino, rel)
        return paths

    def path(self, cgroup_id: int) -> str:
        if self.paths is None:
            self.paths = self._build()
        found = self.paths.get(cgroup_id)
        if found is not None:
            return found
        if self.mount is None:
            self.warn("Failed to find cgroup2 mount")
        return "unreachable:%x" % cgroup_id


def details(p: Printer, uid: int, inode: int, cookie: int, mark: int, cgroup_id: int) -> str:
    """Port of ss.c:sock_details_print."""
    out = f" uid:{uid}" if uid else ""
    out += f" ino:{inode} sk:{cookie:x}"
    if mark:
        out += f" fwmark:0x{mark:x}"
    if cgroup_id:
        out += " cgroup:" + p.cgroups().path(cgroup_id)
    return out


def _hash_x(value: int) -> str:
    """C's ``%#x``: ``0`` for zero, ``0x..`` otherwise."""
    return "%#x" % value if value else "0"


def inet(p: Printer, s: InetSocket, v6only: bool) -> str:
    """The extra-information text of one inet row (inet_show_sock after the address)."""
    opts = p.opts
    buf = s[17]
    if buf is None:
        return _proc_inet(p, s)
    attrs = netlink.attrs(buf, s[18], s[19])
    out = []
    proto = s[16]
    if opts.show_options:
        out.append(timer_text(s[2], s[11], s[3], proto == abi.IPPROTO_SCTP))
    if opts.show_details:
        mark = _u32(buf, attrs.get(abi.INET_DIAG_MARK))
        cg = _u64(buf, attrs.get(abi.INET_DIAG_CGROUP_ID))
        out.append(details(p, s[14], s[15], (s[10] << 32) | s[9], mark, cg))
        span = attrs.get(abi.INET_DIAG_SKV6ONLY)
        if s[0] == abi.AF_INET6 and span:
            out.append(f" v6only:{buf[span[0]]}")
        span = attrs.get(abi.INET_DIAG_SHUTDOWN)
        if span:
            mask = buf[span[0]]
            out.append(" %s-%s" % ("-" if mask & 1 else "<", "-" if mask & 2 else ">"))
    if opts.show_tos:
        span = attrs.get(abi.INET_DIAG_TOS)
        if span:
            out.append(" tos:" + _hash_x(buf[span[0]]))
        span = attrs.get(abi.INET_DIAG_TCLASS)
        if span:
            out.append(" tclass:" + _hash_x(buf[span[0]]))
        span = attrs.get(abi.INET_DIAG_CLASS_ID)
        if span:
            out.append(" class_id:" + _hash_x(_u32(buf, span)))
    if opts.show_cgroup:
        span = attrs.get(abi.INET_DIAG_CGROUP_ID)
        if span:
            out.append(" cgroup:" + p.cgroups().path(_u64(buf, span)))
    if opts.show_inet_sockopt:
        span = attrs.get(abi.INET_DIAG_SOCKOPT)
        if span and span[1] - span[0] >= 2:
            bits = int.from_bytes(buf[span[0] : span[0] + 2], "little")
            out.append(" inet-sockopt: (" if opts.oneline else "\n\tinet-sockopt: (")
            out.extend(" " + name for i, name in enumerate(_SOCKOPT_FLAGS) if bits >> i & 1)
            out.append(")")
    if opts.show_mem or (opts.show_tcpinfo and proto != abi.IPPROTO_UDP):
        if not opts.oneline:
            out.append("\n\t")
        out.append(p.info_block(s, attrs))
    return "".join(out)


def _proc_inet(p: Printer, s: InetSocket) -> str:
    """What tcp_show_line/dgram_show_line print after the address for /proc rows."""
    opts = p.opts
    if s[16] != abi.IPPROTO_TCP:
        return ""  # dgram_show_line: a scanf count bug drops every extra item
    out = []
    extra = s[20:]
    if opts.show_options:
        out.append(timer_text(s[2], s[11], s[3]))
    if opts.show_details:
        out.append(details(p, s[14], s[15], (s[10] << 32) | s[9], 0, 0))
        if extra and extra[6]:
            out.append(f' opt:"{extra[6]}"')
    if opts.show_tcpinfo:
        out.append(p.proc_tcp_info(s))
    return "".join(out)


def _u32(buf: bytes, span: tuple[int, int] | None) -> int:
    if not span or span[1] - span[0] < 4:
        return 0
    return int(_U32.unpack_from(buf, span[0])[0])


def _u64(buf: bytes, span: tuple[int, int] | None) -> int:
    if not span or span[1] - span[0] < 8:
        return 0
    return int(_U64.unpack_from(buf, span[0])[0])
