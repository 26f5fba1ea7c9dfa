"""``--sort``, ``--top``, ``--watch`` with ``--all-netns``.

Live (root): three private namespaces, each with a listener and a different number of
connections held by a process. ``--sort`` sorts each namespace's text block: the block
equals ss 7.1's output in that namespace (``nsenter``) put through the ``awk | sort -s``
pipeline of test_answers; with ``--json-lines`` the sockets of every namespace come in one
order. ``--watch`` watches every namespace at once: the expected events come from the
script (a connection opened and closed in each namespace), each line naming its namespace.
Other namespaces of the host (other test runs') are ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import netns

REASON = netns.live_reason()
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")
ORACLE = os.environ.get("SOCKSCOPE_ORACLE")
needs_oracle = pytest.mark.skipif(
    not (ORACLE and os.access(ORACLE, os.X_OK)),
    reason="set SOCKSCOPE_ORACLE to an upstream iproute2 7.1 ss to compare with it",
)
PORT = 7301
#: the test's sockets only (the host may hold many others, in other namespaces)
MINE = ["sport", "=", f":{PORT}", "or", "dport", "=", f":{PORT}"]

HOLD = """
import socket, sys
n = int(sys.argv[1])
l = socket.socket(); l.bind(("127.0.0.1", 7301)); l.listen()
c = [socket.create_connection(("127.0.0.1", 7301)) for _ in range(n)]
a = [l.accept()[0] for _ in range(n)]
for i, s in enumerate(c):
    s.send(b"x" * (10 * (i + 1)))   # Recv-Q differs per connection
print("ready", flush=True)
sys.stdin.readline()
"""


@contextlib.contextmanager
def held() -> Iterator[list[netns.Netns]]:
    """Three namespaces holding 1, 2 and 3 connections to a listener on PORT."""
    spaces = [netns.Netns(f"sockscope-answ-an{os.getpid()}-{i}") for i in range(3)]
    procs = []
    try:
        for n, ns in enumerate(spaces, 1):
            proc = subprocess.Popen(
                [*ns.enter(), sys.executable, "-c", HOLD, str(n)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            procs.append(proc)
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        yield spaces
    finally:
        for proc in procs:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
            proc.wait(10)
        for ns in spaces:
            ns.close()


def _sockscope(argv: list[str]) -> bytes:
    res = subprocess.run(
        [*netns.sockscope_cmd(), *argv], capture_output=True, env=netns.tool_env(), timeout=120
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def _blocks(out: bytes) -> dict[str, bytes]:
    """name -> the text under that namespace's ``# netns`` line."""
    blocks: dict[str, bytes] = {}
    for part in re.split(rb"^# netns ", out, flags=re.M)[1:]:
        head, _nl, body = part.partition(b"\n")
        m = re.search(rb" name=(\S+)", head)
        if m:
            blocks[m.group(1).decode()] = body
    return blocks


#: ss's body sorted by the local port, numerically, stable (as in test_answers.SORTS)
SORT_BY_LOCAL_PORT = (
    "awk '{n=split($4,a,\":\"); print a[n] \"\\t\" $0}' | sort -s -t '\t' -k1,1n | cut -f2-"
)


@pytest.mark.live
@needs_root
@needs_oracle
def test_sort_sorts_each_namespace_block_like_sorted_ss() -> None:
    with held() as spaces:
        out = _sockscope(["--all-netns", "-tan", "--sort", "local_port", *MINE])
        blocks = _blocks(out)
        for ns in spaces:
            ref = ns.run([str(ORACLE), "-tan", *MINE], check=True, env=netns.tool_env()).stdout
            head, _nl, body = ref.partition(b"\n")
            want = subprocess.run(
                ["bash", "-c", SORT_BY_LOCAL_PORT],
                input=body,
                capture_output=True,
                check=True,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            ).stdout
            assert blocks[ns.name] == head + b"\n" + want, ns.name
        top = _blocks(
            _sockscope(["--all-netns", "-tanH", "--sort", "-recv_q", "--top", "1", *MINE])
        )
        # --top keeps the first row of each namespace: the fullest receive queue there
        # (the n-th connection of namespace n has 10 * n bytes unread)
        for n, ns in enumerate(spaces, 1):
            rows = top[ns.name].splitlines()
            assert len(rows) == 1
            assert rows[0].split()[1] == str(10 * n).encode()


