"""The ss filter language: tokens, grammar, tree, printing and user-space matching.

Port of iproute2 7.1's ``misc/ssfilter.y`` (lexer and grammar) and ``run_ssfilter`` of
``misc/ss.c``. The grammar, as bison really applies it::

    applet    := exprlist | <nothing>
    exprlist  := expr | exprlist '|' expr | exprlist '&' expr | exprlist expr
    expr      := '(' exprlist ')' | '!' expr | autobound
               | (dst|src) ['='] HOST
               | (dport|sport) ('='|'!='|'>='|'<='|'>'|'<'|<nothing>) PORT
               | dev ['='|'!='] DEV | fwmark ['='|'!='] MARK | cgroup ['='|'!='] PATH

so ``and`` and ``or`` have the *same* precedence and associate to the left, juxtaposition
means ``and``, and ``!`` applies to one primary. Words are split on blanks and tabs
only (a backslash quotes the next character); operands are parsed while lexing, in the
meaning the last of ``dst src dport sport dev fwmark cgroup autobound`` gave them.

:class:`Filter` compiles the tree once into nested closures for :meth:`Filter.matches`
and prints it back with ``str()``; :mod:`sockscope.bytecode` turns it into kernel
inet_diag bytecode.
"""

from __future__ import annotations

import os

from sockscope.errors import FilterError
from sockscope.kernel import abi
from sockscope.query.hostcond import (
    FilterContext,
    HostCond,
    Prefix,
    ephemeral_range,
    parse_cgroupcond,
    parse_devcond,
    parse_hostcond,
    parse_markmask,
)
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

TYPE_CHECKING = False  # typing costs 10 ms of start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import IO, Any

    Predicate = Callable[[Any], bool]

__all__ = [
    "SYNTAX_ERROR",
    "And",
    "AutoBound",
    "CgroupCond",
    "DevCond",
    "Filter",
    "FilterContext",
    "FilterError",
    "HostMatch",
    "MarkCond",
    "Node",
    "Not",
    "Or",
    "PortRange",
    "parse_filter",
    "read_filter_file",
    "split_words",
]

#: yyerror() + ssfilter_parse()'s " Sorry." (ss then prints its usage and exits 255).
SYNTAX_ERROR = 'ss: bison bellows (while parsing filter): "syntax error!" Sorry.'

#: yylex(): keyword spelling -> token kind.
_KEYWORDS = {
    "!": "!", "not": "!", "&": "&", "&&": "&", "and": "&", "|": "|", "||": "|", "or": "|",
    "(": "(", ")": ")", "dst": "dst", "src": "src", "dport": "dport", "sport": "sport",
    "dev": "dev", "fwmark": "fwmark", "cgroup": "cgroup", "autobound": "autobound",
    ">=": ">=", "ge": ">=", "geq": ">=", "<=": "<=", "le": "<=", "leq": "<=",
    "!=": "!=", "ne": "!=", "neq": "!=", "=": "=", "==": "=", "eq": "=",
    ">": ">", "gt": ">", "<": "<", "lt": "<",
}  # fmt: skip
#: Keywords that decide how later operands are read (ss's sticky ``tok_type``).
_OPERAND_KEYWORDS = frozenset(("dst", "src", "dport", "sport", "dev", "fwmark", "cgroup",
                               "autobound"))  # fmt: skip
_EXPR_START = frozenset(("(", "!", "dst", "src", "dport", "sport", "dev", "fwmark", "cgroup",
                         "autobound"))  # fmt: skip
_PORT_OPS = frozenset(("=", "!=", ">=", "<=", ">", "<"))
_HOST, _DEV, _MARK, _CGROUP, _EOF = "HOST", "DEV", "MARK", "CGROUP", "EOF"
_MAPPED = bytes(10) + b"\xff\xff"
_FILE_LINE_MAX = 1024  # argbuf[] of yylex()


# --- words and tokens -------------------------------------------------------------------


def split_words(text: str) -> list[str]:
    """get_token_from_line(): split on blanks and tabs; a backslash quotes one character."""
    if "\\" not in text:
        return [w for w in text.replace("\t", " ").split(" ") if w]
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return words
        chars: list[str] = []
        while i < n and text[i] not in " \t":
            if text[i] == "\\":
                i += 1
                if i >= n:
                    break
            chars.append(text[i])
            i += 1
        words.append("".join(chars))


