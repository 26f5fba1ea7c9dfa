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
    Binary,
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

#: yyerror() when bison's stack would pass YYMAXDEPTH (10,000 states: ~9,995 nested
#: parentheses or ``!``).
MEMORY_EXHAUSTED = 'ss: bison bellows (while parsing filter): "memory exhausted!" Sorry.'
_YYMAXDEPTH = 10000

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
        try:
            raw = fp.readline(_FILE_LINE_MAX - 1)
        except OSError:
            return  # fgets() returns NULL on a read error (-F /proc/self/mem): the end
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
    """yyparse() + yylex() as an iterative parser with one token of lookahead.

    Tokens are lexed (and their operands parsed, which may fail or change the context)
    exactly when bison would read them, so the first error reported is ss's.
    """

    def __init__(self, words: Iterator[str], ctx: FilterContext) -> None:
        self._words = words
        self._ctx = ctx
        self._mode = ""
        self._count = 0
        self._ahead: _Token | None = None
        self._depth = 1  # bison's state stack: the initial state

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
            return _Token(_DEV, text, pos, parse_devcond(text, self._ctx))
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

    def _shift(self) -> None:
        """Bison pushes a state: its stack holds at most YYMAXDEPTH - 1 = 9999 of them."""
        self._depth += 1
        if self._depth >= _YYMAXDEPTH:
            raise FilterError(MEMORY_EXHAUSTED, "syntax")

    def parse(self) -> Node | None:
        """``applet: exprlist | null`` without recursion: one frame per open parenthesis,
        each with its exprlist so far, the operator that joins the next expr, and the
        ``!`` waiting for that expr. ``_depth`` counts bison's stack as it would grow."""
        if self._peek().kind == _EOF:
            return None
        # frame: [exprlist so far or None, the class joining the next expr, pending !,
        # is a parenthesis, stack entries that join pops (2 for | and &, 1 for juxtaposition)]
        frames: list[list[Any]] = [[None, None, 0, False, 0]]
        while True:
            frame = frames[-1]
            tok = self._take()
            kind = tok.kind
            if kind == "(":
                self._shift()
                frames.append([None, None, 0, True, 0])
                continue
            if kind == "!":
                self._shift()
                frame[2] += 1
                continue
            node = self._leaf(tok)
            while True:
                # expr is reduced: apply its !, then join it to the frame's exprlist
                frame = frames[-1]
                for _ in range(frame[2]):
                    node = Not(node)
                self._depth -= frame[2]
                frame[2] = 0
                if frame[0] is None:
                    frame[0] = node
                else:
                    frame[0] = frame[1](frame[0], node)
                    self._depth -= frame[4]
                nxt = self._peek()
                if nxt.kind in ("|", "&"):
                    self._take()
                    self._shift()
                    frame[1], frame[4] = (Or if nxt.kind == "|" else And), 2
                    break
                if nxt.kind in _EXPR_START:
                    frame[1], frame[4] = And, 1
                    break
                if not frame[3]:
                    if nxt.kind != _EOF:
                        raise self._error(nxt)
                    return frame[0]  # type: ignore[no-any-return]
                close = self._take()
                if close.kind != ")":
                    raise self._error(close)
                self._shift()
                self._depth -= 2  # '(' exprlist ')' -> expr
                node = frame[0]
                frames.pop()

    def _leaf(self, tok: _Token) -> Node:
        """An expr that is not ``( ... )`` or ``! expr``; bison's stack grows by its tokens."""
        kind = tok.kind
        if kind not in _EXPR_START:
            raise self._error(tok)
        self._shift()
        before = self._depth
        if kind == "autobound":
            node: Node = AutoBound()
        elif kind in ("src", "dst"):
            node = self._host(kind)
        elif kind in ("sport", "dport"):
            node = self._port(kind)
        elif kind == "dev":
            node = self._negatable(_DEV, lambda t: DevCond(t.value, t.text or ""))
        elif kind == "fwmark":
            node = self._negatable(_MARK, lambda t: MarkCond(t.value[0], t.value[1], t.text or ""))
        elif kind == "cgroup":
            node = self._negatable(_CGROUP, lambda t: CgroupCond(t.value, t.text or ""))
        else:
            raise self._error(tok)
        self._depth = before  # the leaf's tokens are reduced to one expr
        return node

    def _host(self, side: str) -> Node:
        tok = self._take()
        if tok.kind == "=":
            self._shift()
            tok = self._take()
        else:
            self._shift()  # the empty ``eq``
        if tok.kind != _HOST:
            raise self._error(tok)
        self._shift()
        return HostMatch(side, tok.value)

    def _port(self, keyword: str) -> Node:
        side = "src" if keyword == "sport" else "dst"
        tok = self._take()
        op = "="
        if tok.kind in _PORT_OPS:
            op = tok.kind
            self._shift()
            tok = self._take()
        else:
            self._shift()  # the empty ``eq``
        if tok.kind != _HOST:
            raise self._error(tok)
        self._shift()
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
            self._shift()
            tok = self._take()
        else:
            self._shift()  # the empty ``eq``
        if tok.kind != kind:
            raise self._error(tok)
        self._shift()
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
    if root is None:
        return None
    flt = Filter(root)
    flt.warnings = tuple(ctx.warnings)
    return flt


