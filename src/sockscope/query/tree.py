"""The filter tree: one node class per kind of condition of ss's filter language.

Equal trees mean equal filters (spelling aside); ``str()`` prints a tree back in the
language. :mod:`sockscope.query.filter` builds trees and evaluates them in user space,
:mod:`sockscope.query.bytecode` compiles them to inet_diag bytecode.
"""

from __future__ import annotations

from sockscope.query.hostcond import FAMILY_PREFIX_OF

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sockscope.query.hostcond import HostCond

__all__ = [
    "And",
    "AutoBound",
    "Binary",
    "CgroupCond",
    "DevCond",
    "HostMatch",
    "MarkCond",
    "Node",
    "Not",
    "Or",
    "PortRange",
]


# --- tree -------------------------------------------------------------------------------


class Node:
    """A node of the filter tree. Equal trees mean equal filters (spelling aside)."""

    __slots__ = ()

    def _key(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and self._flat() == other._flat()

    def __hash__(self) -> int:
        return hash(tuple(self._flat()))

    def _flat(self) -> list[tuple[object, ...]]:
        """The tree in preorder, one entry per node (leaves with their key): equal lists
        mean equal trees. Iterative, as a filter can nest thousands deep."""
        out: list[tuple[object, ...]] = []
        todo: list[Node] = [self]
        while todo:
            node = todo.pop()
            if isinstance(node, Binary):
                out.append((type(node).__name__,))
                todo.append(node.right)
                todo.append(node.left)
            elif isinstance(node, Not):
                out.append(("Not",))
                todo.append(node.child)
            else:
                out.append((type(node).__name__, *node._key()))
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


class Binary(Node):
    """A left-associative pair: ``left WORD right``."""

    __slots__ = ("left", "right")
    word = ""

    def __init__(self, left: Node, right: Node) -> None:
        self.left, self.right = left, right

    def _key(self) -> tuple[object, ...]:
        return (self.left, self.right)

    def __str__(self) -> str:
        return _to_text(self)


class And(Binary):
    """``left and right`` (SSF_AND)."""

    __slots__ = ()
    word = "and"


class Or(Binary):
    """``left or right`` (SSF_OR)."""

    __slots__ = ()
    word = "or"


class Not(Node):
    """``! child`` (SSF_NOT); also what ``>``, ``<`` and ``!=`` desugar to."""

    __slots__ = ("child",)

    def __init__(self, child: Node) -> None:
        self.child = child

    def _key(self) -> tuple[object, ...]:
        return (self.child,)

    def __str__(self) -> str:
        return _to_text(self)

    def _special(self) -> str | None:
        """The text of ``>``, ``<`` and ``!=``, which parse to a Not of one leaf."""
        child = self.child
        if isinstance(child, PortRange):
            return f"{child.keyword} {'>' if child.op == '<=' else '<'} {_operand(child.cond)}"
        if isinstance(child, HostMatch) and child.by_port:
            return f"{child.keyword} != {_operand(child.cond)}"
        if isinstance(child, (DevCond, MarkCond, CgroupCond)):
            return f"{child.keyword} != {_escape(child.text)}"
        return None


class HostMatch(Node):
    """``src``/``dst`` HOST, or ``sport``/``dport`` ``=`` PORT (SSF_SCOND / SSF_DCOND).

    ``side`` is ``"src"`` (local end) or ``"dst"`` (remote end); ``by_port`` records
    that the operand was written after ``sport``/``dport`` (it is then read as a port).
    """

    __slots__ = ("by_port", "cond", "side")

    def __init__(self, side: str, cond: HostCond, by_port: bool = False) -> None:
        self.side, self.cond, self.by_port = side, cond, by_port

    @property
    def keyword(self) -> str:
        if self.by_port:
            return "sport" if self.side == "src" else "dport"
        return self.side

    def _key(self) -> tuple[object, ...]:
        return (self.side, self.cond)

    def __str__(self) -> str:
        eq = "= " if self.by_port else ""
        return f"{self.keyword} {eq}{_operand(self.cond)}"


class PortRange(Node):
    """``sport``/``dport`` ``>=`` or ``<=`` PORT (SSF_S_GE, SSF_S_LE, SSF_D_GE, SSF_D_LE)."""

    __slots__ = ("cond", "op", "side")

    def __init__(self, side: str, op: str, cond: HostCond) -> None:
        self.side, self.op, self.cond = side, op, cond

    @property
    def keyword(self) -> str:
        return "sport" if self.side == "src" else "dport"

    @property
    def port(self) -> int:
        return self.cond.port

    def _key(self) -> tuple[object, ...]:
        return (self.side, self.op, self.cond.port)

    def __str__(self) -> str:
        return f"{self.keyword} {self.op} {_operand(self.cond)}"


class AutoBound(Node):
    """``autobound`` (SSF_S_AUTO): the local port/name was chosen by the kernel."""

    __slots__ = ()

    def _key(self) -> tuple[object, ...]:
        return ()

    def __str__(self) -> str:
        return "autobound"


class DevCond(Node):
    """``dev DEV`` (SSF_DEVCOND): the socket's bound interface index."""

    __slots__ = ("index", "text")
    keyword = "dev"

    def __init__(self, index: int, text: str) -> None:
        self.index, self.text = index, text

    def _key(self) -> tuple[object, ...]:
        return (self.index,)

    def __str__(self) -> str:
        return f"dev = {_escape(self.text)}"


class MarkCond(Node):
    """``fwmark MARK[/MASK]`` (SSF_MARKMASK): ``(sk_mark & mask) == mark``."""

    __slots__ = ("mark", "mask", "text")
    keyword = "fwmark"

    def __init__(self, mark: int, mask: int, text: str) -> None:
        self.mark, self.mask, self.text = mark, mask, text

    def _key(self) -> tuple[object, ...]:
        return (self.mark, self.mask)

    def __str__(self) -> str:
        return f"fwmark = {_escape(self.text)}"


class CgroupCond(Node):
    """``cgroup PATH`` (SSF_CGROUPCOND): the socket's cgroup v2 id."""

    __slots__ = ("cgroup_id", "text")
    keyword = "cgroup"

    def __init__(self, cgroup_id: int, text: str) -> None:
        self.cgroup_id, self.text = cgroup_id, text

    def _key(self) -> tuple[object, ...]:
        return (self.cgroup_id,)

    def __str__(self) -> str:
        return f"cgroup = {_escape(self.text)}"


def _to_text(root: Node) -> str:
    """str() of an And, Or or Not tree: ``left WORD atom(right)`` and ``! atom(child)``,
    written without recursion (a filter can nest thousands deep)."""
    parts: list[str] = []
    todo: list[Node | str] = [root]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, Binary):
            right: list[Node | str] = [item.right]
            if isinstance(item.right, Binary):
                right = ["( ", item.right, " )"]
            todo.extend(reversed([item.left, f" {item.word} ", *right]))
        elif isinstance(item, Not):
            special = item._special()
            if special is not None:
                parts.append(special)
                continue
            child: list[Node | str] = [item.child]
            if isinstance(item.child, Binary):
                child = ["( ", item.child, " )"]
            todo.extend(reversed(["! ", *child]))
        else:
            parts.append(str(item))
    return "".join(parts)


def _escape(text: str) -> str:
    if "\\" in text or " " in text or "\t" in text:
        text = text.replace("\\", "\\\\").replace(" ", "\\ ").replace("\t", "\\\t")
    return text


def _operand(cond: HostCond) -> str:
    if cond.text:
        return _escape(cond.text)
    # An empty word (a lone backslash) can only be printed as its equivalent.
    return FAMILY_PREFIX_OF.get(cond.family, "*")
