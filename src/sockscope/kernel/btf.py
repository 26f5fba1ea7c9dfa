"""BTF: the kernel's type format (linux/btf.h), read from bytes, and a typed value dump.

A BPF socket-local storage map describes its values with BTF; ``ss --bpf-maps`` prints
each socket's value with libbpf's ``btf_dump__dump_type_data`` (libbpf 1.1, the
library the 7.1 build links). :class:`Btf` reads a raw BTF blob (as ``BPF_OBJ_GET_INFO``
gives it for a BTF id) and :class:`TypeDump` writes a value of one of its types as
that function does, ``emit_zeroes`` set as ss sets it:

* ``(type)value``: the C name of the type as a cast, written as libbpf's
  ``btf_dump_emit_type_cast`` writes it (modifiers dropped, anonymous structs as
  ``struct``), ``.member = `` before struct and union members, no cast on array
  elements; names that two types share get libbpf's ``___N`` suffix in the order
  the dump meets them (the object lives as long as the run, as ss's does);
* integers in decimal (``%d``/``%u``, 128-bit ones in hex), bitfields ``0x%llx``,
  enums by name or number, pointers ``%p`` (``(nil)``), floats ``%f``;
* arrays of one-byte integers as characters (``'a'``) up to the first NUL, with
  libbpf 1.1's sticky flags: once such an array has ended, later arrays and one-byte
  members of the same value print nothing (what ss 7.1 prints, see QUIRKS.md);
* ``,`` after every value below the top and, unless compact, a newline and one tab
  per level of depth plus ``indent``.

An error ends the dump with libbpf's negative errno (ss then prints ``failed to dump
data: N``): an integer of an impossible size (-EINVAL), a type that has no size, data
shorter than a base type (-E2BIG); kinds with no data (FWD, FUNC, DECL_TAG) print
``<unsupported kind:N>`` (-ENOTSUP). Port of libbpf's btf_dump.c data dump (v1.1.2),
written from its behaviour; VAR and DATASEC values (never a map's value type) take
the ``unsupported`` fallback here.
"""

from __future__ import annotations

import math
import struct

# kinds (linux/btf.h)
UNKN, INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = range(9)
VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT = range(9, 17)
DECL_TAG, TYPE_TAG, ENUM64 = 17, 18, 19
INT_SIGNED = 1
_MODS = frozenset({VOLATILE, CONST, RESTRICT, TYPE_TAG})
_BASE = frozenset({INT, FLOAT, PTR, ENUM, ENUM64})
#: bytes that follow struct btf_type, per kind: fixed, and per vlen item
_EXTRA = {INT: (4, 0), ARRAY: (12, 0), STRUCT: (0, 12), UNION: (0, 12), ENUM: (0, 8),
          FUNC_PROTO: (0, 8), VAR: (4, 0), DATASEC: (0, 12), DECL_TAG: (4, 0),
          ENUM64: (0, 12)}  # fmt: skip
_HEADER = struct.Struct("=HBBIIIII")
_TYPE = struct.Struct("=III")
_U32 = struct.Struct("=I")
_EINVAL, _E2BIG, _ENOTSUP = -22, -7, -524
_MAX_DEPTH = 32  # MAX_RESOLVE_DEPTH
_U32_MAX = 0xFFFFFFFF
_LONG_NAMES = frozenset(
    ("long", "long int", "int long", "unsigned long", "long unsigned", "unsigned long int",
     "unsigned int long", "long unsigned int", "long int unsigned", "int unsigned long",
     "int long unsigned")
)  # fmt: skip


class BtfError(ValueError):
    """A blob that is not BTF (bad magic, sections outside the blob, a truncated type)."""


class Type:
    """One btf_type: kind, name offset, size or type (a union in C), vlen, kind_flag and
    the offset of the bytes that follow it in the blob."""

    __slots__ = ("extra", "kflag", "kind", "name_off", "size", "vlen")

    def __init__(self, kind: int, name_off: int, size: int, vlen: int, kflag: int, extra: int):
        self.kind, self.name_off, self.size = kind, name_off, size
        self.vlen, self.kflag, self.extra = vlen, kflag, extra


