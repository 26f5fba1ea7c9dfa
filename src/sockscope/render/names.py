"""Addresses, ports and names as ss prints them, with per-run caches.

A :class:`Resolver` holds every cache of one run (service names per protocol, host
names for ``-r``, interface names, the ephemeral port range), so nothing is kept at
module level. Text is returned as latin-1 ``str`` (one character per byte), ready for
the column engine.
"""

from __future__ import annotations

from sockscope.kernel import abi

# _socket (the C module: socket.py costs ~3 ms of start-up, enum and selectors) is
# imported where a name or an address text is looked up: the rows of a compiled listing
# need none of them, and the module is a shared library to load (~0.2 ms)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_IN6ADDR_ANY = bytes(16)
_V4MAPPED = bytes(10) + b"\xff\xff"


class Resolver:
    """Name lookups of one run, cached like ss's ``cache_htab`` and ``nht``."""

    __slots__ = (
        "_ephemeral",
        "_hosts",
        "_ifnames",
        "_protos",
        "_services",
        "environ",
        "numeric",
        "resolve_hosts",
        "services",
    )

    def __init__(
        self,
        numeric: bool = False,
        resolve_hosts: bool = False,
        environ: dict[str, str] | None = None,
        spare_fds: int | None = None,
    ) -> None:
        self.numeric = numeric
        # ss looks service names up while its dump socket is open, and its setservent(1)
        # keeps /etc/services open: glibc's getservbyport then opens it again, a third
        # descriptor. Where RLIMIT_NOFILE left fewer at the start, ss shows numbers.
        self.services = spare_fds is None or spare_fds >= 3
        self.resolve_hosts = resolve_hosts
        if environ is None:
            import os  # a library caller's environment (the command passes its own)

            environ = dict(os.environ)
        self.environ = environ
        self._services: dict[tuple[int, str | None], str] = {}
        self._hosts: dict[bytes, str | None] = {}
        self._ifnames: dict[int, str] = {}
        self._protos: dict[int, str] = {}
        self._ephemeral: tuple[int, int] | None = None

    # -- ports --------------------------------------------------------------------------
    def ephemeral_range(self) -> tuple[int, int]:
        """ip_local_port_range as ss's is_ephemeral reads it, once per run."""
        if self._ephemeral is None:
            from sockscope.kernel.iproute import ephemeral_range  # only for service names

            self._ephemeral = ephemeral_range(self.environ)
        return self._ephemeral

    def service(self, port: int, proto: str | None) -> str:
        """Port of ss.c:resolve_service for the port cell ("*" for port 0)."""
        if port == 0:
            return "*"
        if self.numeric:
            return str(port)
        if proto == "raw":
            return self.ip_protocol(port)
        key = (port, proto)
        name = self._services.get(key)
        if name is None:
            name = str(port)
            lo, hi = self.ephemeral_range()
            if not lo <= port <= hi and self.services:
                import _socket as socket

                try:
                    name = (
                        socket.getservbyport(port, proto) if proto else socket.getservbyport(port)
                    )
                except (OSError, OverflowError):
                    pass
            self._services[key] = name
        return name

    def ip_protocol(self, proto: int) -> str:
        """lib/inet_proto.c:inet_proto_n2a: /etc/protocols name or ``ipproto-N``."""
        name = self._protos.get(proto)
        if name is None:
            name = _protocol_name(proto)
            self._protos[proto] = name
        return name

    # -- addresses ----------------------------------------------------------------------
    def host(self, family: int, data: bytes) -> str:
        """format_host: the address text, or with -r the reverse-resolved name."""
        if self.resolve_hosts and (family == abi.AF_INET or family == abi.AF_INET6):
            name = self._lookup_host(family, data)
            if name is not None:
                return name
        return addr_text(family, data)

    def _lookup_host(self, family: int, data: bytes) -> str | None:
        if family == abi.AF_INET6 and data[:12] == _V4MAPPED:
            family, data = abi.AF_INET, data[12:]
        key = bytes([family]) + data
        if key in self._hosts:
            return self._hosts[key]
        name: str | None
        import _socket as socket

        try:
            name = socket.gethostbyaddr(socket.inet_ntop(family, data))[0]
            name = name.encode("utf-8", "surrogateescape").decode("latin-1")
        except (OSError, UnicodeError):
            name = None
        self._hosts[key] = name
        return name

    def inet_addr(self, family: int, data: bytes, v6only: bool) -> str:
        """The address part of inet_addr_print (without scope and delimiter)."""
        if family == abi.AF_INET:
            return self.host(family, data[:4])
        # any other family, as a damaged dump may say, takes ss's AF_INET6 branch:
        # format_host's rt_addr_n2a_r text (addr_text), "*" for sixteen zero bytes
        if not v6only and data == _IN6ADDR_ANY:
            return "*"
        text = self.host(family, data)
        return f"[{text}]" if ":" in text else text

    def ifname(self, index: int) -> str:
        """ll_index_to_name: the interface name, ``if<N>`` when unknown."""
        name = self._ifnames.get(index)
        if name is None:
            import _socket as socket

            try:
                name = socket.if_indextoname(index)
            except OSError:
                name = f"if{index}"
            self._ifnames[index] = name
        return name


