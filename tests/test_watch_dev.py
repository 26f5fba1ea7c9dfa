"""``--all-netns --watch`` with ``dev NAME``: the name is resolved in each namespace.

Live (root): two private namespaces, each with a device ``sswd0`` at a different
ifindex (one has another device made first), and the command run from a third
namespace where ``sswd0`` has yet another index (the filter's syntax check resolves it
there first, as ``--all-netns`` listings do). In each of the two, a process holds a
listener bound to ``sswd0`` (SO_BINDTODEVICE) and one bound to no device. The events
are checked as properties: exactly the two bound listeners are reported new, then
closed, each in its namespace. Both backends.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

import netns

REASON = netns.live_reason()
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")
BOUND, UNBOUND = 7321, 7322
DEV = "sswd0"

HOLD = f"""
import socket, sys
socks = []
for port, dev in (({BOUND}, b"{DEV}"), ({UNBOUND}, None)):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if dev:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev)
    s.bind(("0.0.0.0", port))
    s.listen()
    socks.append(s)
print("ready", flush=True)
sys.stdin.read()
"""


def _veth(ns: netns.Netns, name: str) -> int:
    ns.run(["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"], check=True)
    shown = ns.run(["ip", "-o", "link", "show", name], check=True).stdout
    return int(shown.split(b":")[0])


def _read(fd: int, pending: bytes, events: list[dict[str, object]], until: object) -> bytes:
    deadline = time.monotonic() + 90  # every namespace's first snapshot (a busy host)
    while time.monotonic() < deadline and not until():  # type: ignore[operator]
        ready, _w, _x = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        events += [json.loads(x) for x in lines if x.strip()]
    return pending


@pytest.mark.live
@needs_root
def test_all_netns_watch_dev_resolved_per_namespace(backend: str) -> None:
    tag = f"{os.getpid()}-{backend[0]}"
    caller = netns.Netns(f"sockscope-wdev-{tag}-c")
    spaces = [netns.Netns(f"sockscope-wdev-{tag}-{i}") for i in range(2)]
    holders: list[subprocess.Popen[bytes]] = []
    proc = None
    try:
        _veth(spaces[1], "sswpad")
        for _ in range(3):
            _veth(caller, f"sswc{_}")
        indexes = [_veth(ns, DEV) for ns in (*spaces, caller)]
        assert len(set(indexes)) == 3  # the same name, three ifindexes
        inodes = {os.stat(ns.path).st_ino for ns in spaces}
        mine = ["(", "sport", "=", f":{BOUND}", "or", "sport", "=", f":{UNBOUND}", ")"]
        proc = subprocess.Popen(
            [
                *caller.enter(),
                *netns.sockscope_cmd(),
                "--all-netns",
                "-tl",
                "--watch=0.3",
                "--json-lines",
                *mine,
                "and",
                "dev",
                "=",
                DEV,
            ],
            env=netns.tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.5)
        assert proc.poll() is None
        for ns in spaces:
            h = subprocess.Popen(
                [*ns.enter(), sys.executable, "-c", HOLD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert h.stdout is not None and h.stdout.readline() == b"ready\n"
            holders.append(h)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        events: list[dict[str, object]] = []

        def keys(kind: str) -> list[tuple[object, object]]:
            return sorted(
                (ev["netns_inode"], ev["socket"]["local_port"])  # type: ignore[index]
                for ev in events
                if ev["event"] == kind and ev["netns_inode"] in inodes
            )

        expected = sorted((inode, BOUND) for inode in inodes)
        pending = _read(fd, b"", events, lambda: len(keys("new")) >= 2)
        for h in holders:
            assert h.stdin is not None
            h.stdin.close()
            h.wait(10)
        _read(fd, pending, events, lambda: len(keys("closed")) >= 2)
        time.sleep(0.7)  # two more snapshots: nothing else may come
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        events += [json.loads(x) for x in out.splitlines() if x.strip()]
        assert keys("new") == expected, (events, err)
        assert keys("closed") == expected, (events, err)
        for ev in events:
            if ev["netns_inode"] in inodes:
                assert ev["netns"]["inode"] == ev["netns_inode"]  # type: ignore[index]
    finally:
        for h in holders:
            if h.poll() is None:
                h.kill()
                h.wait()
            if h.stdout is not None:
                h.stdout.close()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        for ns in (*spaces, caller):
            ns.close()
