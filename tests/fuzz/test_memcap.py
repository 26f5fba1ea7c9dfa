"""Address-space caps (RLIMIT_AS, ``ulimit -v``) swept over listings of a few thousand
sockets, on both backends: never a hang, never a traceback, never an unbounded run.

Every capped run must end (a run still going after ``TIMEOUT`` seconds is a hang: with
CPython 3.11, a worker thread that ran out of memory could spin forever in the
interpreter's exception unwinding, python/cpython#132508, while the main thread waited
for it) and end in one of three ways:

* status 0, and stdout and stderr as the uncapped run's (which is ss 7.1's where
  ``$SOCKSCOPE_ORACLE`` is set);
* status 1, stderr exactly ``sockscope: Cannot allocate memory``, stdout a prefix of the
  uncapped run's (ss 7.1 aborts on its failed malloc());
* the interpreter itself failed before any of sockscope's code ran: Python's start-up
  (``site`` and the environment's ``.pth`` files, importing ``runpy``, runpy's lookup of
  the ``sockscope`` package and the reading of its ``__init__``). Those tracebacks and
  fatal errors name no sockscope file and are Python's; they are accepted only below
  ``INTERPRETER_FLOOR`` (they end near 16 MiB with CPython 3.11 here), see QUIRKS.md.
  So is, below that floor, a death by SIGSEGV with nothing on stderr: CPython 3.11 makes a
  MemoryError from a free list of 16; when those are all held (importlib's handlers
  chain one to the next), allocating a new one fails, which raises a MemoryError, which
  is allocated... until the C stack overflows (seen at 16 MiB, about 1 run in 15 of
  ``--json -tan`` run two at a time; the stack under ``_PyErr_NoMemory`` is an import's).
  And so, below it, is CPython's own ``Exception ignored in: <generator ...>`` and
  ``MemoryError`` before the one line: a generator of the listing closed while memory
  ran out, reported by the interpreter's own writer because it could not allocate the
  arguments of the command's ``sys.unraisablehook`` (seen once, pure ``-tanp`` at 18 MiB).

The bounded sweep runs in CI (``CAPS_MIB``); ``MEMCAP_STEP_KIB=256`` (with optional
``MEMCAP_FROM_MIB``/``MEMCAP_TO_MIB``) sweeps every step between 10 and 80 MiB instead,
and the ``slow`` test does a 1 MiB sweep. The candidate is ``netns.sockscope_cmd()``
(``$SOCKSCOPE_CAND``): ``SOCKSCOPE_CAND="env PYTHONPATH=/other/src python3 -m sockscope"``
runs the sweep against another tree.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from signal import SIGSEGV
from typing import TYPE_CHECKING

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import netns  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REASON = netns.live_reason()
pytestmark = [pytest.mark.live, pytest.mark.skipif(REASON is not None, reason=REASON or "")]

#: socket pairs the holder keeps (2 sockets each, 2/3 IPv4): above the 2048 sockets of
#: the start-up's single combined dump, so both families' dumps and -p's scan run as
#: they do on a busy host
PAIRS = 1500
TIMEOUT = 20.0
HUNG = -999  # the status of a run that TIMEOUT ended
OK_NOMEM = b"sockscope: Cannot allocate memory\n"
INTERPRETER_FLOOR = 20 << 20
CAPS_MIB = [10, 12, 13, 14, 15, 16, 18, 20, 22, 24, 26, 28, 30, 32, 36, 40, 48, 64, 80]
OPTIONS = [["-tan"], ["-tanp"], ["-tani"], ["-s"], ["-an"], ["--json", "-tan"]]
#: a traceback's frame in one of sockscope's files (of any tree: SOCKSCOPE_CAND may run another)
_OWN_FRAME = re.compile(rb'File "[^"]*/sockscope/[^"/]*(/[^"/]+)*\.py"')
_TCP_ALLOC = re.compile(rb"TCP: +\d+ \((estab \d+,) closed \d+,")
#: what Python prints when it fails before running sockscope's code
_INTERPRETER = (b"<frozen runpy>", b"<frozen importlib", b"<frozen site>", b"Fatal Python error",
                b"Could not import runpy module", b"Error in sitecustomize",
                b"Error processing line", b"Python path configuration",
                b"lost sys.stderr")  # fmt: skip

_HOLD = textwrap.dedent(
    """
    import resource, socket, sys
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    keep = []
    n = int(sys.argv[1])
    for k, (family, addr) in enumerate([(socket.AF_INET, "127.0.0.1"),
                                         (socket.AF_INET6, "::1")]):
        srv = socket.socket(family); srv.bind((addr, 7100 + k)); srv.listen(4096)
        keep.append(srv)
        for _ in range(n * 2 // 3 if k == 0 else n - n * 2 // 3):
            c = socket.socket(family); c.connect((addr, 7100 + k)); a, _ = srv.accept()
            keep += [c, a]
    print("ready", flush=True)
    sys.stdin.read()
    """
)


class World:
    """The namespace with its holder; runs of the candidate (and the oracle) in it."""

    def __init__(self) -> None:
        self.ns = netns.Netns(f"sockscope-memcap-{os.getpid()}")
        self.holder = subprocess.Popen(
            [*self.ns.enter(), sys.executable, "-c", _HOLD, str(PAIRS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != b"ready":
            self.close()
            pytest.skip("the socket holder could not open its sockets (RLIMIT_NOFILE?)")

    def close(self) -> None:
        self.holder.kill()
        self.holder.communicate()
        self.ns.close()

    def run(
        self, argv: list[str], cap: int | None = None, oracle: str | None = None
    ) -> tuple[int, bytes, bytes]:
        """(status, stdout, stderr) of the candidate (or ``oracle``) under ``cap`` bytes of
        address space; status HUNG when it was still running after TIMEOUT (then killed)."""
        cmd = [oracle] if oracle else netns.sockscope_cmd()
        if cap is not None:
            cmd = ["sh", "-c", 'ulimit -v "$0" && exec "$@"', str(cap >> 10), *cmd]
        try:
            p = self.ns.run([*cmd, *argv], env=netns.tool_env(), timeout=TIMEOUT)
        except subprocess.TimeoutExpired as e:  # ns.run kills it
            return HUNG, e.stdout or b"", e.stderr or b""
        return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    w = World()
    try:
        yield w
    finally:
        w.close()


def _masker(argv: list[str]) -> Callable[[bytes], bytes]:
    """What differs between two runs by nature: tcp_info's clocks (-i), the listing
    tool's own sock_diag socket (-a of every table)."""
    if "-tani" in argv:
        return netns.mask_volatile
    if argv == ["-s"]:
        # the TCP line's total and closed count come from /proc/net/sockstat's "alloc",
        # which counts the TCP sockets of every namespace of the host
        return lambda out: _TCP_ALLOC.sub(rb"TCP: N (\1 closed N,", out)
    if argv == ["-an"]:
        # and the netlink table: the kernel's sock_diag socket queues what the tools
        # that run at the same time are sent
        return lambda out: b"\n".join(
            line for line in netns.drop_self_diag(out).split(b"\n") if not line.startswith(b"nl ")
        )
    return lambda out: out


#: what CPython's own unraisable writer prints for a generator closed while memory ran
#: out when it cannot allocate the arguments of sys.unraisablehook (pyerrors.c:
#: make_unraisable_hook_args failing goes to its default hook)
_UNREPORTABLE = re.compile(rb"Exception ignored in: <[^\n]*>\nMemoryError\n")


def judge(
    argv: list[str],
    cap: int,
    got: tuple[int, bytes, bytes],
    want: tuple[int, bytes, bytes],
) -> str | None:
    """Why the run ``got`` under ``cap`` is wrong (None: it is not), ``want`` being the
    uncapped run."""
    status, out, err = got
    mask = _masker(argv)
    where = f"{' '.join(argv)} @ {cap >> 10} KiB"
    if status == HUNG:
        return f"{where}: hang (still running after {TIMEOUT:.0f} s)"
    if status == 0:
        if (mask(out), err) != (mask(want[1]), want[2]):
            return f"{where}: status 0, not the uncapped output: {_difference(mask(want[1]), mask(out))}, {err[-300:]!r}"
        return None
    if status == 1 and err == OK_NOMEM:
        if not mask(want[1]).startswith(mask(out)):
            return f"{where}: Cannot allocate memory after output the uncapped run has not"
        return None
    if status == 1 and cap < INTERPRETER_FLOOR and _UNREPORTABLE.sub(b"", err) == OK_NOMEM:
        # CPython could not even build the arguments of sys.unraisablehook (the command's
        # hook keeps these quiet) and printed with its own writer: the interpreter's
        return None
    ours = _OWN_FRAME.search(err) is not None or b"sockscope: " in err
    if not ours and cap < INTERPRETER_FLOOR and any(s in err for s in _INTERPRETER):
        return None  # Python failed before sockscope's code ran (see the docstring)
    if status == -SIGSEGV and not err and cap < INTERPRETER_FLOOR:
        return None  # CPython's MemoryError recursion (see the docstring)
    return f"{where}: status {status}, stderr {err[-600:]!r}"


def _difference(want: bytes, got: bytes) -> str:
    """The first line where ``got`` differs from ``want``."""
    for n, (a, b) in enumerate(zip(want.split(b"\n"), got.split(b"\n"), strict=False)):
        if a != b:
            return f"line {n + 1}: {a[:120]!r} != {b[:120]!r}"
    nl = b"\n"
    return f"{want.count(nl)} lines != {got.count(nl)}"


def sweep(world: World, argv: list[str], caps: list[int]) -> list[str]:
    """The failures of ``argv`` under each cap, after an uncapped run (compared with ss
    7.1 where $SOCKSCOPE_ORACLE is set and ss has the option)."""
    want = world.run(argv)
    assert want[0] == 0 and b"Traceback" not in want[2], want[2][-2000:]
    oracle = os.environ.get("SOCKSCOPE_ORACLE")
    if oracle and "--json" not in argv:
        mask = _masker(argv)
        ss = world.run(argv, oracle=oracle)
        assert (ss[0], mask(ss[1]), ss[2]) == (0, mask(want[1]), want[2])
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda cap: world.run(argv, cap), caps))
    found = [judge(argv, cap, got, want) for cap, got in zip(caps, runs, strict=True)]
    return [f for f in found if f is not None]