class Btf:
    """A raw BTF blob: its types (id 0 is void) and strings."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < _HEADER.size:
            raise BtfError("BTF header truncated")
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = (
            _HEADER.unpack_from(blob, 0)
        )
        if magic != 0xEB9F:
            raise BtfError("not BTF")
        types = hdr_len + type_off
        strings = hdr_len + str_off
        if types + type_len > len(blob) or strings + str_len > len(blob):
            raise BtfError("BTF sections outside the blob")
        self.blob = blob
        self.strings = blob[strings : strings + str_len]
        self.types: list[Type] = [Type(UNKN, 0, 0, 0, 0, 0)]
        off, end = types, types + type_len
        while off < end:
            if off + 12 > end:
                raise BtfError("BTF type truncated")
            name_off, info, size = _TYPE.unpack_from(blob, off)
            kind, vlen = info >> 24 & 0x1F, info & 0xFFFF
            fixed, per = _EXTRA.get(kind, (0, 0))
            self.types.append(Type(kind, name_off, size, vlen, info >> 31, off + 12))
            off += 12 + fixed + per * vlen
        self.ptr_size = self._pointer_size()

    def name(self, off: int) -> str:
        end = self.strings.find(b"\0", off)
        return self.strings[off : end if end >= 0 else len(self.strings)].decode("latin-1")

    def type(self, tid: int) -> Type:
        """The type ``tid``; an id past the last is void (libbpf would read garbage)."""
        return self.types[tid] if 0 <= tid < len(self.types) else self.types[0]

    def u32(self, off: int) -> int:
        return int(_U32.unpack_from(self.blob, off)[0])

    def _pointer_size(self) -> int:
        """determine_ptr_size: the size of a 4- or 8-byte int named like ``long``, else 8."""
        for t in self.types[1:]:
            if t.kind == INT and t.size in (4, 8) and self.name(t.name_off) in _LONG_NAMES:
                return t.size
        return 8

    def skip_mods(self, tid: int) -> int:
        """skip_mods_and_typedefs: the id past modifiers and typedefs."""
        for _ in range(len(self.types)):
            t = self.type(tid)
            if t.kind not in _MODS and t.kind != TYPEDEF:
                break
            tid = t.size
        return tid

    def resolve_size(self, tid: int) -> int:
        """btf__resolve_size: the size of a value of ``tid``, or a negative errno."""
        nelems, size = 1, -1
        for _ in range(_MAX_DEPTH):
            t = self.type(tid)
            if tid == 0:
                break
            if t.kind in (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT):
                size = t.size
                break
            if t.kind == PTR:
                size = self.ptr_size
                break
            if t.kind in _MODS or t.kind in (TYPEDEF, VAR, DECL_TAG):
                tid = t.size
            elif t.kind == ARRAY:
                n = self.u32(t.extra + 8)
                if nelems and n > _U32_MAX // nelems:
                    return _E2BIG
                nelems *= n
                tid = self.u32(t.extra)
            else:
                return _EINVAL
        if size < 0:
            return _EINVAL
        if nelems and size > _U32_MAX // nelems:
            return _E2BIG
        return nelems * size

    def align_of(self, tid: int, depth: int = 0) -> int:
        """btf__align_of: 1 for a packed struct, 0 for a kind without alignment."""
        t = self.type(tid)
        if depth > _MAX_DEPTH:
            return 0
        if t.kind in (INT, ENUM, ENUM64, FLOAT):
            return min(self.ptr_size, t.size)
        if t.kind == PTR:
            return self.ptr_size
        if t.kind in _MODS or t.kind == TYPEDEF:
            return self.align_of(t.size, depth + 1)
        if t.kind == ARRAY:
            return self.align_of(self.u32(t.extra), depth + 1)
        if t.kind not in (STRUCT, UNION):
            return 0
        best = 1
        for i in range(t.vlen):
            _name, mtype, offset = self.member(t, i)
            align = self.align_of(mtype, depth + 1)
            if align <= 0:
                return align
            best = max(best, align)
            if not (t.kflag and offset >> 24) and (offset & 0xFFFFFF if t.kflag else offset) % (
                8 * align
            ):
                return 1
        return 1 if t.size % best else best

    def member(self, t: Type, i: int) -> tuple[int, int, int]:
        """(name offset, type, raw offset word) of member ``i`` of a struct or union."""
        name_off, mtype, offset = _TYPE.unpack_from(self.blob, t.extra + 12 * i)
        return name_off, mtype, offset


class _State:
    """struct btf_dump_data: the state of one value's dump."""

    __slots__ = ("base", "char", "compact", "depth", "end", "indent", "member", "out", "stop")

    def __init__(self, end: int, base: int, compact: bool, indent: int) -> None:
        self.out: list[str] = []
        self.end, self.base = end, base
        self.compact, self.indent = compact, indent
        self.depth = 0
        self.member = self.char = self.stop = False


