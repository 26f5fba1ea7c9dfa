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


class _Code:
    """A compiled subtree: its bytes and, sorted, the offsets of the ops that reject
    (jump to its end + 4). Those ops' ``no`` fields are written when they stop
    rejecting (an ``or``/``!`` above makes them jump elsewhere) or at the end, so that an
    ``and`` chain of n terms costs O(n), not ssfilter_patch()'s walk over the left side
    at every step; the bytes are the same."""

    __slots__ = ("code", "head", "rejects")

    def __init__(self, code: bytearray, rejects: list[int]) -> None:
        self.code = code
        self.rejects = rejects
        self.head = 0  # rejects[:head] no longer reject (their ``no`` is written)

    def settle(self, upto: int | None = None) -> None:
        """Write ``no`` = distance to the end + 4 (as a u16) for the rejects up to ``upto``."""
        code, rejects = self.code, self.rejects
        stop = len(rejects) if upto is None else upto
        length = len(code)
        for i in range(self.head, stop):
            pos = rejects[i]
            _code, yes, _no = _OP.unpack_from(code, pos)
            _OP.pack_into(code, pos, _code, yes, (length - pos + 4) & 0xFFFF)
        self.head = max(self.head, stop)


def _compile(root: Node) -> bytearray | None:
    """ssfilter_bytecompile() without recursion (a filter can nest thousands deep)."""
    done: list[_Code | None] = []
    todo: list[tuple[Node, bool]] = [(root, False)]
    while todo:
        node, ready = todo.pop()
        if isinstance(node, (And, Or, Not)) and not ready:
            todo.append((node, True))
            if isinstance(node, Not):
                todo.append((node.child, False))
            else:
                todo.append((node.right, False))
                todo.append((node.left, False))
            continue
        if isinstance(node, Not):
            child = done.pop()
            if child is not None:
                # the child's rejects now land after the jump: on the end (accept)
                child.settle()
                at = len(child.code)
                child.code += _op(abi.INET_DIAG_BC_JMP, 4, 8)
                child.rejects, child.head = [at], 0
            done.append(child)
        elif isinstance(node, (And, Or)):
            right = done.pop()
            left = done.pop()
            if left is None or right is None:
                done.append(None)
                continue
            base = len(left.code)
            if isinstance(node, And):
                # ssfilter_patch: the left side's rejects move to the new end (+ 4)
                total = base + len(right.code)
                head = left.head
                rejects = left.rejects
                while head < len(rejects) and total - rejects[head] + 4 > 0xFFFF:
                    head += 1  # their u16 ``no`` wraps: they stop matching len + 4
                _settle_wrapped(left, head, total)
            else:
                left.settle()
                left.code += _op(abi.INET_DIAG_BC_JMP, 4, len(right.code) + 4)
                left.rejects, left.head = [], 0
                base += 4
            left.code += right.code
            left.rejects.extend(pos + base for pos in right.rejects[right.head :])
            done.append(left)
        else:
            leaf = _leaf(node)
            done.append(None if leaf is None else _Code(leaf, [_leaf_reject(leaf)]))
    result = done.pop()
    if result is None:
        return None
    result.settle()
    return result.code


def _settle_wrapped(frag: _Code, upto: int, total: int) -> None:
    """Rejects before ``upto`` whose jump to ``total`` + 4 wraps: ``no += reloc`` in u16."""
    code, rejects = frag.code, frag.rejects
    for i in range(frag.head, upto):
        pos = rejects[i]
        _code, yes, _no = _OP.unpack_from(code, pos)
        _OP.pack_into(code, pos, _code, yes, (total - pos + 4) & 0xFFFF)
    frag.head = max(frag.head, upto)


def _leaf_reject(code: bytearray) -> int:
    """The offset of a leaf's rejecting op: its last (host alternatives chain to it)."""
    pos = 0
    last = 0
    while pos < len(code):
        _code, yes, no = _OP.unpack_from(code, pos)
        if pos + no == len(code) + 4:
            last = pos
        if yes <= 0:
            break
        pos += yes
    return last


def _leaf(node: Node) -> bytearray | None:
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
