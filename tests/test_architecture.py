"""The house rules of the package, read from its source (ast, nothing imported).

* No import cycles between modules, lazy (function-level) imports included: a lazy tie
  is still a tie. Imports under ``if TYPE_CHECKING:`` are typing only and do not count.
* Imports go one way, downwards through the layers below; ``query`` and ``render`` are
  side by side and never import each other.

    cli -> api -> ops -> tables -> {query, render} -> kernel -> {errors, options}

* No module-level mutable state (style.md): no module-level list, set or other mutable
  container (``__all__`` aside), no state built by a loop at import, no ``global``, and
  no function that changes a module-level value (``.append``, ``[k] = v``...). Dicts
  and tuples at module level are read-only tables; a lazily built one goes behind
  ``functools.cache`` on a function.
* Only the CLI writes to the terminal: no module outside ``cli`` (and ``__main__``)
  reads ``sys.stdout``/``sys.stderr`` or calls ``print``; the layers below take a
  writer, a flush or a warn function from their caller.
"""

from __future__ import annotations

import ast
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

PKG = Path(__file__).resolve().parent.parent / "src" / "sockscope"

#: the layer of each top-level part of the package: a module may import its own layer's
#: siblings (without cycles) and anything of a lower layer
LAYERS = {
    "errors": 0,
    "options": 0,
    # the choice of implementation: compiled core or pure Python. The C extension
    # sockscope._core (src/sockscope/_core.c, not read by this test) is a leaf at this
    # layer too: it imports no sockscope module, and is reached only through accel
    "accel": 0,
    # the launcher's start-up bundle (a cache of compiled modules): imports no
    # sockscope module, and only the command's exit writes it
    "_startup": 0,
    "kernel": 1,
    "query": 2,
    "render": 2,
    "tables": 3,
    "ops": 4,
    "api": 5,
    "cli": 6,
    "__main__": 7,
    "": 7,  # the package's front door (sockscope/__init__.py)
}
#: parts of one layer that must not import each other
APART = {frozenset(("query", "render"))}


def modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _is_typing_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports at run time (lazy ones too)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    stack: list[ast.AST] = list(ast.parse(path.read_text()).body)
    while stack:
        node = stack.pop()
        if _is_typing_block(node):
            stack.extend(node.orelse)  # type: ignore[attr-defined]
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - node.level + 1]
                module = ".".join(parent + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            stack.extend(ast.iter_child_nodes(node))
            continue
        found.update(t for t in targets if t in mods and t != name)
    # a package's own __init__ re-exporting its children is not a tie
    if is_pkg:
        found = {t for t in found if not t.startswith(name + ".")}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, mods) for name, path in mods.items()}


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in list(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_layers_cover_every_part() -> None:
    assert {part(m) for m in modules()} <= set(LAYERS)


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def upward(edges: dict[str, set[str]]) -> list[str]:
    """The imports of ``edges`` that go up a layer, into the front door, or between
    parts that must stay apart."""
    wrong = []
    for src, targets in edges.items():
        for dst in sorted(targets):
            a, b = part(src), part(dst)
            if dst == "sockscope":
                wrong.append(f"{src} -> {dst} (the front door)")
            elif LAYERS[b] > LAYERS[a] or (a != b and frozenset((a, b)) in APART):
                wrong.append(f"{src} -> {dst}")
    return wrong


def test_imports_go_downwards() -> None:
    assert upward(graph()) == []


def test_the_checker_sees_a_cycle_and_an_upward_import() -> None:
    """The rules above can fail: a made-up graph with both defects is caught."""
    edges = {
        "sockscope.kernel.a": {"sockscope.kernel.b"},
        "sockscope.kernel.b": {"sockscope.kernel.a", "sockscope.tables.c"},
        "sockscope.tables.c": set(),
    }
    assert cycles(edges) == [["sockscope.kernel.a", "sockscope.kernel.b"]]
    assert upward(edges) == ["sockscope.kernel.b -> sockscope.tables.c"]
    apart = {"sockscope.query.x": {"sockscope.render.y", "sockscope"}, "sockscope.render.y": set()}
    assert upward(apart) == [
        "sockscope.query.x -> sockscope (the front door)",
        "sockscope.query.x -> sockscope.render.y",
    ]


#: the parts of the package that may write to the terminal themselves
TERMINAL_PARTS = {"cli", "__main__"}


def terminal_uses(source: str) -> list[str]:
    """Where ``source`` touches the process's terminal streams or calls ``print``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
            and node.attr in ("stdout", "stderr", "__stdout__", "__stderr__")
        ):
            found.append((node.lineno, f"sys.{node.attr}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ):
            found.append((node.lineno, "print()"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_only_the_cli_writes_to_the_terminal() -> None:
    wrong = []
    for name, path in modules().items():
        if part(name) not in TERMINAL_PARTS:
            wrong += [f"{name}:{use}" for use in terminal_uses(path.read_text())]
    assert wrong == []


def test_the_terminal_checker_sees_a_write() -> None:
    source = "import sys\ndef f():\n    sys.stdout.flush()\n    print('x')\n"
    assert terminal_uses(source) == ["3: sys.stdout", "4: print()"]


# --- module-level mutable state ----------------------------------------------------------

#: methods that change a list, dict, set, deque or queue in place
MUTATORS = frozenset(
    [
        "append",
        "extend",
        "insert",
        "pop",
        "popitem",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "remove",
        "sort",
        "reverse",
        "appendleft",
        "put",
        "__setitem__",
    ]
)
#: constructors of mutable containers (a dict() at module level is a table, as {...})
MUTABLE_CALLS = frozenset(
    [
        "list",
        "set",
        "bytearray",
        "defaultdict",
        "deque",
        "Counter",
        "OrderedDict",
        "SimpleQueue",
        "Queue",
    ]
)


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements run at import: the module's, and those of its top-level if/try."""
    for st in body:
        if isinstance(st, (ast.If, ast.Try)):
            yield from _module_level(st.body)
            yield from _module_level(st.orelse)
            for handler in getattr(st, "handlers", []):
                yield from _module_level(handler.body)
            yield from _module_level(getattr(st, "finalbody", []))
        else:
            yield st


def mutable_state(source: str) -> list[str]:
    """Where ``source`` keeps state at module level, or changes it from a function."""
    tree = ast.parse(source)
    found: set[tuple[int, str]] = set()
    names: set[str] = set()
    for st in _module_level(tree.body):
        if isinstance(st, (ast.For, ast.While)):
            found.add((st.lineno, "a loop at import"))
        targets = (
            st.targets
            if isinstance(st, ast.Assign)
            else [st.target]
            if isinstance(st, ast.AnnAssign)
            else []
        )
        bound = [t.id for t in targets if isinstance(t, ast.Name)]
        names.update(bound)
        value = getattr(st, "value", None)
        if not bound or bound == ["__all__"] or value is None:
            continue
        if isinstance(value, (ast.List, ast.Set, ast.ListComp, ast.SetComp)) or (
            isinstance(value, ast.Call)
            and ast.unparse(value.func).rsplit(".", 1)[-1] in MUTABLE_CALLS
        ):
            found.add((st.lineno, f"{bound[0]}: a mutable container"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.add((node.lineno, "global " + ", ".join(node.names)))
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        local = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        local |= {
            n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        for n in ast.walk(node):
            if (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and isinstance(n.func.value, ast.Name)
                and n.func.value.id in names - local
                and n.func.attr in MUTATORS
            ):
                found.add((n.lineno, f"{n.func.value.id}.{n.func.attr}()"))
            elif (
                isinstance(n, ast.Subscript)
                and isinstance(n.ctx, (ast.Store, ast.Del))
                and isinstance(n.value, ast.Name)
                and n.value.id in names - local
            ):
                found.add((n.lineno, f"{n.value.id}[...] changed"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_no_module_level_mutable_state() -> None:
    wrong = []
    for name, path in modules().items():
        wrong += [f"{name}:{use}" for use in mutable_state(path.read_text())]
    assert wrong == []


def test_the_state_checker_sees_each_kind() -> None:
    """The rule above can fail: each way of keeping state at module level is caught, and
    read-only tables, locals and ``__all__`` are not."""
    source = """\
__all__ = ["f"]
TABLE = {1: "a"}
NAMES = dict(TABLE)
_cache = []
_seen = set()
_q = collections.deque()
for k in range(3):
    TABLE[k] = "x"
def f(x):
    global _cache
    _cache.append(x)
    TABLE[x] = 1
    del NAMES[x]
    local = []
    local.append(x)
    return TABLE.get(x)
def g(TABLE):
    TABLE.update({})
"""
    assert mutable_state(source) == [
        "4: _cache: a mutable container",
        "5: _seen: a mutable container",
        "6: _q: a mutable container",
        "7: a loop at import",
        "10: global _cache",
        "11: _cache.append()",
        "12: TABLE[...] changed",
        "13: NAMES[...] changed",
    ]