def _caps() -> list[int]:
    step = int(os.environ.get("MEMCAP_STEP_KIB", "0"))
    if not step:
        return [mib << 20 for mib in CAPS_MIB]
    first = int(os.environ.get("MEMCAP_FROM_MIB", "10")) << 20
    last = int(os.environ.get("MEMCAP_TO_MIB", "80")) << 20
    return list(range(first, last + 1, step << 10))


@pytest.mark.parametrize("argv", OPTIONS, ids=" ".join)
def test_memory_caps(world: World, argv: list[str], backend: str) -> None:
    """No hang, no traceback: ss's output or ``Cannot allocate memory`` under each cap."""
    failures = sweep(world, argv, _caps())
    assert failures == [], _summary(failures)


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["-tanp"], ["-an"]], ids=" ".join)
def test_memory_caps_every_mib(world: World, argv: list[str], backend: str) -> None:
    """The same at every MiB from 10 to 80."""
    failures = sweep(world, argv, [mib << 20 for mib in range(10, 81)])
    assert failures == [], _summary(failures)


def _summary(failures: list[str]) -> str:
    """The number of failures, then the first five, hangs first."""
    first = sorted(failures, key=lambda f: "hang" not in f)[:5]
    return "\n".join([f"{len(failures)} failures", *first])
