"""The CLI's import path stays lean: no heavy stdlib modules, a bounded startup cost.

``python -X importtime`` reports every module imported with its own and
cumulative cost in microseconds.  It runs in a fresh interpreter with ``-S``:
``site`` and the ``.pth`` files of whatever environment runs the tests may
import ``typing`` and friends first, which would hide sockscope's own imports.
The start-up budget is a count of sockscope's own modules that ``import
sockscope.cli`` loads, not a time: time is the benchmark's to measure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import LIVE_REASON
from netns import Netns, end_holder, oracle

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

SRC = Path(__file__).resolve().parent.parent / "src"
FORBIDDEN = ("argparse", "dataclasses", "inspect", "typing", "ipaddress", "json", "pyroute2")


def importtime(
    code: str, pure: bool = False, enter: list[str] | None = None
) -> list[tuple[str, int, int, int]]:
    """(name, depth, self us, cumulative us) per import made running ``code`` (with the
    pure-Python backend forced when ``pure``; in the namespace that ``enter`` enters)."""
    return importtime_run(code, pure, enter)[0]


def importtime_run(
    code: str, pure: bool = False, enter: list[str] | None = None
) -> tuple[list[tuple[str, int, int, int]], str]:
    """:func:`importtime`'s rows and what ``code`` wrote on stdout."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.pop("SOCKSCOPE_PURE", None)
    if pure:
        env["SOCKSCOPE_PURE"] = "1"
    proc = subprocess.run(
        [*(enter or []), sys.executable, "-S", "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        if own.strip().isdigit():
            depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
            rows.append((name.strip(), depth, int(own), int(cumulative)))
    return rows, proc.stdout


@pytest.fixture(scope="module")
def cli_imports() -> list[tuple[str, int, int, int]]:
    importtime("import sockscope.cli")  # warm the bytecode cache first
    baseline = {row[0] for row in importtime("pass")}
    return [row for row in importtime("import sockscope.cli") if row[0] not in baseline]


@pytest.mark.parametrize("name", FORBIDDEN)
def test_heavy_module_not_imported(cli_imports: list[tuple[str, int, int, int]], name: str) -> None:
    loaded = [m for m, *_ in cli_imports if m == name or m.startswith(name + ".")]
    assert not loaded, f"`import sockscope.cli` pulls in {loaded}"


#: how many of its own modules ``import sockscope.cli`` may load (counted, not timed: a
#: timed test fails on a busy machine; benchmarks/bench.py measures the time)
MODULE_BUDGET = int(os.environ.get("SOCKSCOPE_IMPORT_MODULE_BUDGET", "18"))


def test_startup_module_budget(cli_imports: list[tuple[str, int, int, int]]) -> None:
    names = sorted({m for m, *_ in cli_imports if m.split(".")[0] == "sockscope"})
    assert "sockscope.cli" in names
    assert len(names) <= MODULE_BUDGET, (
        f"import sockscope.cli loads {len(names)} modules, budget {MODULE_BUDGET}: {names}"
    )


#: what a plain TCP listing must not load: functools (with collections under it) and the
#: extra-information structures cost about 4 ms of a 20 ms start on a 300-socket host; the
#: extra-information text and the C-library emulations are not read either; struct.py,
#: operator.py and bisect.py only re-export their C modules
LISTING_FORBIDDEN = (
    *FORBIDDEN,
    "functools",
    "collections",
    "sockscope.kernel.structs",
    "sockscope.tables.inet.extinfo",
    "sockscope.kernel.libc",
    "struct",
    "operator",
    "bisect",
)


#: ... nor what only other paths need: socket.py (enum, selectors), the /proc fallback
#: and its iproute2 file readers, the other tables (found loaded in a populated namespace)
LISTING_FORBIDDEN_POPULATED = (
    *LISTING_FORBIDDEN,
    "socket",
    "enum",
    "selectors",
    "sockscope.kernel.iproute",
    "sockscope.tables.common",
    "sockscope.tables.inet.procfs",
)

#: -tan with its output counted: the number of lines is printed on the real stdout
LISTING_CODE = (
    "import io, os, sys\n"
    "out = io.BytesIO()\n"
    "sys.stdout = io.TextIOWrapper(out, encoding='latin-1')\n"
    "from sockscope.cli import main\n"
    "status = main(['-tan'])\n"
    "sys.stdout.flush()\n"
    "os.write(1, b'%d %d' % (status, out.getvalue().count(b'\\n')))\n"
)


@pytest.mark.parametrize("backend", ["compiled", "pure"])
def test_plain_listing_stays_lean(backend: str) -> None:
    rows, out = importtime_run(LISTING_CODE, pure=backend == "pure")
    names = {row[0] for row in rows}
    assert out.split()[0] == "0"
    assert "sockscope.tables.inet.row" in names  # the listing really ran
    loaded = sorted(n for n in names if n in LISTING_FORBIDDEN)
    assert not loaded, f"sockscope -tan loads {loaded}"


#: run inside the namespace: about 300 TCP sockets in several states (listening on IPv4
#: and IPv6, established, FIN-WAIT-2 and CLOSE-WAIT, TIME-WAIT, bound only), held until
#: stdin closes
_HOLDER = r"""
import socket, sys, time
keep = []
lst = []
for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0"),
                  (socket.AF_INET6, "::1"), (socket.AF_INET6, "::")):
    s = socket.socket(fam, socket.SOCK_STREAM)
    if addr == "::":
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((addr, 0))
    s.listen(512)
    lst.append(s)
keep += lst
def pair(i):
    lsn = lst[i % len(lst)]
    host = "::1" if lsn.family == socket.AF_INET6 else "127.0.0.1"
    c = socket.socket(lsn.family, socket.SOCK_STREAM)
    c.connect((host, lsn.getsockname()[1]))
    return c, lsn.accept()[0]
for i in range(120):
    keep += pair(i)
for i in range(20):
    c, s = pair(i)
    c.shutdown(socket.SHUT_WR)
    keep += (c, s)
for i in range(20):
    c, s = pair(i)
    c.close()
    s.close()
for i in range(4):
    b = socket.socket()
    b.bind(("127.0.0.1", 0))
    keep.append(b)
time.sleep(0.3)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def populated() -> Iterator[tuple[Netns, int]]:
    """A private namespace holding ~300 TCP sockets, and how many lines ``ss -tan``
    prints there (the reference ss: 7.1 when given, else the system's)."""
    if LIVE_REASON:
        pytest.skip(LIVE_REASON)
    ns = Netns(f"sockscope-lean-{os.getpid()}")
    try:
        holder = subprocess.Popen(
            [*ns.enter(), sys.executable, "-S", "-c", _HOLDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == b"ready\n"
            path, is_71 = oracle()
            ss = ns.run([path, "-tan"], check=True)
            # ss 6.1 does not list the holder's 4 bound, unconnected sockets (UNCONN),
            # 7.1 does (ss-internals section 4): sockscope prints 7.1's lines
            yield ns, ss.stdout.count(b"\n") + (0 if is_71 else 4)
        finally:
            end_holder(holder)
    finally:
        ns.close()


@pytest.mark.live
def test_plain_listing_stays_lean_populated(populated: tuple[Netns, int], backend: str) -> None:
    """The same in a namespace with a few hundred sockets in several states: the host's
    namespace of a test machine is nearly empty, and paths taken only for some rows or
    datagrams never run there."""
    ns, lines = populated
    assert lines > 250  # the namespace is really populated
    rows, out = importtime_run(LISTING_CODE, pure=backend == "pure", enter=ns.enter())
    names = {row[0] for row in rows}
    assert out.split() == ["0", str(lines)]  # the listing ran in full
    assert ("sockscope._core" in names) == (backend == "compiled")
    loaded = sorted(n for n in names if n in LISTING_FORBIDDEN_POPULATED)
    assert not loaded, f"sockscope -tan loads {loaded} in a populated namespace"


#: what the compiled backend's -tan does without: the pure-Python references whose work
#: the C core does (a third of the listing's bytecode), the record type (the core makes
#: every row of these sockets itself, IPv6 listeners included) and the socket module
#: (the core's own thread receives the dump)
COMPILED_UNUSED = (
    "sockscope.tables.inet.source",
    "sockscope.render.engine",
    "sockscope.tables.inet.record",
    "_socket",
)

#: the command as scripts/sockscope-run starts it (the package found, the collector off)
LAUNCHED_CODE = (
    "import sys\n"
    "sys.argv = ['sockscope', '-tan']\n"
    "import gc\n"
    "gc.disable()\n"
    "from sockscope.cli.command import launch\n"
    "launch()\n"
)


@pytest.mark.live
def test_launched_listing_does_without_os(populated: tuple[Netns, int], backend: str) -> None:
    """The launched command lists without os.py (about 1 ms of a 300-socket start-up:
    os.environ and _collections_abc's ABCs); ``posix`` is built in. A small table is
    received without a thread: no ``_queue``; ``_bisect`` only past a megabyte of text
    (both are shared libraries to load, about 0.1 ms each)."""
    ns, lines = populated
    rows, out = importtime_run(LAUNCHED_CODE, pure=backend == "pure", enter=ns.enter())
    names = {row[0] for row in rows}
    assert out.count("\n") == lines  # the listing ran in full
    unwanted = ("os", "_collections_abc", "_queue", "_bisect", *LISTING_FORBIDDEN_POPULATED)
    if backend == "compiled":
        # the C core reads the table and lays the rows out: the pure-Python references
        # (the decoding source, the column engine) are not loaded at all
        unwanted += COMPILED_UNUSED
    loaded = sorted(n for n in names if n in unwanted)
    assert not loaded, f"the launched sockscope -tan loads {loaded}"
    if backend == "compiled":
        # the start-up bundle holds exactly the modules of this listing
        from sockscope._startup import MODULES

        own = {n for n in names if n.split(".")[0] == "sockscope" and n != "sockscope._core"}
        assert own == set(MODULES), (sorted(own - set(MODULES)), sorted(set(MODULES) - own))
