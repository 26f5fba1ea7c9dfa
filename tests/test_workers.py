"""A worker thread that fails (issue 12): the failure reaches the main thread and ends
the run as the same failure in the main thread ends it, never a wait for ever.

The workers: the receive threads of the dumps (compiled path, ``tables/inet/fast.py``),
the /proc scan of ``-p`` (``ops/procmap.py``'s ``PendingMap``, both backends) and the
compiled core's ``Prefetch`` thread. Under a memory cap none is started and the main
thread does their work (``kernel/rlimit.py``): that run, with the same fault, is the
reference here (a direct property: threads change no byte of the outcome).

Faults are injected in a child process (as ``tests/test_middump.py`` does):
``netlink.open_diag`` is replaced by a fake socket that answers each request with four
records per family built from the uapi layout, and raises where the test says (its
send, its first or second datagram, its close); ``ProcessMap.build`` raises for ``-p``.
Each run has a timeout, so a hang fails the test instead of blocking it. Before, a fault
in a receive thread's close, or before its ``try`` (``Exception ignored in thread
started by``), left the main thread waiting on the queue for ever; ``Prefetch.take()``
waited for its thread without running the signal handlers, so Ctrl-C could not end a
dump the kernel never answered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
TIMEOUT = 30

DRIVER = r"""
import errno, json, socket, sys
from sockscope.kernel import abi, netlink, rlimit
from sockscope.ops import procmap
from sockscope.tables.inet import fast, plan, source

spec = json.loads(sys.argv[1])
opened = []


def fault():
    return {
        "OSError": OSError(errno.EACCES, "Permission denied"),
        "MemoryError": MemoryError(),
        "RuntimeError": RuntimeError("injected"),
    }[spec["exc"]]


def record(family, n):
    # struct inet_diag_msg of an established TCP socket, its local port telling it apart
    text = "127.0.0.1" if family == abi.AF_INET else "::1"
    addr = socket.inet_pton(family, text).ljust(16, b"\0")
    port = 1000 + 100 * (family == abi.AF_INET6) + n
    return abi.INET_DIAG_MSG.pack(
        family, abi.SS_ESTABLISHED, 0, 0, socket.htons(port), socket.htons(40000), addr,
        addr, 0, 0, 0, 0, 0, 0, 0, 5000 + port,
    )


class FakeDiag:
    # the first socket opened (the IPv4 dump) fails where spec["where"] says
    def __init__(self):
        self.index = len(opened)
        opened.append(self)
        self.queue = []
        self.recvs = 0

    def fails(self, where):
        return spec["where"] == where and self.index == 0

    def send(self, request):
        if self.fails("send"):
            raise fault()
        _length, mtype, _flags, seq, _pid = netlink.HDR_UNPACK(request, 0)
        legacy = mtype == abi.TCPDIAG_GETSOCK
        families = (abi.AF_INET, abi.AF_INET6) if legacy else (request[16],)

        def msgs(n):
            return b"".join(
                netlink.message(abi.SOCK_DIAG_BY_FAMILY, abi.NLM_F_MULTI, record(f, n), seq)
                for f in families
            )

        done = netlink.message(abi.NLMSG_DONE, abi.NLM_F_MULTI, bytes(4), seq)
        self.queue = [msgs(1) + msgs(2), msgs(3), msgs(4) + done]
        return len(request)

    def recv_into(self, buf, nbytes=0, flags=0):
        item = self.queue[0]
        if flags & socket.MSG_PEEK:
            return len(item)
        self.recvs += 1
        if self.fails("recv%d" % self.recvs):
            raise fault()
        self.queue.pop(0)
        buf[: len(item)] = item
        return len(item)

    def close(self):
        if self.fails("close"):
            raise fault()


netlink.open_diag = FakeDiag
plan.prefetch = lambda ctx: None  # (the core's own thread has a real socket)
plan.combinable = source.combinable = lambda ctx, protocol: False
if spec["where"] == "start":
    # the receiver's very first step fails (in a thread: before, outside its try)
    real_core = fast.core

    class Core:
        def __getattr__(self, name):
            if name == "dump_end":
                raise fault()
            return getattr(real_core(), name)

    fast.core = Core
if spec["where"] == "build":
    def build(environ, opts):
        raise fault()

    procmap.ProcessMap.build = staticmethod(build)
if not spec["threads"]:
    # the reference: under a memory cap the main thread does the workers' work
    rlimit.memory_capped = lambda: True

from sockscope.cli import command

status = command.main(spec["argv"])
sys.stdout.flush()
sys.exit(status)
"""


def _run(**spec: object) -> tuple[int, str, str]:
    from conftest import run_driver

    done = run_driver(DRIVER, spec, timeout=TIMEOUT)  # a hang fails here
    return done.returncode, done.stdout, done.stderr


def _outcome(status: int, out: str, err: str) -> tuple[int, str, str]:
    """What the user sees; of a traceback (an unexpected exception, raised in the main
    thread either way) its last line, the frames differing by where it was raised."""
    if "Traceback (most recent call last)" in err:
        err = err.rstrip("\n").rsplit("\n", 1)[-1]
    return status, out, err


@pytest.mark.parametrize("exc", ["OSError", "MemoryError", "RuntimeError"])
@pytest.mark.parametrize(
    ("where", "argv"),
    [
        ("send", ["-tan"]),
        ("start", ["-tan"]),
        ("recv1", ["-tan"]),
        ("recv2", ["-tan"]),
        ("close", ["-tan"]),
        ("build", ["-tanp"]),
    ],
)
def test_a_failing_worker_ends_the_run_as_the_main_thread_would(
    backend: str, exc: str, where: str, argv: list[str]
) -> None:
    if where == "start" and backend == "pure":
        pytest.skip("the pure path receives its dumps in the main thread (tables/inet/source.py)")
    threaded = _outcome(*_run(argv=argv, where=where, exc=exc, threads=True))
    alone = _outcome(*_run(argv=argv, where=where, exc=exc, threads=False))
    assert threaded == alone
    status, _out, err = threaded
    assert "Exception ignored" not in err
    if exc == "MemoryError":
        assert (status, err) == (1, "sockscope: Cannot allocate memory\n")
    elif exc == "RuntimeError":
        assert (status, err) == (1, "RuntimeError: injected")


def test_prefetch_take_runs_the_signal_handlers(backend: str) -> None:
    """A dump the kernel never answers (a request without NLM_F_REQUEST: it takes the
    message and says nothing) keeps the Prefetch thread in recv; a signal's handler
    must still run in the main thread, and its exception end ``take()``."""
    if backend != "compiled":
        pytest.skip("Prefetch is the compiled core's")
    code = textwrap.dedent(
        """
        import signal, struct, time
        from sockscope import _core
        from sockscope.kernel import abi

        class Stop(Exception):
            pass

        def stop(*_args):
            raise Stop

        signal.signal(signal.SIGALRM, stop)
        request = struct.pack("=IHHII", 72, abi.SOCK_DIAG_BY_FAMILY, 0x300, 77, 0) + bytes(56)
        pre = _core.Prefetch(request, 77)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        start = time.monotonic()
        try:
            pre.take()
        except Stop:
            print("stopped after %.1f s" % (time.monotonic() - start))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(SRC))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=TIMEOUT, check=False)  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("stopped after 0.")
