"""AF_NETLINK sockets (``nl``): records, sources, rows.

Ports of ss.c's ``netlink_show``, ``netlink_show_netlink``, ``netlink_show_sock`` and
``netlink_show_one``, and of lib/rt_names.c's ``nl_proto_n2a`` (iproute2 7.1).

Where the text goes matters here: netlink rows never call ``proc_ctx_print``, so their
``-Z``, ``-e`` and ``-m`` text lands in the Process column (slot 8) and is dropped
unless ``-p`` enabled that column; ``-p`` itself never lists users for netlink rows.
"""

from __future__ import annotations

import struct

from sockscope.kernel import abi
from sockscope.kernel.iproute import NL_PROTO_NAMES, NL_PROTOS_FILES, proc_path
from sockscope.kernel.libc import fgets, int32, open_fgets, scanf
from sockscope.tables.common import (
    Endpoints,
    apply_filter,
    decoded,
    diag_dump,
    diag_request,
    dump_else_proc,
    meminfo,
    parse_attrs,
    picker,
    skmem_dict,
    skmem_text,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sockscope.render.printer import Printer
    from sockscope.render.view import View
    from sockscope.tables.context import Context


class NetlinkSocket(Endpoints):
    """One AF_NETLINK socket.

    ``portid`` is C's ``int`` view of the port id (autobound ids are negative), 0 for a
    kernel socket. ``dst_portid``/``dst_group`` are meaningful when ``connected``.
    ``sk``/``cb`` are only known from ``/proc/net/netlink`` (0 from sock_diag).
    """

    __slots__ = (
        "cb",
        "connected",
        "cookie",
        "dst_group",
        "dst_portid",
        "from_proc",
        "groups",
        "inode",
        "mem",
        "portid",
        "protocol",
        "recv_q",
        "send_q",
        "sk",
        "type",
    )

    family = abi.AF_NETLINK
    state = abi.SS_CLOSE
    rport = -1
    iface = 0
    mark = 0
    cgroup_id = 0
    name = None
    remote_data = b""

    def __init__(self, protocol: int, portid: int, recv_q: int = 0, send_q: int = 0) -> None:
        self.protocol = protocol
        self.portid = portid
        self.recv_q = recv_q
        self.send_q = send_q
        self.connected = False
        self.dst_portid = 0
        self.dst_group = 0
        self.groups = 0
        self.inode = 0
        self.cookie = 0
        self.type = 0
        self.sk = 0
        self.cb = 0
        self.from_proc = False
        self.mem: tuple[int, ...] | None = None

    @property
    def netid(self) -> str:
        return "nl"

    @property
    def state_name(self) -> str:
        return "UNCONN"

    # -- filter view (netlink_show_one: lport = pid, rport = -1, local.data[0] = prot) ------
    @property
    def lport(self) -> int:
        return self.portid

    @property
    def local_data(self) -> bytes:
        return struct.pack("=i", self.protocol)

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        """The data view (``--json``, library)."""
        if view is None:
            view = self.attached_view
        out: dict[str, object] = {
            "netid": "nl",
            "state": "UNCONN",
            "recv_q": self.recv_q,
            "send_q": self.send_q,
            "local_address": NL_PROTO_NAMES.get(self.protocol, str(self.protocol)),
            "protocol": self.protocol,
            "local_port": self.portid,
            "family": "netlink",
        }
        if self.connected:
            out["peer_address"] = self.dst_group
            out["peer_port"] = self.dst_portid
        if view is None or view.details:
            out["groups"] = self.groups
            if self.inode:
                out["inode"] = self.inode
        if (view is None or view.mem) and self.mem is not None:
            out["skmem"] = skmem_dict(self.mem)
        return out

    def __repr__(self) -> str:
        return f"NetlinkSocket(proto={self.protocol} portid={self.portid} ino={self.inode})"


# --- gathering -------------------------------------------------------------------------------
def records(ctx: Context) -> Iterator[NetlinkSocket]:
    """Port of netlink_show: the netlink dump, else /proc/net/netlink."""
    sel = ctx.sel
    if not sel.families & (1 << abi.AF_NETLINK) or not sel.states & (1 << abi.SS_CLOSE):
        return iter(())
    return dump_else_proc(ctx, "PROC_NET_NETLINK", netlink_records, _filtered_proc)


def _filtered_proc(ctx: Context) -> Iterator[NetlinkSocket]:
    return apply_filter(proc_records(ctx), ctx)  # type: ignore[return-value]


def request() -> bytes:
    """netlink_show_netlink's request: every protocol, groups and meminfo."""
    show = abi.NDIAG_SHOW_GROUPS | abi.NDIAG_SHOW_MEMINFO
    return diag_request(
        abi.NETLINK_DIAG_REQ.pack(abi.AF_NETLINK, abi.NDIAG_PROTO_ALL, 0, 0, show, 0, 0)
    )


def netlink_records(ctx: Context) -> Iterator[NetlinkSocket]:
    return decoded(diag_dump(ctx, request()), decode)


def decode(buf: bytes, body: int, end: int) -> NetlinkSocket | None:
    """netlink_show_sock: one netlink_diag_msg and its attributes."""
    if end - body < abi.NETLINK_DIAG_MSG.size:
        return None
    (_family, ntype, proto, state, portid, dst_portid, dst_group, ino, c0, c1) = (
        abi.NETLINK_DIAG_MSG.unpack_from(buf, body)
    )
    tb = parse_attrs(buf, body + abi.NETLINK_DIAG_MSG.size, end)
    mem = meminfo(buf, tb.get(abi.NETLINK_DIAG_MEMINFO))
    rec = NetlinkSocket(proto, int32(portid))
    if mem is not None:
        words = list(mem[:3]) + [0] * (3 - len(mem))
        rec.recv_q = int32(words[abi.SK_MEMINFO_RMEM_ALLOC])
        rec.send_q = int32(words[abi.SK_MEMINFO_WMEM_ALLOC])
    rec.mem = mem
    rec.type = ntype
    rec.connected = state == abi.NETLINK_CONNECTED
    rec.dst_portid = int32(dst_portid)
    rec.dst_group = dst_group
    rec.inode = ino
    rec.cookie = (c1 << 32) | c0
    span = tb.get(abi.NETLINK_DIAG_GROUPS)
    if span is not None and span[1] > span[0]:
        # read as one unsigned long, printed through an unsigned int
        rec.groups = int.from_bytes(buf[span[0] : span[0] + 4].ljust(4, b"\0"), "little")
    return rec


def proc_records(ctx: Context) -> Iterator[NetlinkSocket]:
    """/proc/net/netlink (``sk Eth Pid Groups Rmem Wmem Dump Locks ...``) read with
    ``sscanf("%llx %d %d %x %d %d %llx %d")``; the variables outlive a short line."""
    try:
        lines = open_fgets(proc_path("net/netlink", "PROC_NET_NETLINK", ctx.environ))
    except OSError:
        return
    if next(lines, None) is None:
        return
    vals: list[int] = [0] * 8
    for line in lines:
        got = scanf(line, "%llx %d %d %x %d %d %llx %d")
        vals[: len(got)] = got  # type: ignore[assignment]
        sk, prot, pid, groups, rq, wq, cb, _rc = vals
        rec = NetlinkSocket(prot, pid, rq, wq)
        rec.groups = groups
        rec.sk = sk
        rec.cb = cb
        rec.from_proc = True
        yield rec


# --- rows ------------------------------------------------------------------------------------
class _Names:
    """nl_proto_n2a's table, initialised on first use as lib/rt_names.c does."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.tab: dict[int, str] | None = None

    def get(self, proto: int) -> str:
        if self.tab is None:
            self.tab = dict(NL_PROTO_NAMES)
            if _read_table(NL_PROTOS_FILES[0], self.tab, self.warn) == "ENOENT":
                _read_table(NL_PROTOS_FILES[1], self.tab, self.warn)
        name = self.tab.get(proto)
        return str(proto) if name is None else name


def _read_table(path: str, tab: dict[int, str], warn: Callable[[str], None]) -> str | None:
    """rtnl_tab_initialize: ``id name`` lines (``0x`` ids too) over the built-in table."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return "ENOENT"
    except OSError:
        return "error"
    for line in fgets(data, 512):
        p = line.lstrip(b" \t")
        if not p or p[:1] in (b"#", b"\n"):
            continue
        got = scanf(p, "0x%x %s")
        if len(got) != 2:
            got = scanf(p, "%d %s")
        if len(got) != 2:
            warn(f"Database {path} is corrupted at {p.decode('latin-1')}")
            return "error"
        ident, name = got
        if isinstance(ident, int) and isinstance(name, bytes) and 0 <= ident < 256:
            tab[ident] = name.decode("latin-1")
    return None


def comm_of(pid: int, environ: dict[str, str]) -> str | None:
    """``<comm>/<pid>`` from ``$PROC_ROOT/<pid>/stat`` as netlink_show_one builds it
    (``fscanf("%*d (%[^)])")`` into a 64-byte buffer that also held the path)."""
    root = environ.get("PROC_ROOT", "/proc")
    path = f"{root}/{pid}/stat".encode("utf-8", "surrogateescape")[:63]
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError:
        return None
    text = data.lstrip(b" \t\n\v\f\r")
    digits = text[1:] if text[:1] in (b"+", b"-") else text
    n = len(digits) - len(digits.lstrip(b"0123456789"))
    if not n:
        return None
    rest = digits[n:].lstrip(b" \t\n\v\f\r")
    if rest[:1] != b"(":
        return None
    comm = rest[1:].split(b")", 1)[0]
    if not comm:
        return None
    return (comm.decode("latin-1") + f"/{pid}")[:63]


def row_fn(printer: Printer, ctx: Context) -> Callable[[NetlinkSocket], tuple[str, ...]]:
    """netlink_show_one, plus the -m text of netlink_show_sock (netlink records only)."""
    opts = printer.opts
    pick = picker(printer)
    queue = printer.queue
    numeric = bool(opts.numeric)
    names = _Names(printer.warn)
    environ = ctx.environ
    show_proc = printer.show_proc
    proc_ctx = bool(opts.show_proc_ctx)
    details = bool(opts.show_details)
    mem = bool(opts.show_mem)

    def row(s: NetlinkSocket) -> tuple[str, ...]:
        proto = s.protocol
        if numeric or not 0 <= proto < 256:
            pname = str(proto)
        else:
            pname = names.get(proto)
        pid = s.portid
        if pid == -1:
            port = "*"
        elif numeric or pid < 0:
            port = str(pid)
        elif pid == 0:
            port = "kernel"
        else:
            port = comm_of(pid, environ) or str(pid)
        slot8 = ""
        if show_proc:
            if proc_ctx:
                slot8 += " proc_ctx=unavailable"
            if details:
                slot8 += f" sk={s.sk:x} cb={s.cb:x} groups=0x{s.groups & 0xFFFFFFFF:08x}"
            if mem and not s.from_proc:
                slot8 += "\t" + skmem_text(s.mem)
        if s.connected:
            raddr, rport = f"{s.dst_group}:", str(s.dst_portid)
        else:
            raddr, rport = "*", ""
        return pick((
            "nl", "UNCONN", queue(s.recv_q), queue(s.send_q),
            pname + ":", port, raddr, rport, slot8, "",
        ))  # fmt: skip

    return row
