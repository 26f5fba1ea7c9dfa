"""Test helper: a BPF socket-local storage map (BPF_MAP_TYPE_SK_STORAGE) made by hand.

The bpf(2) system call through ctypes, no libbpf: a BTF blob built from the uapi layout
(linux/btf.h) is loaded with BPF_BTF_LOAD, an sk_storage map keyed by ``int`` with a
value type of that BTF is created, and a socket is given a value from user space
(BPF_MAP_UPDATE_ELEM with the socket's fd as the key, which sk_storage allows). The
map lives as long as its fd: the caller keeps it open while ss or sockscope list the
socket.

``BTF`` builds type sections: each method appends one type and returns its id.
"""

from __future__ import annotations

import ctypes
import os
import struct

SYS_BPF = 321  # x86_64
BPF_MAP_CREATE = 0
BPF_MAP_UPDATE_ELEM = 2
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_BTF_LOAD = 18
BPF_MAP_TYPE_SK_STORAGE = 24
BPF_MAP_TYPE_ARRAY = 2
BPF_F_NO_PREALLOC = 1

KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM = 1, 2, 3, 4, 5, 6
KIND_TYPEDEF, KIND_FLOAT, KIND_ENUM64 = 8, 16, 19
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4


class BTF:
    """A BTF blob under construction: types (ids from 1) and a string section."""

    def __init__(self) -> None:
        self.types: list[bytes] = []
        self.strings = bytearray(b"\0")

    def name(self, text: str) -> int:
        if not text:
            return 0
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def _add(self, name: str, kind: int, vlen: int, size_or_type: int, rest: bytes = b"",
             kflag: int = 0) -> int:  # fmt: skip
        info = kind << 24 | vlen | kflag << 31
        self.types.append(struct.pack("=III", self.name(name), info, size_or_type) + rest)
        return len(self.types)

    def int(self, name: str, size: int, encoding: int = 0, bits: int = 0, offset: int = 0) -> int:
        word = encoding << 24 | offset << 16 | (bits or size * 8)
        return self._add(name, KIND_INT, 0, size, struct.pack("=I", word))

    def ptr(self, target: int) -> int:
        return self._add("", KIND_PTR, 0, target)

    def array(self, elem: int, index: int, nelems: int) -> int:
        return self._add("", KIND_ARRAY, 0, 0, struct.pack("=III", elem, index, nelems))

    def typedef(self, name: str, target: int) -> int:
        return self._add(name, KIND_TYPEDEF, 0, target)

    def enum(
        self, name: str, size: int, values: list[tuple[str, int]], signed: bool = False
    ) -> int:
        rest = b"".join(struct.pack("=Ii", self.name(n), v) for n, v in values)
        return self._add(name, KIND_ENUM, len(values), size, rest, int(signed))

    def composite(self, name: str, size: int, members: list[tuple[str, int, int]],
                  union: bool = False, bitfield_sizes: bool = False) -> int:  # fmt: skip
        """members: (name, type id, bit offset; with ``bitfield_sizes`` the offset word
        carries the bitfield size in its top 8 bits, as kind_flag structs do)."""
        rest = b"".join(struct.pack("=III", self.name(n), t, o) for n, t, o in members)
        kind = KIND_UNION if union else KIND_STRUCT
        return self._add(name, kind, len(members), size, rest, int(bitfield_sizes))

    def float(self, name: str, size: int) -> int:
        return self._add(name, KIND_FLOAT, 0, size)

    def blob(self) -> bytes:
        types = b"".join(self.types)
        hdr = struct.pack(
            "=HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(self.strings)
        )
        return hdr + types + bytes(self.strings)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    """bpf(2); an OSError for a failure."""
    ret = _libc().syscall(SYS_BPF, cmd, attr, len(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def load_btf(blob: bytes) -> int:
    data = ctypes.create_string_buffer(blob, len(blob))
    log = ctypes.create_string_buffer(4096)
    attr = ctypes.create_string_buffer(
        struct.pack("=QQIII", ctypes.addressof(data), ctypes.addressof(log), len(blob), 4096, 1)
        + bytes(100)
    )
    try:
        return bpf(BPF_BTF_LOAD, attr)
    except OSError as e:
        raise OSError(e.errno, f"{e.strerror}: {log.value.decode(errors='replace')}") from None


def create_map(btf_fd: int, key_type: int, value_type: int, value_size: int,
               map_type: int = BPF_MAP_TYPE_SK_STORAGE, name: bytes = b"ssk") -> int:  # fmt: skip
    """A map of ``map_type`` (sk_storage: no preallocation, max_entries 0)."""
    storage = map_type == BPF_MAP_TYPE_SK_STORAGE
    attr = ctypes.create_string_buffer(
        struct.pack(
            "=IIIIIII16sIIII",
            map_type,
            4,
            value_size,
            0 if storage else 1,
            BPF_F_NO_PREALLOC if storage else 0,
            0,
            0,
            name,
            0,
            btf_fd,
            key_type,
            value_type,
        )
        + bytes(80)
    )
    return bpf(BPF_MAP_CREATE, attr)


def update(map_fd: int, key: bytes, value: bytes) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    attr = ctypes.create_string_buffer(
        struct.pack("=IIQQQ", map_fd, 0, ctypes.addressof(k), ctypes.addressof(v), 0) + bytes(96)
    )
    bpf(BPF_MAP_UPDATE_ELEM, attr)


def map_id(map_fd: int) -> int:
    info = ctypes.create_string_buffer(96)
    attr = ctypes.create_string_buffer(
        struct.pack("=IIQ", map_fd, len(info), ctypes.addressof(info)) + bytes(104)
    )
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    return int(struct.unpack_from("=I", info.raw, 4)[0])


def store(sock_fd: int, btf: BTF, value_type: int, value: bytes) -> tuple[int, int, int]:
    """Load ``btf``, make an sk_storage map whose values are ``value_type`` and give
    ``sock_fd`` the storage ``value``: (btf fd, map fd, map id). The key type is the
    first ``int`` in ``btf`` named "int"."""
    key = btf.types.index(next(t for t in btf.types if t[4:8] == struct.pack("=I", KIND_INT << 24)))
    btf_fd = load_btf(btf.blob())
    map_fd = create_map(btf_fd, key + 1, value_type, len(value))
    update(map_fd, struct.pack("=i", sock_fd), value)
    return btf_fd, map_fd, map_id(map_fd)


# --- the value types of the tests: (name, builder) -> (btf, value type id, value) ----------
def _case_int() -> tuple[BTF, int, bytes]:
    b = BTF()
    i = b.int("int", 4, INT_SIGNED)
    return b, i, struct.pack("=i", -42)


def _case_chars() -> tuple[BTF, int, bytes]:
    """A string, then (libbpf 1.1's sticky flags) a later array and a one-byte member."""
    b = BTF()
    i = b.int("int", 4, INT_SIGNED)
    ch = b.int("char", 1, INT_CHAR)
    u8 = b.int("unsigned char", 1)
    s16 = b.int("short int", 2, INT_SIGNED)
    name = b.array(ch, i, 8)
    nums = b.array(i, i, 3)
    st = b.composite(
        "task",
        28,
        [("comm", name, 0), ("pid", i, 64), ("nums", nums, 96), ("flag", u8, 192), ("s", s16, 208)],
    )
    value = struct.pack("=8si3iBxh", b"ss\x01\x7f\0zz", 7, 1, 0, -1, 65, -3)
    return b, st, value


def _case_bytes() -> tuple[BTF, int, bytes]:
    """Non-printable and signed bytes in a char array, without a NUL."""
    b = BTF()
    i = b.int("int", 4, INT_SIGNED)
    sc = b.int("signed char", 1, INT_SIGNED)
    arr = b.array(sc, i, 4)
    st = b.composite("raw", 4, [("b", arr, 0)])
    return b, st, bytes([0x41, 0x80, 0xFF, 0x09])


def _case_bits() -> tuple[BTF, int, bytes]:
    """Bitfields (kind_flag members), an enum bitfield, a signed enum, a union."""
    b = BTF()
    u32 = b.int("unsigned int", 4)
    i = b.int("int", 4, INT_SIGNED)
    en = b.enum("mode", 4, [("OFF", 0), ("ON", 1), ("NEG", -2)], signed=True)
    un = b.composite("u", 4, [("as_int", i, 0), ("as_uint", u32, 0)], union=True)
    st = b.composite(
        "flags",
        16,
        [
            ("a", u32, 3 << 24 | 0),
            ("b", u32, 5 << 24 | 3),
            ("m", en, 2 << 24 | 8),
            ("neg", en, 32),
            ("u", un, 64),
            ("rest", u32, 96),
        ],
        bitfield_sizes=True,
    )
    value = struct.pack("=IiiI", 0b1_10110_101, -2, -1, 9)
    return b, st, value


def _case_decl() -> tuple[BTF, int, bytes]:
    """Type names: typedefs, const and volatile (dropped), pointers, 2-D and pointer
    arrays, anonymous struct and enum members, two structs of one name, enum64."""
    b = BTF()
    i = b.int("int", 4, INT_SIGNED)
    lu = b.int("long unsigned int", 8)
    ci = b._add("", 10, 0, i)  # const int
    vp = b._add("", 9, 0, b.ptr(ci))  # volatile (const int *)
    pp = b.ptr(b.ptr(i))
    grid = b.array(b.array(i, i, 3), i, 2)
    ptrs = b.array(b.ptr(i), i, 2)
    td = b.typedef("handle_t", b.typedef("inner_t", lu))
    anon = b.composite("", 4, [("z", i, 0)])
    aenum = b.enum("", 4, [("A", 0), ("B", 5)])
    s1 = b.composite("dup", 4, [("x", i, 0)])
    s2 = b.composite("dup", 4, [("y", i, 0)])
    e64 = b._add("big", KIND_ENUM64, 2, 8, struct.pack("=III", b.name("SMALL"), 1, 0)
                 + struct.pack("=III", b.name("HUGE"), 0, 1))  # fmt: skip
    members = [("vp", vp, 0), ("pp", pp, 64), ("grid", grid, 128), ("ptrs", ptrs, 320),
               ("h", td, 448), ("anon", anon, 512), ("ae", aenum, 544), ("d1", s1, 576),
               ("d2", s2, 608), ("e", e64, 640), ("e2", e64, 704)]  # fmt: skip
    st = b.composite("decl", 96, members)
    value = struct.pack("=QQ6i2QQiiiiQQ", 0, 0x1000, 1, 2, 3, 4, 5, 6, 0xAB, 0, 77, 3, 5,
                        8, 9, 1 << 32, 3)  # fmt: skip
    return b, st, value


def _case_wide() -> tuple[BTF, int, bytes]:
    """128-bit integers, floats, a bool, 64-bit signed values."""
    b = BTF()
    i = b.int("int", 4, INT_SIGNED)
    u128 = b.int("unsigned __int128", 16)
    f = b.float("float", 4)
    d = b.float("double", 8)
    ld = b.float("long double", 16)
    bo = b.int("_Bool", 1, INT_BOOL)
    s64 = b.int("long long int", 8, INT_SIGNED)
    _ = i
    members = [("small", u128, 0), ("large", u128, 128), ("f", f, 256), ("d", d, 320),
               ("ld", ld, 384), ("ok", bo, 512), ("neg", s64, 576), ("nan", d, 640)]  # fmt: skip
    st = b.composite("wide", 88, members)
    ldval = (3 << 62 | 1 << 61).to_bytes(8, "little") + (16383 + 2).to_bytes(2, "little") + bytes(6)
    value = (
        struct.pack("=QQQQ", 5, 0, 1, 2)
        + struct.pack("=f4xd", 1.5, -0.1)
        + ldval
        + struct.pack("=B7xq", 1, -(1 << 40))
        + struct.pack("=Q", 0xFFF8000000000000)
    )
    return b, st, value


def _case_more() -> tuple[BTF, int, bytes]:
    """A function pointer, a typedef of an anonymous struct, arrays of structs and
    unions, an unsigned enum past INT_MAX, a signed enum64, a volatile array, a pointer
    to a forward declaration."""
    b = BTF()
    i = b.int("int", 4, INT_SIGNED)
    ch = b.int("char", 1, INT_CHAR)
    params = struct.pack("=II", b.name("a"), i) + struct.pack("=II", b.name("b"), b.ptr(ch))
    fn = b.ptr(b._add("", 13, 2, i, params))  # FUNC_PROTO
    anon_t = b.typedef("anon_t", b.composite("", 4, [("x", i, 0)]))
    pts = b.array(b.composite("pt", 8, [("a", i, 0), ("b", i, 32)]), i, 2)
    ue = b.enum("ue", 4, [("MAXU", -1), ("ONE", 1)])
    minus = struct.pack("=III", b.name("MINUS"), 0xFFFFFFFE, 0xFFFFFFFF)
    se = b._add("s64e", KIND_ENUM64, 1, 8, minus, kflag=1)
    va = b._add("", 9, 0, b.array(i, i, 2))  # volatile int[2]
    pf = b.ptr(b._add("opaque", 7, 0, 0))  # struct opaque *
    ua = b.array(b.composite("uu", 4, [("i", i, 0), ("c", ch, 0)], union=True), i, 2)
    members = [("fn", fn, 0), ("t", anon_t, 64), ("pts", pts, 96), ("ue", ue, 224),
               ("se", se, 256), ("va", va, 320), ("pf", pf, 384), ("ua", ua, 448)]  # fmt: skip
    st = b.composite("more", 64, members)
    value = struct.pack("=QiiiiiIqiiQii", 0x1234, 5, 1, 2, 3, 4, 0xFFFFFFFF, -2, 7, 8, 0, 65, 66)
    return b, st, value


CASES = {
    "int": _case_int,
    "chars": _case_chars,
    "bytes": _case_bytes,
    "bits": _case_bits,
    "decl": _case_decl,
    "wide": _case_wide,
    "more": _case_more,
}


def large() -> tuple[BTF, int, bytes]:
    """A 40,000-byte value (int[10000]): its reply message is larger than the 32 KiB a
    dump datagram usually takes, and its text larger than an ss output field."""
    b = BTF()
    i = b.int("int", 4, INT_SIGNED)
    st = b.composite("big", 40000, [("v", b.array(i, i, 10000), 0)])
    return b, st, struct.pack("=10000i", *range(10000))


def hold() -> int:
    """Inside a namespace: a listener per case (ports from 7000), each with its storage;
    print ``{case: [port, map id]}`` as JSON (or ``{"error": text}``) and keep them
    until stdin closes."""
    import json
    import socket
    import sys

    held = []
    report: dict[str, object] = {}
    cases = {"large": large} if sys.argv[1:] == ["large"] else CASES
    try:
        for port, (name, build) in enumerate(cases.items(), 7000):
            btf, tid, value = build()
            listener = socket.socket()
            listener.bind(("127.0.0.1", port))
            listener.listen()
            fds = store(listener.fileno(), btf, tid, value)
            held.append((listener, fds))
            report[name] = [port, fds[2]]
    except OSError as e:
        report = {"error": f"bpf(2): {e}"}
    print(json.dumps(report), flush=True)
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(hold())
