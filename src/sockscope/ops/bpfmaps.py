"""BPF socket-local storage maps named by ``--bpf-map-id`` (ss.c's bpf_map_opts_*).

ss opens every map it is given while it parses the options, so a missing map, a
missing privilege or a map of the wrong type is an error before anything is listed.
This module makes the same checks through the bpf(2) system call (ctypes, loaded only
for this option). Pretty-printing the storage itself (libbpf's BTF dump) is not
implemented: a real sk_storage map is reported as unsupported.
"""

from __future__ import annotations

import os
import struct

from sockscope.errors import NotSupportedError, SockscopeError

#: bpf(2) system call numbers per machine (asm/unistd.h)
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "i686": 357, "armv7l": 386, "ppc64le": 361,
            "s390x": 351, "riscv64": 280}  # fmt: skip
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_MAP_TYPE_SK_STORAGE = 24
_UINT32_MAX = 0xFFFFFFFF


def parse_id(text: str) -> int | None:
    """ss's map id check: strtoul(text, &end, 0) must use the whole text and give an id
    with 0 < id < UINT32_MAX; None otherwise."""
    i, n = 0, len(text)
    while i < n and text[i] in " \t\n\v\f\r":
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    base = 10
    if text[i : i + 2].lower() == "0x" and i + 2 < n and text[i + 2] in _HEX:
        base, i = 16, i + 2
    elif text[i : i + 1] == "0":
        base = 8
    digits = "0123456789"[:base] if base <= 10 else _HEX
    start = i
    while i < n and text[i].lower() in digits:
        i += 1
    if i == start or i != n:
        return None
    value = int(text[start:i], base)
    if negative and value:
        value = (1 << 64) - value
    if value == 0 or value >= _UINT32_MAX:
        return None
    return value


_HEX = "0123456789abcdef"


def _bpf(cmd: int, attr: bytes) -> tuple[int, int, bytes]:
    import ctypes
    import platform

    number = _SYS_BPF.get(platform.machine())
    if number is None:
        raise NotSupportedError("sockscope: --bpf-map-id is not supported on this machine")
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = libc.syscall(number, cmd, buf, len(attr))
    return ret, ctypes.get_errno(), buf.raw


def check(map_id: int, text: str) -> None:
    """Open map ``map_id`` as bpf_map_opts_load_info does; raise ss's error if it fails."""
    fd, err, _ = _bpf(BPF_MAP_GET_FD_BY_ID, struct.pack("=III", map_id, 0, 0) + bytes(116))
    if fd < 0:
        # ss tests `errno == -ENOENT`, which never holds: a missing map is an error too
        suffix = ": missing root permissions, CAP_BPF, or CAP_SYS_ADMIN" if err == 1 else ""
        raise SockscopeError(f"ss: cannot get fd for BPF map ID {map_id}{suffix}")
    try:
        info = bytearray(80)
        import ctypes

        holder = ctypes.create_string_buffer(bytes(info), len(info))
        attr = struct.pack("=IIQ", fd, len(info), ctypes.addressof(holder)) + bytes(104)
        ret, _err, _ = _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
        if ret:
            raise SockscopeError(f"ss: failed to get info for BPF map ID {map_id}")
        (map_type,) = struct.unpack_from("=I", holder.raw, 0)
        if map_type != BPF_MAP_TYPE_SK_STORAGE:
            raise SockscopeError(
                f"ss: BPF map with ID {text} has type ID {map_type}, expecting "
                f"{BPF_MAP_TYPE_SK_STORAGE} ('sk_storage')"
            )
        raise NotSupportedError("sockscope: printing BPF socket-local storage is not supported")
    finally:
        os.close(fd)
