"""``--listen`` scraped by a real Prometheus server, in a private namespace (live, root).

In a namespace made for the test (``netns.Netns``): the socket holder (``netns.Holder``:
five TCP listeners on ports 6001-6006), ``sockscope -tl --listen 127.0.0.1:0 FILTER``
(the port is read from its start message) and Debian's ``prometheus`` (a temporary
``--storage.tsdb.path``, ``--web.listen-address`` on the namespace's loopback at a random
port, a generated config scraping sockscope every second), both run with ``nsenter``.
Prometheus's HTTP API (``/api/v1/targets``, ``/api/v1/query``) is read from inside the
namespace until the target is up and the listener count it stored equals the count by
construction (5, checked against ss's own ``-ltnH`` listing of the same filter); then two
more listeners are opened and the stored value must follow (a fresh collection per
scrape). Everything is stopped and the namespace deleted in teardown.

Without root the test is skipped; without ``prometheus`` it is skipped too, except in CI
(``CI=true``), where .ci/run installs it and its absence fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

import netns

PROMETHEUS = shutil.which("prometheus")
LIVE_REASON = netns.live_reason()
#: the holder's TCP listeners (tests/netns.py: 6001, 6002, 6003, 6004, 6006)
FILTER = ["sport", ">=", ":6000", "and", "sport", "<=", ":6299"]
HELD_LISTENERS = 5
#: fetch a URL from inside the namespace (the test process stays in the host's)
FETCH = (
    "import sys, urllib.request\n"
    "with urllib.request.urlopen(sys.argv[1], timeout=5) as r:\n"
    "    sys.stdout.buffer.write(r.read())\n"
)
#: open N TCP listeners on 127.0.0.1 from port P, print "ready", hold them until stdin closes
LISTENERS = (
    "import socket, sys\n"
    "n, p = int(sys.argv[1]), int(sys.argv[2])\n"
    "held = []\n"
    "for i in range(n):\n"
    "    s = socket.socket()\n"
    "    s.bind(('127.0.0.1', p + i))\n"
    "    s.listen(8)\n"
    "    held.append(s)\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


def _need_prometheus() -> str:
    if LIVE_REASON is not None:
        pytest.skip(LIVE_REASON)
    if PROMETHEUS is None:
        why = "prometheus is not installed (Debian package prometheus; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {why}")
        pytest.skip(why)
    return PROMETHEUS


class Live:
    """The namespace and the processes of the test, stopped in :meth:`close`."""

    def __init__(self) -> None:
        self.ns = netns.Netns(f"sockscope-serve-{os.getpid()}")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="sockscope-prom-"))
        self.holder: netns.Holder | None = None

    def start(self, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([*self.ns.enter(), *argv], env=netns.tool_env(), **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc  # type: ignore[no-any-return]

    def fetch(self, url: str) -> bytes | None:
        out = self.ns.run([sys.executable, "-c", FETCH, url], timeout=30)
        return out.stdout if out.returncode == 0 else None

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        if self.holder is not None:
            self.holder.close()
        self.ns.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def live():  # type: ignore[no-untyped-def]
    _need_prometheus()
    env = Live()
    try:
        env.holder = netns.Holder(env.ns)
        yield env
    finally:
        env.close()


def _query(live: Live, api: str, expr: str) -> float | None:
    from urllib.parse import quote

    body = live.fetch(f"{api}/api/v1/query?query={quote(expr)}")
    if body is None:
        return None
    result = json.loads(body)["data"]["result"]
    return float(result[0]["value"][1]) if len(result) == 1 else None


def _wait(what: str, probe: object, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()  # type: ignore[operator]
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.mark.live
def test_prometheus_scrapes_listen(live: Live) -> None:
    path, _is_71 = netns.oracle()
    ss_rows = live.ns.run([path, "-ltnH", *FILTER], check=True, env=netns.tool_env()).stdout
    assert len(ss_rows.splitlines()) == HELD_LISTENERS  # by construction, and ss agrees

    server = live.start(
        [*netns.sockscope_cmd(), "-tl", "--listen", "127.0.0.1:0", "--min-interval", "0.5",
         *FILTER],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert server.stderr is not None
    first = server.stderr.readline().decode()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", first)
    assert m is not None, first
    target = f"127.0.0.1:{m.group(1)}"

    web = f"127.0.0.1:{random.randint(20000, 29999)}"  # a private namespace: nothing else binds
    config = live.tmp / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: sockscope\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    log = (live.tmp / "prometheus.log").open("wb")
    live.start(
        [_need_prometheus(), f"--config.file={config}", f"--storage.tsdb.path={live.tmp / 'data'}",
         f"--web.listen-address={web}", "--log.level=warn"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=live.tmp,
    )  # fmt: skip
    log.close()
    api = f"http://{web}"

    def target_up() -> bool:
        body = live.fetch(f"{api}/api/v1/targets")
        if body is None:
            return False
        active = json.loads(body)["data"]["activeTargets"]
        return any(
            t["scrapeUrl"] == f"http://{target}/metrics" and t["health"] == "up" for t in active
        )

    try:
        _wait("the sockscope target to be up", target_up)
        listen = 'sockscope_sockets{job="sockscope",netid="tcp",state="LISTEN"}'
        node = 'node_tcp_connection_states{job="sockscope",state="listen"}'
        _wait(f"{listen} == {HELD_LISTENERS}", lambda: _query(live, api, listen) == HELD_LISTENERS)
        assert _query(live, api, node) == HELD_LISTENERS
        assert _query(live, api, 'up{job="sockscope"}') == 1
        # two more listeners in the filter's range: the next scrapes must see them
        more = live.start(
            [sys.executable, "-c", LISTENERS, "2", "6201"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert more.stdout is not None and more.stdout.readline() == b"ready\n"
        _wait(f"{listen} == 7", lambda: _query(live, api, listen) == HELD_LISTENERS + 2)
        assert _query(live, api, node) == HELD_LISTENERS + 2
        backlog = 'sockscope_listen_backlog{job="sockscope",local_port="6201"}'
        assert _query(live, api, backlog) == 8
    except AssertionError:
        with contextlib.suppress(OSError):
            sys.stderr.write((live.tmp / "prometheus.log").read_text()[-3000:])
        raise
    # the exporter ends cleanly on SIGTERM while Prometheus still scrapes it
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0


@pytest.mark.live
def test_dash_n_serves_the_namespace_on_the_callers_address() -> None:
    """``-N NAME --listen``: the dumps are NAME's (its 3 listeners, not the exporter's own
    socket), and the listening socket is in the namespace the command started in: the
    caller reaches it on its loopback, while inside NAME nothing listens on that port."""
    if LIVE_REASON is not None:
        pytest.skip(LIVE_REASON)
    env = Live()
    try:
        more = env.start(
            [sys.executable, "-c", LISTENERS, "3", "6201"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert more.stdout is not None and more.stdout.readline() == b"ready\n"
        server = subprocess.Popen(
            [*netns.sockscope_cmd(), "-N", env.ns.name, "-tl", "--listen", "127.0.0.1:0"],
            env=netns.tool_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        env.procs.append(server)
        assert server.stderr is not None
        m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", server.stderr.readline().decode())
        assert m is not None
        port = int(m.group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            body = r.read()
        # NAME's 3 listeners and nothing else: the exporter's socket is not in NAME
        listen = re.findall(
            rb'^sockscope_sockets\{netid="tcp",[^}]*state="LISTEN"\} (\d+)$', body, re.M
        )
        assert listen == [b"3"], body
        assert env.fetch(f"http://127.0.0.1:{port}/metrics") is None
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        env.close()


@pytest.mark.live
def test_all_netns_listen_labels_every_namespace() -> None:
    """``--all-netns --listen``: each scrape walks every namespace; the test namespace's
    3 listeners appear under its name, served on the caller's loopback."""
    if LIVE_REASON is not None:
        pytest.skip(LIVE_REASON)
    env = Live()
    try:
        more = env.start(
            [sys.executable, "-c", LISTENERS, "3", "6201"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert more.stdout is not None and more.stdout.readline() == b"ready\n"
        server = subprocess.Popen(
            [*netns.sockscope_cmd(), "--all-netns", "-tl", "--listen", "127.0.0.1:0"],
            env=netns.tool_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        env.procs.append(server)
        assert server.stderr is not None
        m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", server.stderr.readline().decode())
        assert m is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}/metrics", timeout=60) as r:
            body = r.read()
        name = re.escape(env.ns.name.encode())
        pattern = rb'^sockscope_sockets\{netid="tcp",netns="\d+",netns_name="' + name
        pattern += rb'",state="LISTEN"\} (\d+)$'
        assert re.findall(pattern, body, re.M) == [b"3"], body[-2000:]
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        env.close()
