"""BPF socket-local storage in inet rows: ``--bpf-maps`` and ``--bpf-map-id`` (ss.c's
``bpf_map_opts`` and ``show_sk_bpf_storages``, iproute2 7.1 built with libbpf).

:class:`Storages` is ss's ``bpf_map_opts`` of one run: the maps named by
``--bpf-map-id`` are opened while the options are read (an error stops the run
before anything is listed); with ``--bpf-maps`` every map a reply names is opened the
first time it is met, and a map that cannot be opened is tried again at its next
socket (as ss does, with its message each time). At most 32 maps are kept; past them
ss warns and goes on with the last map kept (its ``maps[nr_maps - 1]``), and so does
this module. The request carries the maps' fds (or an empty nest: every map); each
reply's ``INET_DIAG_SK_BPF_STORAGES`` nest is printed as
``map_id:N`` and the value dumped from the map's BTF (:mod:`sockscope.kernel.btf`).
"""

from __future__ import annotations

import struct

from sockscope.kernel import abi, bpf, btf, netlink

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: MAX_NR_BPF_MAP_ID_OPTS
MAX_MAPS = 32
SK_DIAG_BPF_STORAGE_REQ_MAP_FD = 1
SK_DIAG_BPF_STORAGE = 1
_MAP_ID, _MAP_VALUE = 2, 3
#: NLA_TYPE_MASK: the type without NLA_F_NESTED and NLA_F_NET_BYTEORDER
_NLA_TYPE_MASK = 0x3FFF
_EPERM = 1


class _Map:
    __slots__ = ("dump", "fd", "id", "info")

    def __init__(self, map_id: int, fd: int, info: bpf.MapInfo, dump: btf.TypeDump) -> None:
        self.id, self.fd, self.info, self.dump = map_id, fd, info, dump


class Storages:
    """The socket-local storage maps of one run (ss's ``bpf_map_opts``)."""

    def __init__(self, show_all: bool) -> None:
        self.show_all = show_all
        self.maps: list[_Map] = []

    def close(self) -> None:
        """Close the maps' fds (bpf_map_opts_destroy): a library caller runs main()
        again and again in one process."""
        for m in self.maps:
            _close(m.fd)
        self.maps = []

    def nest(self) -> bytes:
        """The payload of the request's INET_DIAG_REQ_SK_BPF_STORAGES nest
        (bpf_map_opts_alloc_rta): empty for every map, else one fd per map."""
        if self.show_all:
            return b""
        return b"".join(
            netlink.attr(SK_DIAG_BPF_STORAGE_REQ_MAP_FD, struct.pack("=i", m.fd)) for m in self.maps
        )

    def load(self, map_id: int, optarg: str | None, warn: Callable[[str], None]) -> bool:
        """bpf_map_opts_load_info: open map ``map_id`` and its BTF; False (after ss's
        message) when that fails. ``optarg`` is what ss's type message quotes (getopt's
        optarg: NULL once the options are read)."""
        if len(self.maps) == MAX_MAPS:
            warn(
                f"ss: too many (> {MAX_MAPS}) BPF socket-local storage maps found, "
                f"skipping map ID {map_id}"
            )
            return True
        try:
            fd = bpf.map_fd_by_id(map_id)
        except OSError as e:
            # ss tests `errno == -ENOENT`, which never holds: a missing map is an error too
            why = (
                ": missing root permissions, CAP_BPF, or CAP_SYS_ADMIN" if e.errno == _EPERM else ""
            )
            warn(f"ss: cannot get fd for BPF map ID {map_id}{why}")
            return False
        try:
            info = bpf.map_info(fd)
        except OSError:
            _close(fd)
            warn(f"ss: failed to get info for BPF map ID {map_id}")
            return False
        if info.type != bpf.MAP_TYPE_SK_STORAGE:
            _close(fd)
            warn(
                f"ss: BPF map with ID {optarg if optarg is not None else '(null)'} has type "
                f"ID {info.type}, expecting {bpf.MAP_TYPE_SK_STORAGE} ('sk_storage')"
            )
            return False
        try:
            # the kernel refuses an sk_storage map without value BTF: always loaded
            dump = btf.TypeDump(btf.Btf(bpf.btf_blob(info.btf_id)))
        except (OSError, btf.BtfError):
            _close(fd)
            warn(f"ss: failed to load BTF for map ID {info.id}")
            return False
        self.maps.append(_Map(map_id, fd, info, dump))
        return True

    def get(self, map_id: int, warn: Callable[[str], None]) -> _Map | None:
        """bpf_map_opts_get_info: the map ``map_id``, opened now if it is not yet."""
        for m in self.maps:
            if m.id == map_id:
                return m
        if not self.load(map_id, None, warn):
            return None
        return self.maps[-1]

    def text(
        self, buf: bytes, start: int, end: int, oneline: bool, warn: Callable[[str], None]
    ) -> str:
        """show_sk_bpf_storages: the text of the nest ``buf[start:end]``, each
        SK_DIAG_BPF_STORAGE with a map id in turn. Offsets in ``buf`` are offsets in
        the datagram ss received into a malloc'd (16-aligned) buffer, which decides
        how libbpf reads unaligned pointers and enums."""
        out = []
        unpack = abi.RTATTR.unpack_from
        off = start
        while off + 4 <= end:
            length, rtype = unpack(buf, off)
            if length < 4 or off + length > end:
                break
            if rtype & _NLA_TYPE_MASK == SK_DIAG_BPF_STORAGE:
                inner = netlink.attrs(buf, off + 4, off + length, 0xFFFF, _MAP_VALUE)
                span = inner.get(_MAP_ID)
                if span is not None:
                    data, at = netlink.through(buf, span[0], 4)  # rta_getattr_u32 reads 4
                    map_id = int.from_bytes(data[at : at + 4], "little")
                    value = inner.get(_MAP_VALUE, (span[1], span[1]))
                    out.append(self._one(map_id, buf, value, oneline, warn))
            off += (length + 3) & ~3
        return "".join(out)

    def _one(
        self,
        map_id: int,
        buf: bytes,
        value: tuple[int, int],
        oneline: bool,
        warn: Callable[[str], None],
    ) -> str:
        """out_bpf_sk_storage: one map's value (map_id printed as a C int)."""
        shown = map_id - (1 << 32) if map_id >> 31 else map_id
        m = self.get(map_id, warn)
        if m is None:
            return f"\n\tmap_id: {shown} failed to fetch info, skipping\n"
        size = value[1] - value[0]
        if m.info.value_size != size:
            warn(f"map_id: {shown}: invalid value size, expecting {m.info.value_size}, got {size}")
            return ""
        data = buf[value[0] : value[1]]
        tid = m.info.btf_value_type_id
        if oneline:
            text, err = m.dump.dump(tid, data, True, 0, value[0] % 16)
            fail = f"failed to dump data: {err}" if err < 0 else ""
            return f" map_id:{m.id}{text}{fail}"
        text, err = m.dump.dump(tid, data, False, 2, value[0] % 16)
        fail = f"\t\tfailed to dump data: {err}" if err < 0 else ""
        return f"\n\tmap_id:{m.id} [\n{text}{fail}\n\t]"


def _close(fd: int) -> None:
    import posix

    posix.close(fd)