def _file_lines(fp: IO[bytes] | IO[str]) -> Iterator[str]:
    """The -F FILE half of yylex(): fgets() into a 1024-byte buffer, line by line."""
    while True:
        raw = fp.readline(_FILE_LINE_MAX - 1)
        if not raw:
            return
        line = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        nul = line.find(b"\0")
        if nul >= 0:
            line = line[:nul]
        if not line:
            raise FilterError("Invalid line", "file")
        if len(line) >= _FILE_LINE_MAX - 1:
            raise FilterError("Too long line in filter", "file")
        if line.endswith(b"\n"):
            line = line[:-1]
        if line[:1] in (b"#", b"0"):
            continue
        yield os.fsdecode(line)


def read_filter_file(fp: IO[bytes] | IO[str]) -> list[str]:
    """The lines of a ``-F`` filter file that ss reads (comments and ``0`` lines skipped).

    Raises FilterError (status 255) for a too long line or a line starting with NUL.
    """
    return list(_file_lines(fp))


class _Token:
    __slots__ = ("kind", "pos", "text", "value")

    def __init__(self, kind: str, text: str | None, pos: int, value: Any = None) -> None:
        self.kind, self.text, self.pos, self.value = kind, text, pos, value


class _Parser:
    """yyparse() + yylex() as a recursive descent parser with one token of lookahead.

    Tokens are lexed (and their operands parsed, which may fail or change the context)
    exactly when bison would read them, so the first error reported is ss's.
    """

    def __init__(self, words: Iterator[str], ctx: FilterContext) -> None:
        self._words = words
        self._ctx = ctx
        self._mode = ""
        self._count = 0
        self._ahead: _Token | None = None

    def _lex(self) -> _Token:
        text = next(self._words, None)
        pos = self._count
        if text is None:
            return _Token(_EOF, None, pos)
        self._count += 1
        kind = _KEYWORDS.get(text)
        if kind is not None:
            if kind in _OPERAND_KEYWORDS:
                self._mode = kind
            return _Token(kind, text, pos)
        try:
            return self._operand(text, pos)
        except FilterError as exc:
            exc.token, exc.position = text, pos
            raise

    def _operand(self, text: str, pos: int) -> _Token:
        mode = self._mode
        if mode == "dev":
            return _Token(_DEV, text, pos, parse_devcond(text))
        if mode == "fwmark":
            return _Token(_MARK, text, pos, parse_markmask(text))
        if mode == "cgroup":
            return _Token(_CGROUP, text, pos, parse_cgroupcond(text))
        is_port = mode in ("sport", "dport")
        return _Token(_HOST, text, pos, parse_hostcond(text, is_port, self._ctx))

    def _peek(self) -> _Token:
        if self._ahead is None:
            self._ahead = self._lex()
        return self._ahead

    def _take(self) -> _Token:
        tok = self._peek()
        self._ahead = None
        return tok

    @staticmethod
    def _error(tok: _Token) -> FilterError:
        return FilterError(SYNTAX_ERROR, "syntax", token=tok.text, position=tok.pos)

    def parse(self) -> Node | None:
        if self._peek().kind == _EOF:
            return None
        node = self._exprlist()
        tok = self._peek()
        if tok.kind != _EOF:
            raise self._error(tok)
        return node

    def _exprlist(self) -> Node:
        node = self._expr()
        while True:
            kind = self._peek().kind
            if kind == "|":
                self._take()
                node = Or(node, self._expr())
            elif kind == "&":
                self._take()
                node = And(node, self._expr())
            elif kind in _EXPR_START:
                node = And(node, self._expr())
            else:
                return node

    def _expr(self) -> Node:
        tok = self._take()
        kind = tok.kind
        if kind == "(":
            node = self._exprlist()
            close = self._take()
            if close.kind != ")":
                raise self._error(close)
            return node
        if kind == "!":
            return Not(self._expr())
        if kind == "autobound":
            return AutoBound()
        if kind in ("src", "dst"):
            return self._host(kind)
        if kind in ("sport", "dport"):
            return self._port(kind)
        if kind == "dev":
            return self._negatable(_DEV, lambda t: DevCond(t.value, t.text or ""))
        if kind == "fwmark":
            return self._negatable(_MARK, lambda t: MarkCond(t.value[0], t.value[1], t.text or ""))
        if kind == "cgroup":
            return self._negatable(_CGROUP, lambda t: CgroupCond(t.value, t.text or ""))
        raise self._error(tok)

    def _host(self, side: str) -> Node:
        tok = self._take()
        if tok.kind == "=":
            tok = self._take()
        if tok.kind != _HOST:
            raise self._error(tok)
        return HostMatch(side, tok.value)

    def _port(self, keyword: str) -> Node:
        side = "src" if keyword == "sport" else "dst"
        tok = self._take()
        op = "="
        if tok.kind in _PORT_OPS:
            op = tok.kind
            tok = self._take()
        if tok.kind != _HOST:
            raise self._error(tok)
        cond: HostCond = tok.value
        if op in (">=", "<="):
            return PortRange(side, op, cond)
        if op == ">":
            return Not(PortRange(side, "<=", cond))
        if op == "<":
            return Not(PortRange(side, ">=", cond))
        node = HostMatch(side, cond, by_port=True)
        return Not(node) if op == "!=" else node

    def _negatable(self, kind: str, build: Callable[[_Token], Node]) -> Node:
        tok = self._take()
        negate = tok.kind == "!="
        if tok.kind in ("=", "!="):
            tok = self._take()
        if tok.kind != kind:
            raise self._error(tok)
        node = build(tok)
        return Not(node) if negate else node