# --- user-space evaluation (run_ssfilter) -----------------------------------------------


class Filter:
    """A parsed filter: ``matches(sock)``, ``bytecode()`` and ``str()``.

    ``predicate`` is the compiled test itself (``matches`` calls it); hot loops may call
    it directly. Sockets are read through the attributes ``family``, ``lport``,
    ``rport``, ``iface``, ``mark``, ``cgroup_id``, ``local_data``, ``remote_data`` and
    ``name`` (ss's struct sockstat).
    """

    __slots__ = ("predicate", "root", "warnings")

    def __init__(self, root: Node) -> None:
        self.root = root
        self.predicate: Predicate = _compile(root)
        #: what ss warned on stderr while parsing it (``FilterContext.warnings``)
        self.warnings: tuple[str, ...] = ()

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


#: trees deeper than this are evaluated by a loop instead of nested closures
_CLOSURE_DEPTH = 200


def _compile(node: Node) -> Predicate:
    """run_ssfilter() as a predicate: nested closures for the usual shallow filter, a
    postfix program run by a loop for a deep one (``a or b or ...`` of thousands)."""
    depth = 0
    todo = [(node, 1)]
    while todo and depth <= _CLOSURE_DEPTH:
        item, level = todo.pop()
        depth = max(depth, level)
        if isinstance(item, Binary):
            todo += ((item.left, level + 1), (item.right, level + 1))
        elif isinstance(item, Not):
            todo.append((item.child, level + 1))
    if depth <= _CLOSURE_DEPTH:
        return _compile_tree(node)
    return _compile_program(node)


def _compile_program(root: Node) -> Predicate:
    program: list[Any] = []  # postorder: leaf predicates, And, Or, Not
    todo: list[tuple[Node, bool]] = [(root, False)]
    while todo:
        node, ready = todo.pop()
        if isinstance(node, Binary):
            if ready:
                program.append(type(node))
            else:
                todo += ((node, True), (node.right, False), (node.left, False))
        elif isinstance(node, Not):
            if ready:
                program.append(Not)
            else:
                todo += ((node, True), (node.child, False))
        else:
            program.append(_compile_tree(node))
    steps = tuple(program)

    def run(sock: Any) -> bool:
        stack: list[bool] = []
        for step in steps:
            if step is And:
                right = stack.pop()
                stack[-1] = stack[-1] and right
            elif step is Or:
                right = stack.pop()
                stack[-1] = stack[-1] or right
            elif step is Not:
                stack[-1] = not stack[-1]
            else:
                stack.append(bool(step(sock)))
        return stack[0]

    return run


def _compile_tree(node: Node) -> Predicate:
    if isinstance(node, And):
        left, right = _compile_tree(node.left), _compile_tree(node.right)
        return lambda s: left(s) and right(s)
    if isinstance(node, Or):
        left, right = _compile_tree(node.left), _compile_tree(node.right)
        return lambda s: left(s) or right(s)
    if isinstance(node, Not):
        child = _compile_tree(node.child)
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