_AF_BRIDGE, _AF_PACKET, _AF_MPLS = 7, 17, 28


def addr_text(family: int, data: bytes) -> str:
    """rt_addr_n2a_r of lib/utils.c: the text of an address of any family (a damaged
    dump can say any): inet_ntop, hex bytes for AF_PACKET, the sockaddr inside an
    AF_BRIDGE address, MPLS labels, else ``???``."""
    from _socket import inet_ntop

    if family == abi.AF_INET or family == abi.AF_INET6:
        return inet_ntop(family, data)
    if family == _AF_PACKET:
        return ":".join(f"{b:02x}" for b in data)
    if family == _AF_BRIDGE:
        inner = int.from_bytes(data[:2], "little")
        padded = data.ljust(24, b"\0")
        if inner == abi.AF_INET:
            return inet_ntop(abi.AF_INET, padded[4:8])
        if inner == abi.AF_INET6:
            return inet_ntop(abi.AF_INET6, padded[8:24])
        return "???"
    if family == _AF_MPLS:
        # labels up to the bottom-of-stack bit; ss reads on past the 16 bytes of the
        # address (and crashes) when none has it: a correct one stops at the end
        labels = []
        for i in range(0, len(data) - 3, 4):
            entry = int.from_bytes(data[i : i + 4], "big")
            labels.append(str(entry >> 12))
            if entry & 0x100:
                break
        return "/".join(labels)
    return "???"


def _protocol_name(proto: int) -> str:
    """getprotobynumber() through /etc/protocols, as glibc's files backend answers."""
    try:
        with open("/etc/protocols", "rb") as f:
            for raw in f:
                line = raw.split(b"#", 1)[0].split()
                if len(line) >= 2 and line[1].isdigit() and int(line[1]) == proto:
                    return line[0].decode("latin-1")
    except OSError:
        pass
    return f"ipproto-{proto}"


class CgroupMap:
    """lib/cg_map.c: cgroup v2 id -> path relative to the cgroup2 mount."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.paths: dict[int, str] | None = None
        self.mount: str | None = None

    def _build(self) -> dict[int, str]:
        paths: dict[int, str] = {}
        import os  # only with cgroup names (os.walk)

        from sockscope.kernel.iproute import find_cgroup2_mount  # only with -e and cgroups

        mnt = find_cgroup2_mount(self.warn)
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
        if not cgroup_id:  # get_cgroup2_path refuses id 0 before it looks for the mount
            self.warn("Invalid cgroup2 ID")
            return "unreachable:0"
        if self.mount is None:  # get_cgroup2_path looks for the mount again
            from sockscope.kernel.iproute import find_cgroup2_mount

            find_cgroup2_mount(self.warn)
        return "unreachable:%x" % cgroup_id