def _words(source: str | Iterable[str], fp: IO[bytes] | IO[str] | None) -> Iterator[str]:
    for word in [source] if isinstance(source, str) else source:
        yield from split_words(word)
    if fp is not None:
        for line in _file_lines(fp):
            yield from split_words(line)


def parse_filter(
    source: str | Iterable[str],
    ctx: FilterContext | None = None,
    *,
    fp: IO[bytes] | IO[str] | None = None,
) -> Filter | None:
    """Parse a filter expression like ss (``ssfilter_parse``); None when it is empty.

    ``source`` is one string or the list of argv words (each is split on blanks and
    tabs); ``fp``, an open ``-F`` file, is read lazily after them, as ss does. ``ctx``
    is read and changed as ss changes its selection (see :class:`FilterContext`).
    Raises :class:`FilterError` with ss's message and exit status.
    """
    if ctx is None:
        ctx = FilterContext()
    root = _Parser(_words(source, fp), ctx).parse()
    return None if root is None else Filter(root)


# --- user-space evaluation (run_ssfilter) -----------------------------------------------


class Filter:
    """A parsed filter: ``matches(sock)``, ``bytecode()`` and ``str()``.

    ``predicate`` is the compiled test itself (``matches`` calls it); hot loops may call
    it directly. Sockets are read through the attributes ``family``, ``lport``,
    ``rport``, ``iface``, ``mark``, ``cgroup_id``, ``local_data``, ``remote_data`` and
    ``name`` (ss's struct sockstat).
    """

    __slots__ = ("predicate", "root")

    def __init__(self, root: Node) -> None:
        self.root = root
        self.predicate: Predicate = _compile(root)

    def matches(self, sock: Any) -> bool:
        """run_ssfilter(): does the socket pass the filter in user space?"""
        return self.predicate(sock)

    def bytecode(self) -> bytes | None:
        """ssfilter_bytecompile(): inet_diag bytecode, or None when not compilable."""
        from sockscope.query.bytecode import compile_bytecode

        return compile_bytecode(self.root)

    def __str__(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"Filter({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and self.root == other.root

    def __hash__(self) -> int:
        return hash(self.root)


def _true(sock: Any) -> bool:
    return True


def _false(sock: Any) -> bool:
    return False


def _compile(node: Node) -> Predicate:
    if isinstance(node, And):
        left, right = _compile(node.left), _compile(node.right)
        return lambda s: left(s) and right(s)
    if isinstance(node, Or):
        left, right = _compile(node.left), _compile(node.right)
        return lambda s: left(s) or right(s)
    if isinstance(node, Not):
        child = _compile(node.child)
        return lambda s: not child(s)
    if isinstance(node, HostMatch):
        return _compile_host(node)
    if isinstance(node, PortRange):
        return _compile_range(node)
    if isinstance(node, AutoBound):
        return _compile_auto()
    if isinstance(node, DevCond):
        index = node.index
        return lambda s: s.iface == index
    if isinstance(node, MarkCond):
        mark, mask = node.mark, node.mask
        return lambda s: (s.mark & mask) == mark
    if isinstance(node, CgroupCond):
        cgroup_id = node.cgroup_id
        return lambda s: s.cgroup_id == cgroup_id
    raise TypeError(f"not a filter node: {node!r}")


def _compile_range(node: PortRange) -> Predicate:
    port = node.cond.port
    if node.side == "src":
        if node.op == ">=":
            return lambda s: s.lport >= port
        return lambda s: s.lport <= port
    if node.op == ">=":
        return lambda s: s.rport >= port
    return lambda s: s.rport <= port


def _compile_host(node: HostMatch) -> Predicate:
    cond = node.cond
    local = node.side == "src"
    if cond.pattern is not None:
        glob = _glob_matcher(cond.pattern)
        if not local:  # ss never fills in the peer name: only "" is ever compared
            return _true if glob("") else _false
        return lambda s: glob(s.name or "")
    port = cond.port
    if not cond.bitlen:
        if port == -1:
            return _true
        if local:
            return lambda s: s.lport == port
        return lambda s: s.rport == port
    test = _addrs_tester(cond.addrs)
    if local:
        if port == -1:
            return lambda s: test(s.local_data, s.family)
        return lambda s: s.lport == port and test(s.local_data, s.family)
    if port == -1:
        return lambda s: test(s.remote_data, s.family)
    return lambda s: s.rport == port and test(s.remote_data, s.family)


def _addrs_tester(addrs: tuple[Prefix, ...]) -> Callable[[bytes, int], bool]:
    tests = [_prefix_tester(prefix) for prefix in addrs]
    if len(tests) == 1:
        return tests[0]

    def any_of(data: bytes, family: int) -> bool:
        return any(test(data, family) for test in tests)

    return any_of


def _prefix_tester(prefix: Prefix) -> Callable[[bytes, int], bool]:
    """inet2_addr_match(): the first ``bitlen`` bits of the raw buffers, families ignored,
    plus: an IPv4 operand also matches ``::ffff:a.b.c.d`` on IPv6 sockets."""
    nbytes, rem = divmod(prefix.bitlen, 8)
    need = nbytes + (1 if rem else 0)
    head = prefix.data[:nbytes]
    mask = (0xFF00 >> rem) & 0xFF
    last = prefix.data[nbytes] & mask if rem else 0

    def raw(data: bytes) -> bool:
        if len(data) < need:
            data = data.ljust(need, b"\0")  # ss's sockstat is zero-filled
        return data[:nbytes] == head and (not rem or data[nbytes] & mask == last)

    if prefix.family != abi.AF_INET:
        return lambda data, family: raw(data)

    def v4(data: bytes, family: int) -> bool:
        if raw(data):
            return True
        return family == abi.AF_INET6 and data[:12] == _MAPPED and raw(data[12:16])

    return v4


def _compile_auto() -> Predicate:
    low, high = ephemeral_range()
    hexdigits = frozenset("0123456789abcdef")

    def autobound(s: Any) -> bool:
        family = s.family
        if family == abi.AF_UNIX:
            name = s.name
            return name is None or (
                len(name) == 6 and name[0] == "@" and hexdigits.issuperset(name[1:])
            )
        if family == abi.AF_PACKET:
            return s.lport == 0 and not any(s.local_data[:4])
        if family == abi.AF_NETLINK:
            return bool(s.lport < 0)
        if family == abi.AF_VSOCK:
            return bool(s.lport > 1023)
        return bool(low <= s.lport <= high)

    return autobound


def _glob_matcher(pattern: str) -> Callable[[str], bool]:
    """fnmatch(pattern, name, FNM_CASEFOLD) == 0, ASCII case folding as in the C locale."""
    if pattern == "*":
        return lambda name: True
    pat = os.fsencode(pattern)
    if not any(c in pat for c in b"*?[\\"):
        low = pat.lower()
        return lambda name: os.fsencode(name).lower() == low
    fnmatch = _libc_fnmatch()
    return lambda name: fnmatch(pat, os.fsencode(name))


def _libc_fnmatch() -> Callable[[bytes, bytes], bool]:
    try:
        import ctypes

        libc_fnmatch = ctypes.CDLL(None).fnmatch
        libc_fnmatch.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int)
        libc_fnmatch.restype = ctypes.c_int
    except (ImportError, OSError, AttributeError):  # pragma: no cover - no usable libc
        import fnmatch

        return lambda pat, name: fnmatch.fnmatchcase(name.lower(), pat.lower())
    return lambda pat, name: libc_fnmatch(pat, name, 16) == 0  # FNM_CASEFOLD
