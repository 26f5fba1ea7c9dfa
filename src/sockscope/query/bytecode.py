"""Filter tree -> inet_diag bytecode (``INET_DIAG_REQ_BYTECODE``).

Port of ``ssfilter_bytecompile`` and ``ssfilter_patch`` of iproute2 7.1 ``misc/ss.c``,
with its behaviour kept where it differs from the user-space evaluation, because the
kernel's answer is what ss prints:

* a host name with several addresses emits one condition per address, but every one
  of them carries the *first* address;
* ``>=``/``<=`` ports are stored in a 16-bit field (``sport < :70000`` is ``< 4464``;
  ``sport >= *`` compares with 65535);
* ``dev`` has no translation, and one untranslatable node drops the whole program
  (None: the kernel then returns every socket in the requested states).

The program is a list of ``struct inet_diag_bc_op {u8 code; u8 yes; u16 no}``; the
kernel walks it, jumping ``yes`` bytes when a test holds and ``no`` bytes when not, and
accepts the socket when it lands exactly on the end.
"""

from __future__ import annotations

import struct

from sockscope.kernel import abi
from sockscope.kernel.libc import int32
from sockscope.query.tree import (
    And,
    AutoBound,
    CgroupCond,
    DevCond,
    HostMatch,
    MarkCond,
    Node,
    Not,
    Or,
    PortRange,
)

__all__ = ["compile_bytecode", "relocate"]

_OP = abi.INET_DIAG_BC_OP
_HOSTCOND = abi.INET_DIAG_HOSTCOND
_CGROUP = struct.Struct("=BBHQ")  # op + __u64 id, packed
_RANGE_CODES = {
    ("src", ">="): abi.INET_DIAG_BC_S_GE,
    ("src", "<="): abi.INET_DIAG_BC_S_LE,
    ("dst", ">="): abi.INET_DIAG_BC_D_GE,
    ("dst", "<="): abi.INET_DIAG_BC_D_LE,
}


def compile_bytecode(node: Node) -> bytes | None:
    """The inet_diag program for a filter tree, or None if some node cannot be compiled."""
    code = _compile(node)
    return None if code is None else bytes(code)


def _op(code: int, yes: int, no: int) -> bytes:
    return _OP.pack(code, yes & 0xFF, no & 0xFFFF)


def relocate(code: bytearray, length: int, reloc: int) -> None:
    """ssfilter_patch(): add ``reloc`` to every jump of ``code[:length]`` that rejects
    (targets the end + 4), so that it lands on the end of what is appended."""
    pos = 0
    while length > 0:
        _code, yes, no = _OP.unpack_from(code, pos)
        if no == length + 4:
            _OP.pack_into(code, pos, _code, yes, (no + reloc) & 0xFFFF)
        length -= yes
        pos += yes


def _compile(node: Node) -> bytearray | None:
    if isinstance(node, (And, Or)):
        left, right = _compile(node.left), _compile(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, And):
            relocate(left, len(left), len(right))
            return left + right
        return left + _op(abi.INET_DIAG_BC_JMP, 4, len(right) + 4) + right
    if isinstance(node, Not):
        child = _compile(node.child)
        if child is None:
            return None
        return child + _op(abi.INET_DIAG_BC_JMP, 4, 8)
    if isinstance(node, HostMatch):
        return _hostcond(node)
    if isinstance(node, PortRange):
        code = _RANGE_CODES[node.side, node.op]
        return bytearray(_op(code, 8, 12) + _op(0, 0, node.cond.port))
    if isinstance(node, AutoBound):
        return bytearray(_op(abi.INET_DIAG_BC_AUTO, 4, 8))
    if isinstance(node, MarkCond):
        cond = abi.INET_DIAG_MARKCOND.pack(node.mark, node.mask)
        return bytearray(_op(abi.INET_DIAG_BC_MARK_COND, 12, 16) + cond)
    if isinstance(node, CgroupCond):
        return bytearray(_CGROUP.pack(abi.INET_DIAG_BC_CGROUP_COND, 12, 16, node.cgroup_id))
    if isinstance(node, DevCond):
        return None  # "bytecompile for SSF_DEVCOND not supported yet"
    raise TypeError(f"not a filter node: {node!r}")


def _hostcond(node: HostMatch) -> bytearray:
    """S_COND/D_COND: one condition per alternative, all copying the first address."""
    cond = node.cond
    first = cond.addrs[0]
    code = abi.INET_DIAG_BC_S_COND if node.side == "src" else abi.INET_DIAG_BC_D_COND
    if cond.pattern is not None:
        # ss stores the glob's pointer as the address and 8*strlen as its length.
        bitlen, data = 8 * len(cond.pattern.encode("utf-8", "surrogateescape")), bytes(16)
    else:
        bitlen, data = first.bitlen, first.data
    alen = 16 if first.family == abi.AF_INET6 else 4
    oplen = 4 + _HOSTCOND.size + alen
    count = len(cond.addrs)
    total = count * oplen + (count - 1) * 4
    one = (
        _op(code, oplen, oplen + 4)
        + _HOSTCOND.pack(first.family & 0xFF, bitlen & 0xFF, int32(cond.port))
        + data[:alen]
    )
    out = bytearray()
    for index in range(count):
        out += one
        if index < count - 1:
            out += _op(abi.INET_DIAG_BC_JMP, 4, total - len(out))
    return out