@pytest.mark.live
@needs_root
@needs_oracle
def test_sort_json_lines_orders_every_namespace_at_once() -> None:
    with held() as spaces:
        out = _sockscope(["--all-netns", "-tan", "--sort", "-recv_q", "--json-lines", *MINE])
        objs = [json.loads(line) for line in out.splitlines()]
        queues = [o["recv_q"] for o in objs]
        assert queues == sorted(queues, reverse=True)
        for ns in spaces:
            mine = [
                o
                for o in objs
                if ns.name in (o["netns"].get("name"), *(o["netns"].get("names") or ()))
            ]
            ref = ns.run(
                [str(ORACLE), "-tanH", *MINE], check=True, env=netns.tool_env()
            ).stdout.splitlines()
            assert len(mine) == len(ref) > 0
        top = _sockscope(
            ["--all-netns", "-tan", "--sort", "-recv_q", "--top", "2", "--json-lines", *MINE]
        )
        assert [json.loads(line)["recv_q"] for line in top.splitlines()] == queues[:2]


CONNECT = (
    "import socket,time; l=socket.socket(); l.bind(('127.0.0.1',7301)); l.listen();"
    " c=socket.create_connection(('127.0.0.1',7301)); a,_=l.accept();"
    " time.sleep(float(__import__('sys').argv[1])); c.close(); a.close(); l.close()"
)


def _watched(events: list[tuple[str, str]]) -> None:
    # the listener, the client and the server end: new, then closed (by their
    # destruction events, as last listed); the client's TIME-WAIT remnant is silent
    opened = [("new", "LISTEN"), ("new", "ESTAB"), ("new", "ESTAB")]
    closed = [("closed", "LISTEN"), ("closed", "ESTAB"), ("closed", "ESTAB")]
    assert sorted(events) == sorted([*opened, *closed])


@pytest.mark.live
@needs_root
def test_watchers_of_several_namespaces() -> None:
    """The library's multi-namespace watcher, driven step by step: a Watcher made inside
    each namespace, the changes marked with their namespace."""
    import sockscope
    from sockscope.ops import watch
    from sockscope.ops.namespaces import current_key, discover
    from sockscope.query.filter import FilterContext, parse_filter

    spaces = [netns.Netns(f"sockscope-answ-aw{os.getpid()}-{i}") for i in range(3)]
    runs = []
    home = current_key()
    try:
        names = {ns.name for ns in spaces}
        mine = [s for s in discover().namespaces if set(s.names) & names]
        sel = sockscope.Query(tables={"tcp"}, states={"all"}).selection()
        flt = parse_filter(MINE, FilterContext(families=sel.families, dbs=sel.dbs))
        assert flt is not None
        watchers = watch.Watchers.each(
            mine, lambda: watch.Watcher(sel, False, flt.matches, flt.bytecode())
        )
        assert current_key() == home
        try:
            watchers.baseline()
            runs = [
                subprocess.Popen([*ns.enter(), sys.executable, "-c", CONNECT, "2"]) for ns in spaces
            ]
            time.sleep(1.0)
            changes = watchers.step()  # the connections are open
            for r in runs:
                assert r.wait(30) == 0
            time.sleep(0.3)
            changes += watchers.destroyed() + watchers.step()
        finally:
            watchers.close()
        assert current_key() == home
        for space in mine:
            _watched(
                [
                    (c.kind, c.socket.state_name)
                    for c in changes
                    if c.space is space and c.netns == space.inode
                ]
            )
    finally:
        for r in runs:
            if r.poll() is None:
                r.kill()
        for ns in spaces:
            ns.close()