class TypeDump:
    """libbpf's btf_dump object of one map: its BTF and the names it has resolved."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self._seen: dict[tuple[bool, str], int] = {}
        self._names: dict[tuple[bool, int], str] = {}

    def dump(
        self, tid: int, data: bytes, compact: bool, indent: int, base: int = 0
    ) -> tuple[str, int]:
        """``data`` as a value of type ``tid``: (text, libbpf's return, negative on error).
        ``base``: the data's address modulo 16 (ss's receive buffer is malloc'd), which
        decides how libbpf reads pointers and enums (aligned or not)."""
        st = _State(len(data), base, compact, indent)
        if not 0 < tid < len(self.btf.types):
            return "", -2  # btf__type_by_id fails: -ENOENT
        err = self._value(st, data, None, tid, 0, 0, 0)
        return "".join(st.out), err

    # --- names ---------------------------------------------------------------------------
    def _resolved(self, tid: int, ident: bool) -> str:
        """btf_dump_resolve_name: a name met again for another type gets ``___N``."""
        t = self.btf.type(tid)
        if not t.name_off:
            return ""
        found = self._names.get((ident, tid))
        if found is not None:
            return found
        name = self.btf.name(t.name_off)
        if t.kind == FWD or (t.kind == ENUM and t.vlen == 0):
            self._names[ident, tid] = name
            return name
        count = self._seen[ident, name] = self._seen.get((ident, name), 0) + 1
        if count > 1:
            name = f"{name}___{count}"
        self._names[ident, tid] = name
        return name

    def cast(self, tid: int) -> str:
        """btf_dump_emit_type_cast's text inside the parentheses."""
        return self._decl(tid, "")

    def _decl(self, tid: int, fname: str) -> str:
        """btf_dump_emit_type_decl with strip_mods and skip_anon_defs (as the cast sets)."""
        stack = []
        for _ in range(len(self.btf.types) + 1):
            t = self.btf.type(tid)
            if t.kind not in _MODS or tid == 0:
                stack.append(tid)
            if tid == 0:
                break
            if t.kind in _MODS or t.kind in (PTR, FUNC_PROTO):
                tid = t.size
            elif t.kind == ARRAY:
                tid = self.btf.u32(t.extra)
            else:
                break
        out: list[str] = []
        self._chain(stack, fname, out)
        return "".join(out)

    def _chain(self, stack: list[int], fname: str, out: list[str]) -> None:
        """btf_dump_emit_type_chain: ``stack`` from the outermost type to the terminal one."""
        btf = self.btf
        last_ptr = True
        while stack:
            tid = stack.pop()
            t = btf.type(tid)
            kind = t.kind
            if tid == 0:
                out.append("void")
                last_ptr = False
                continue
            if kind in (INT, FLOAT):
                out.append(btf.name(t.name_off))
            elif kind in (STRUCT, UNION):
                word = "struct" if kind == STRUCT else "union"
                out.append(word + (" " if t.name_off else "") + self._resolved(tid, False))
            elif kind in (ENUM, ENUM64):
                out.append("enum " + self._resolved(tid, False))
            elif kind == FWD:
                out.append(("union " if t.kflag else "struct ") + self._resolved(tid, False))
            elif kind == TYPEDEF:
                out.append(self._resolved(tid, True))
            elif kind == PTR:
                out.append("*" if last_ptr else " *")
            elif kind == ARRAY:
                n = btf.u32(t.extra + 8)
                if not stack:
                    out.append((" " if fname and not last_ptr else "") + fname + f"[{n}]")
                    return
                multidim = btf.type(stack[-1]).kind == ARRAY
                if fname and not last_ptr:
                    out.append(" ")
                out.append("" if multidim else "(")
                self._chain(stack, fname, out)
                out.append(("" if multidim else ")") + f"[{n}]")
                return
            elif kind == FUNC_PROTO:
                self._proto(t, stack, fname, last_ptr, out)
                return
            else:
                return  # "unexpected type in decl chain": libbpf stops there
            last_ptr = kind == PTR
        out.append((" " if fname and not last_ptr else "") + fname)

    def _proto(self, t: Type, stack: list[int], fname: str, last_ptr: bool, out: list[str]) -> None:
        if stack:
            out.append(" (")
            self._chain(stack, fname, out)
            out.append(")")
        else:
            out.append((" " if fname and not last_ptr else "") + fname)
        params = [_TYPE.unpack_from(self.btf.blob, t.extra + 8 * i)[:2] for i in range(t.vlen)]
        if len(params) == 1 and params[0][1] == 0:
            out.append("()")
            return
        text = []
        for i, (name_off, ptype) in enumerate(params):
            if i == len(params) - 1 and ptype == 0:
                text.append("...")
                break
            text.append(self._decl(ptype, self.btf.name(name_off)))
        out.append("(" + ", ".join(text) + ")")

    # --- data ----------------------------------------------------------------------------
    @staticmethod
    def _put(st: _State, text: str) -> None:
        """btf_dump_type_values: the value, then its delimiter and newline below the top."""
        if st.depth:
            text += "," if st.compact else ",\n"
        st.out.append(text)

    @staticmethod
    def _pfx(st: _State) -> None:
        if not st.compact:
            st.out.append("\t" * (st.indent + st.depth))

    def _value(
        self, st: _State, data: bytes, fname: str | None, tid: int, off: int, bits: int, bit_sz: int
    ) -> int:
        """btf_dump_dump_type_data: one value at ``data[off:]``; its size or an error."""
        btf = self.btf
        size = btf.resolve_size(tid)
        if size < 0 or size >= 0x7FFFFFFF:
            return _EINVAL
        real = btf.skip_mods(tid)
        t = btf.type(real)
        if t.kind in _BASE and off + bits // 8 + size > st.end:
            return _E2BIG
        self._pfx(st)
        if fname:
            st.out.append(f".{fname} = ")
        if not st.member:
            st.out.append(f"({self.cast(tid)})")
        kind = t.kind
        if kind == INT:
            err = (
                self._bits(st, t, data, off, bits, bit_sz)
                if bit_sz
                else self._int(st, t, data, off)
            )
        elif kind == FLOAT:
            err = self._float(st, t, data, off)
        elif kind == PTR:
            err = self._ptr(st, tid, data, off)
        elif kind == ARRAY:
            err = self._array(st, t, data, off)
        elif kind in (STRUCT, UNION):
            err = self._struct(st, t, data, off)
        elif kind in (ENUM, ENUM64):
            err = self._enum(st, t, tid, data, off, bits, bit_sz)
        else:  # UNKN, FWD, FUNC, FUNC_PROTO, DECL_TAG (and VAR, DATASEC: see the docstring)
            st.out.append(f"<unsupported kind:{kind}>")
            err = _ENOTSUP
        return err if err < 0 else size

    def _int(self, st: _State, t: Type, data: bytes, off: int) -> int:
        """btf_dump_int_data."""
        sz = t.size
        signed = bool(btf_int_encoding(self.btf, t) & INT_SIGNED)
        raw = data[off : off + sz].ljust(sz, b"\0")
        if sz == 16:
            lo, hi = struct.unpack("<QQ", raw)
            self._put(st, f"0x{lo:x}" if hi == 0 else f"0x{hi:x}{lo:016x}")
        elif sz in (8, 4, 2):
            self._put(st, str(int.from_bytes(raw, "little", signed=signed)))
        elif sz == 1:
            byte = raw[0]
            if st.char:
                if st.stop:
                    return 0
                if byte == 0:
                    st.stop = True
                    return 0
                if 0x20 <= byte < 0x7F:  # isprint in the C locale
                    self._put(st, f"'{chr(byte)}'")
                    return 0
            self._put(st, str(byte - 256 if signed and byte > 127 else byte))
        else:
            return _EINVAL
        return 0

    def _bits(self, st: _State, t: Type, data: bytes, off: int, bits: int, bit_sz: int) -> int:
        value = _bitfield(t, data, off, bits, bit_sz)
        if value is None:
            return _EINVAL
        self._put(st, f"0x{value:x}")
        return 0

    def _float(self, st: _State, t: Type, data: bytes, off: int) -> int:
        raw = data[off : off + t.size]
        if t.size == 4:
            self._put(st, _ctext(struct.unpack("<f", raw)[0], raw[3] >> 7))
        elif t.size == 8:
            self._put(st, _ctext(struct.unpack("<d", raw)[0], raw[7] >> 7))
        elif t.size == 16:
            self._put(st, _long_double(raw))
        else:
            return _EINVAL
        return 0

    def _aligned(self, st: _State, tid: int, off: int) -> bool:
        align = self.btf.align_of(tid)
        return align > 0 and (st.base + off) % align == 0

    def _ptr(self, st: _State, tid: int, data: bytes, off: int) -> int:
        size = self.btf.ptr_size
        value = int.from_bytes(data[off : off + size].ljust(8, b"\0")[:size], "little")
        if size == 8 and self._aligned(st, tid, off):
            self._put(st, f"0x{value:x}" if value else "(nil)")  # glibc's %p
        else:
            self._put(st, f"0x{value:x}")
        return 0

    def _array(self, st: _State, t: Type, data: bytes, off: int) -> int:
        btf = self.btf
        elem = btf.u32(t.extra)
        nelems = btf.u32(t.extra + 8)
        esize = btf.resolve_size(elem)
        if esize <= 0:
            return _EINVAL
        if btf.type(btf.skip_mods(elem)).kind == INT and esize == 1:
            st.char = True  # never reset within the value: libbpf 1.1
        st.depth += 1
        st.out.append("[" if st.compact else "[\n")
        outer = st.member
        st.member = True
        for i in range(nelems):
            if st.stop:
                break
            self._value(st, data, None, elem, off + i * esize, 0, 0)  # errors ignored, as in libbpf
        st.member = outer
        st.depth -= 1
        self._pfx(st)
        self._put(st, "]")
        return 0

    def _struct(self, st: _State, t: Type, data: bytes, off: int) -> int:
        btf = self.btf
        st.depth += 1
        st.out.append("{" if st.compact else "{\n")
        err = 0
        for i in range(t.vlen):
            name_off, mtype, word = btf.member(t, i)
            moff = word & 0xFFFFFF if t.kflag else word
            bit_sz = word >> 24 if t.kflag else 0
            err = self._value(
                st, data, btf.name(name_off), mtype, off + moff // 8, moff % 8, bit_sz
            )
            if err < 0:
                return err
        st.depth -= 1
        self._pfx(st)
        self._put(st, "}")
        return err

    def _enum(
        self, st: _State, t: Type, tid: int, data: bytes, off: int, bits: int, bit_sz: int
    ) -> int:
        """btf_dump_enum_data (a bitfield's value is read back as the enum's size)."""
        if t.size not in (1, 2, 4, 8):
            return _EINVAL
        signed = bool(t.kflag)
        if bit_sz:
            num = _bitfield(t, data, off, bits, bit_sz)
            if num is None:
                return _EINVAL
            raw = num.to_bytes(8, "little")[: t.size]
            value = int.from_bytes(raw, "little", signed=signed or t.size == 8)
        elif self._aligned(st, tid, off):
            raw = data[off : off + t.size]
            value = int.from_bytes(raw, "little", signed=signed or t.size == 8)
        else:
            # read "as a bitfield" of size 0: shifts by 64, undefined in C; the libbpf
            # ss 7.1 runs with folds them to 0 (measured: an unaligned enum64 prints 0ULL)
            value = 0
        btf = self.btf
        if t.kind == ENUM:
            for i in range(t.vlen):
                name_off, val = struct.unpack_from("=Ii", btf.blob, t.extra + 8 * i)
                if val == value:
                    self._put(st, btf.name(name_off))
                    return 0
            low = value & _U32_MAX
            if signed:
                # libbpf's btf_dump_type_values(d, is_signed ? "%d" : "%u", ...) pastes its
                # "%s%s" (delimiter, newline) onto the "%u" literal only: a signed value
                # that names no enumerator is printed without them
                st.out.append(str(low - (1 << 32) if low >> 31 else low))
            else:
                self._put(st, str(low))
            return 0
        for i in range(t.vlen):
            name_off, lo, hi = _TYPE.unpack_from(btf.blob, t.extra + 12 * i)
            if (lo | hi << 32) == value & 0xFFFFFFFFFFFFFFFF:
                self._put(st, btf.name(name_off))
                return 0
        u = value & 0xFFFFFFFFFFFFFFFF
        if signed:  # "%lldLL" without the delimiter and newline, as above
            st.out.append(f"{u - (1 << 64) if u >> 63 else u}LL")
        else:
            self._put(st, f"{u}ULL")
        return 0


def btf_int_encoding(btf: Btf, t: Type) -> int:
    return btf.u32(t.extra) >> 24 & 0xF


def _bitfield(t: Type, data: bytes, off: int, bits: int, bit_sz: int) -> int | None:
    """btf_dump_get_bitfield_value (little endian); None for a type over 8 bytes. Shift
    counts wrap at 64 as x86's do (a count of 64 shifts nothing)."""
    if t.size > 8:
        return None
    num = int.from_bytes(data[off : off + t.size].ljust(t.size, b"\0"), "little")
    left = (64 - (bit_sz + bits)) & 0xFFFF & 63
    right = (64 - bit_sz) & 0xFFFF & 63
    return ((num << left) & 0xFFFFFFFFFFFFFFFF) >> right


def _ctext(value: float, negative: int) -> str:
    """printf's %f of a float or double (glibc writes a negative NaN as -nan)."""
    if math.isnan(value):
        return "-nan" if negative else "nan"
    return "%f" % value


def _long_double(raw: bytes) -> str:
    """printf's %Lf of an x87 80-bit long double (the first 10 of its 16 bytes),
    exactly, rounded half to even as glibc does."""
    from fractions import Fraction

    mant = int.from_bytes(raw[:8], "little")
    se = int.from_bytes(raw[8:10], "little")
    sign, exp = se >> 15, se & 0x7FFF
    if exp == 0x7FFF:
        if mant << 1 & 0xFFFFFFFFFFFFFFFF == 0:
            return "-inf" if sign else "inf"
        return "-nan" if sign else "nan"
    value = Fraction(mant) * Fraction(2) ** ((exp or 1) - 16383 - 63)
    scaled = round(value * 10**6)
    text = f"{scaled // 10**6}.{scaled % 10**6:06d}"
    return "-" + text if sign else text
