"""Live hardening: churn during the dump, and 200,000 sockets (slow), in private netns.

Properties only (no oracle): status 0, no traceback, every row well formed, the row
count, and memory under an RLIMIT_AS cap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import netns  # noqa: E402

REASON = netns.live_reason()
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")
AS_CAP = 768 << 20

_CAPPED = (
    "import resource,subprocess,sys;"
    f"resource.setrlimit(resource.RLIMIT_AS,({AS_CAP},{AS_CAP}));"
    "p=subprocess.run(sys.argv[1:],capture_output=True);"
    "sys.stdout.buffer.write(p.stdout);sys.stderr.buffer.write(p.stderr);"
    "sys.exit(p.returncode)"
)


def _sockscope(ns: netns.Netns, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    return ns.run(
        [sys.executable, "-c", _CAPPED, *netns.sockscope_cmd(), *argv],
        env=netns.tool_env(),
        timeout=300,
    )


_CHURN = textwrap.dedent(
    """
    import socket, sys, threading, time
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 7000)); srv.listen(4096)
    stop = time.monotonic() + float(sys.argv[1])
    def accept():
        while time.monotonic() < stop:
            try:
                c, _ = srv.accept(); c.close()
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    n = 0
    while time.monotonic() < stop:
        s = socket.socket(); s.connect(("127.0.0.1", 7000)); s.close(); n += 1
    print(n)
    """
)


@needs_root
@pytest.mark.live
def test_churn_during_the_dump() -> None:
    """Connections open and close (thousands a second) while sockscope dumps them."""
    ns = netns.Netns(f"sockscope-churn-{os.getpid()}")
    try:
        churn = subprocess.Popen(
            [*ns.enter(), sys.executable, "-c", _CHURN, "8"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)
        runs = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            for argv in (
                ["-tan"],
                ["-tani"],
                ["-tan", "--json-lines"],
                ["-tan", "sport", "=", ":7000"],
            ):
                r = _sockscope(ns, argv)
                runs += 1
                assert r.returncode == 0, r.stderr[-2000:]
                assert r.stderr in (b"", b"Dump was interrupted and may be inconsistent.\n")
                if "--json-lines" in argv or "-tani" in argv:
                    continue
                for line in r.stdout.splitlines()[1:]:
                    assert len(line.split()) == 5, line
        out, err = churn.communicate(timeout=30)
        assert churn.returncode == 0, err
        assert int(out) > 1000  # connections made during the runs
        assert runs >= 4
    finally:
        ns.close()


_HOLD = textwrap.dedent(
    """
    import resource, socket, sys
    first, count = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []
    for i in range(first, first + count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.0.{1 + i // 50000}", 1024 + i % 50000))
        socks.append(s)
    print("ready", flush=True)
    sys.stdin.read()
    """
)


@needs_root
@pytest.mark.live
@pytest.mark.slow
def test_200k_sockets() -> None:
    """200,000 UDP sockets (held by several processes: the hard RLIMIT_NOFILE may be
    low): every one listed, in text and JSON lines, under the cap."""
    import resource

    n = 200_000
    per = max(1000, resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 200)
    ns = netns.Netns(f"sockscope-200k-{os.getpid()}")
    holders: list[subprocess.Popen[bytes]] = []
    try:
        for first in range(0, n, per):
            holders.append(subprocess.Popen(
                [*ns.enter(), sys.executable, "-c", _HOLD, str(first), str(min(per, n - first))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            ))  # fmt: skip
        for holder in holders:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == b"ready"
        for argv in (["-uan"], ["-uan", "--json-lines"], ["-an", "-u", "dport", "=", ":0"]):
            t = time.monotonic()
            r = _sockscope(ns, argv)
            assert r.returncode == 0 and r.stderr == b"", r.stderr[-2000:]
            lines = r.stdout.count(b"\n")
            assert lines == (n if "--json-lines" in argv else n + 1), (argv, lines)
            assert time.monotonic() - t < 120
    finally:
        for holder in holders:
            holder.kill()
            holder.communicate()  # waits and closes its pipes
        ns.close()