@pytest.mark.live
@needs_root
def test_watch_every_namespace_lines() -> None:
    """The command: every line names its namespace after the kind. (How soon the first
    snapshot of every namespace is taken depends on the host: the kernel's TCP hash is
    shared by all namespaces, so each namespace's dump walks every socket of the host.
    The lines checked are those of the destruction events, which need no snapshot.)"""
    spaces = [netns.Netns(f"sockscope-answ-al{os.getpid()}-{i}") for i in range(3)]
    proc = None
    try:
        inodes = {os.stat(ns.path).st_ino: ns for ns in spaces}
        proc = subprocess.Popen(
            [*netns.sockscope_cmd(), "--all-netns", "-tan", "--watch=0.3", *MINE],
            env=netns.tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # subscribed (the event sockets are opened before the baseline)
        runs = [
            subprocess.Popen([*ns.enter(), sys.executable, "-c", CONNECT, "0.2"]) for ns in spaces
        ]
        for r in runs:
            assert r.wait(30) == 0
        seen: dict[int, list[str]] = {i: [] for i in inodes}
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        pending = b""
        deadline = time.monotonic() + 90  # the first snapshots of every namespace
        while time.monotonic() < deadline and any(k.count("closed") < 3 for k in seen.values()):
            ready, _w, _x = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                fields = line.decode().split()
                m = re.fullmatch(r"net:\[(\d+)\]", fields[2])
                assert m, line  # every line names its namespace after the kind
                if int(m.group(1)) in seen:
                    seen[int(m.group(1))].append(fields[1])
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        for ns in spaces:
            ns.close()
    for inode, kinds in seen.items():
        assert kinds.count("closed") == 3, (inodes[inode].name, kinds)


def test_metrics_with_all_netns_labels_each_namespace() -> None:
    """--all-netns --metrics: one exposition whose sockscope_sockets carry the namespace."""
    res = subprocess.run(
        [*netns.sockscope_cmd(), "--all-netns", "-ta", "--metrics"],
        capture_output=True,
        env=netns.tool_env(),
    )
    assert res.returncode == 0, res.stderr
    assert re.search(rb'^sockscope_sockets\{[^}]*netns="\d+"', res.stdout, re.M)


@pytest.mark.live
@needs_root
def test_top_view_screens_every_namespace() -> None:
    """The lines of the --top-view screen with --all-netns: groups keyed by namespace,
    and the busiest connections with a NETNS column."""
    import sockscope
    from sockscope.cli.answers import Answers
    from sockscope.cli.top import TopView
    from sockscope.options import Options
    from sockscope.query.filter import FilterContext, parse_filter

    with held() as spaces:
        sel = sockscope.Query(tables={"tcp"}, states={"all"}).selection()
        flt = parse_filter(MINE, FilterContext(families=sel.families, dbs=sel.dbs))
        answers = Answers()
        answers.count_by = ["netns", "state"]
        view = TopView(answers, sel, Options(), flt, {}, print, 1.0, all_netns=True)
        lines = view.lines()
        for n, ns in enumerate(spaces, 1):
            # n client ends and n server ends established, one listener
            assert any(line.split()[:3] == [str(2 * n), ns.name, "ESTAB"] for line in lines)
            assert any(line.split()[:3] == ["1", ns.name, "LISTEN"] for line in lines)
        view.close()
        busiest = TopView(Answers(), sel, Options(), flt, {}, print, 1.0, all_netns=True)
        try:
            assert busiest.lines()[0].split()[3] == "NETNS"
        finally:
            busiest.close()


THREAD_HOLDER = r"""
import ctypes, os, socket, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
ready = threading.Event()
def inner():
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET, this thread only
        raise OSError(ctypes.get_errno(), "unshare")
    global tid, held
    tid = threading.get_native_id()
    t = socket.socket(); t.bind(("0.0.0.0", 7401)); t.listen()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 7402))
    held = (t, u)
    ready.set()
    threading.Event().wait()
t = threading.Thread(target=inner, daemon=True); t.start(); ready.wait()
print(os.getpid(), tid, flush=True)
sys.stdin.readline()
"""


@pytest.mark.live
@needs_root
def test_thread_only_namespace_is_found() -> None:
    """A thread that unshared its network namespace (its process stays in the caller's):
    namespaces() finds it through /proc/PID/task/TID/ns/net, --all-netns lists it, and
    its block is what ss 7.1 prints inside it."""
    from sockscope.ops.namespaces import discover

    proc = subprocess.Popen(
        [sys.executable, "-c", THREAD_HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        pid, tid = map(int, proc.stdout.readline().split())
        inode = os.stat(f"/proc/{pid}/task/{tid}/ns/net").st_ino
        assert inode != os.stat(f"/proc/{pid}/ns/net").st_ino
        found = [ns for ns in discover().namespaces if ns.inode == inode]
        assert len(found) == 1
        space = found[0]
        assert (space.pids, space.threads) == ((), ((pid, tid),))
        assert space.header() == f"# netns net:[{inode}] pid=none tid={tid}"
        assert space.to_dict()["tids"] == [tid]
        assert all(ns.inode != inode for ns in discover(threads_too=False).namespaces)
        out = _sockscope(["--all-netns", "-tuan"])
        head = f"# netns net:[{inode}] pid=none tid={tid}\n".encode()
        assert head in out
        block = out.split(head, 1)[1].split(b"\n# netns ", 1)[0]
        if ORACLE:
            ref = subprocess.run(
                ["nsenter", f"--net=/proc/{pid}/task/{tid}/ns/net", ORACLE, "-tuan"],
                capture_output=True,
                env=netns.tool_env(),
                check=True,
            ).stdout
            assert block.rstrip(b"\n") == ref.rstrip(b"\n")
        assert b":7401" in block and b":7402" in block
    finally:
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        proc.wait(10)
