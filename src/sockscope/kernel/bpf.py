"""The few bpf(2) commands ss uses for socket-local storage maps, through ctypes.

Opening a map by id, reading its ``struct bpf_map_info`` and the raw BTF its values
are described with (what libbpf's ``bpf_map_get_fd_by_id``, ``bpf_obj_get_info_by_fd``
and ``btf__load_from_kernel_by_id`` do). ctypes is loaded only by the runs that ask
for BPF maps. Failures raise :class:`OSError` with the errno.
"""

from __future__ import annotations

import posix
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes

#: bpf(2) system call numbers per machine (asm/unistd.h)
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "i686": 357, "armv7l": 386, "ppc64le": 361,
            "s390x": 351, "riscv64": 280}  # fmt: skip
MAP_GET_FD_BY_ID = 14
OBJ_GET_INFO_BY_FD = 15
BTF_GET_FD_BY_ID = 19
MAP_TYPE_SK_STORAGE = 24
#: the union bpf_attr size passed: larger than every command's part of it
_ATTR_SIZE = 128
#: struct bpf_map_info up to btf_value_type_id
_MAP_INFO = struct.Struct("=IIIIII16sIIQQIII")


class MapInfo:
    """The fields of ``struct bpf_map_info`` ss reads."""

    __slots__ = ("btf_id", "btf_value_type_id", "id", "type", "value_size")

    def __init__(self, raw: bytes) -> None:
        f = _MAP_INFO.unpack_from(raw, 0)
        self.type, self.id, self.value_size = f[0], f[1], f[3]
        self.btf_id, self.btf_value_type_id = f[11], f[13]


def _call(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    import ctypes

    # uname's machine, what platform.machine() returns, without importing platform.py
    number = _SYS_BPF.get(posix.uname().machine)
    if number is None:
        raise OSError(38, posix.strerror(38))  # ENOSYS
    libc = ctypes.CDLL(None, use_errno=True)
    ret = int(libc.syscall(number, cmd, attr, len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, posix.strerror(err))
    return ret


def _attr(head: bytes) -> ctypes.Array[ctypes.c_char]:
    import ctypes

    return ctypes.create_string_buffer(head.ljust(_ATTR_SIZE, b"\0"), _ATTR_SIZE)


def map_fd_by_id(map_id: int) -> int:
    """BPF_MAP_GET_FD_BY_ID: a new fd of map ``map_id`` (the caller closes it)."""
    return _call(MAP_GET_FD_BY_ID, _attr(struct.pack("=III", map_id, 0, 0)))


def _info(fd: int, size: int) -> bytes:
    """BPF_OBJ_GET_INFO_BY_FD into ``size`` bytes."""
    import ctypes

    holder = ctypes.create_string_buffer(size)
    _call(OBJ_GET_INFO_BY_FD, _attr(struct.pack("=IIQ", fd, size, ctypes.addressof(holder))))
    return holder.raw


def map_info(fd: int) -> MapInfo:
    return MapInfo(_info(fd, 80))


def btf_blob(btf_id: int) -> bytes:
    """The raw BTF of id ``btf_id`` (BTF_GET_FD_BY_ID, then its info twice: the size
    first, then the data)."""
    import ctypes

    fd = _call(BTF_GET_FD_BY_ID, _attr(struct.pack("=III", btf_id, 0, 0)))
    try:
        size = struct.unpack_from("=I", _info(fd, 32), 8)[0]
        data = ctypes.create_string_buffer(max(size, 1))
        holder = ctypes.create_string_buffer(
            struct.pack("=QII", ctypes.addressof(data), size, 0).ljust(32, b"\0"), 32
        )
        _call(OBJ_GET_INFO_BY_FD, _attr(struct.pack("=IIQ", fd, 32, ctypes.addressof(holder))))
        return data.raw[:size]
    finally:
        posix.close(fd)
