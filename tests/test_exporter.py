"""``--listen``: the HTTP exporter (``sockscope.ops.exporter``) and its command line.

* In process, over a real loopback socket with a counting collection: status codes
  (200, 404, 500, 501), the 0.0.4 content type, HEAD, gzip (and ``gzip;q=0``), the
  minimum interval (collections counted, concurrent scrapes share one), a failed
  collection served as a 500 while the server keeps running, ``stop()`` finishing the
  response in flight, closing idle keep-alive connections and releasing the port.
* The command (a subprocess on the host, no root needed: sock_diag dumps of one's own
  namespace are unprivileged): the start message, ``/metrics`` equal to ``--metrics``'s
  structure, SIGTERM -> status 0 and the port released, SIGINT -> death by SIGINT, and
  the errors (bad address, port in use, refused combinations, unknown keys) as one
  line with ss's statuses (255 for the command line, 1 for a failed bind), no traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import http.client
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

import netns
from sockscope.errors import ArgumentError, SockscopeError
from sockscope.ops import exporter
from sockscope.render.prom import CONTENT_TYPE

# ---------------------------------------------------------------- address words


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (":9977", (socket.AF_INET, "127.0.0.1", 9977)),
        ("0.0.0.0:80", (socket.AF_INET, "0.0.0.0", 80)),
        ("[::1]:9977", (socket.AF_INET6, "::1", 9977)),
        ("[::]:0", (socket.AF_INET6, "::", 0)),
        ("127.0.0.1:65535", (socket.AF_INET, "127.0.0.1", 65535)),
    ],
)
def test_parse_listen(word: str, expected: tuple[int, str, int]) -> None:
    assert exporter.parse_listen(word) == expected


@pytest.mark.parametrize(
    "word", ["9977", ":", "127.0.0.1:", ":65536", ":-1", "::1:80", "[zz]:80", ":９", "[::1]"]
)
def test_parse_listen_bad(word: str) -> None:
    with pytest.raises(ArgumentError, match="--listen"):
        exporter.parse_listen(word)


def test_parse_listen_unresolvable() -> None:
    with pytest.raises(SockscopeError, match="--listen") as e:
        exporter.parse_listen("no-such-host.invalid:9977")
    assert not isinstance(e.value, ArgumentError)  # a failure (1), not a bad word (255)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("gzip", True),
        ("identity, gzip", True),
        ("gzip;q=0.5", True),
        ("GZIP ; q=1", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0", False),
        ("deflate, br", False),
        ("", False),
        (None, False),
    ],
)
def test_accepts_gzip(header: str | None, ok: bool) -> None:
    assert exporter.accepts_gzip(header) is ok


# ---------------------------------------------------------------- the collector


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_min_interval_counts_collections() -> None:
    clock = Clock()
    bodies = iter([b"a 1\n", b"a 2\n", b"a 3\n"])
    col = exporter.Collector(lambda: next(bodies), 1.0, clock=clock)
    assert col.result().body == b"a 1\n"
    clock.now += 0.5
    assert col.result().body == b"a 1\n"  # within the interval: shared
    assert col.collections == 1
    clock.now += 0.6
    assert col.result().body == b"a 2\n"
    assert col.collections == 2
    zero = exporter.Collector(lambda: next(bodies), 0.0, clock=clock)
    zero.result()
    assert zero.collections == 1
    with pytest.raises(ValueError):
        exporter.Collector(lambda: b"", -1)


def test_failed_collection() -> None:
    clock = Clock()
    logged: list[str] = []
    calls = iter([SockscopeError("sockscope: no netlink"), OSError(13, "Permission denied")])

    def collect() -> bytes:
        raise next(calls)

    col = exporter.Collector(collect, 1.0, logged.append, clock)
    result = col.result()
    assert (result.body, result.error) == (None, "no netlink")
    assert col.result() is result  # a failure is shared for the interval too
    clock.now += 2
    assert col.result().error == "Permission denied"
    assert logged == [
        "sockscope: --listen: collecting the metrics failed: no netlink",
        "sockscope: --listen: collecting the metrics failed: Permission denied",
    ]


def test_concurrent_scrapes_share_one_collection() -> None:
    started = threading.Event()

    def slow() -> bytes:
        started.set()
        time.sleep(0.3)
        return b"x 1\n"

    col = exporter.Collector(slow, 5.0)
    results: list[bytes | None] = []
    threads = [threading.Thread(target=lambda: results.append(col.result().body)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [b"x 1\n"] * 8
    assert col.collections == 1


# ---------------------------------------------------------------- the server, in process


class Served:
    """An exporter on 127.0.0.1 (a free port) serving in a thread."""

    def __init__(self, collect: object, min_interval: float = 0.0) -> None:
        self.logged: list[str] = []
        self.collector = exporter.Collector(collect, min_interval, self.logged.append)  # type: ignore[arg-type]
        self.server = exporter.Exporter(socket.AF_INET, "127.0.0.1", 0, self.collector)
        self.port = int(self.server.url.rsplit(":", 1)[1].split("/")[0])
        self.thread = threading.Thread(target=self.server.serve)
        self.thread.start()

    def request(
        self, path: str, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return resp, resp.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


@contextlib.contextmanager
def served(collect: object, min_interval: float = 0.0) -> Iterator[Served]:
    s = Served(collect, min_interval)
    try:
        yield s
    finally:
        s.stop()


def _counting(body: bytes = b"# HELP m M.\n# TYPE m gauge\nm 1\n") -> tuple[list[int], object]:
    calls = [0]

    def collect() -> bytes:
        calls[0] += 1
        return body

    return calls, collect


def test_metrics_get_and_head() -> None:
    body = b"# HELP m M.\n# TYPE m gauge\n" + b"".join(
        b'm{i="%d"} %d\n' % (i, i) for i in range(500)
    )
    _calls, collect = _counting(body)
    with served(collect, 10) as s:
        resp, data = s.request("/metrics")
        assert resp.status == 200
        assert resp.getheader("Content-Type") == CONTENT_TYPE
        assert resp.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
        assert resp.getheader("Content-Encoding") is None
        assert data == body
        assert int(resp.getheader("Content-Length") or -1) == len(body)
        head, empty = s.request("/metrics", "HEAD")
        assert head.status == 200 and empty == b""
        assert head.getheader("Content-Length") == str(len(body))
        assert head.getheader("Content-Type") == CONTENT_TYPE
        zipped, raw = s.request("/metrics", headers={"Accept-Encoding": "gzip"})
        assert zipped.getheader("Content-Encoding") == "gzip"
        assert len(raw) < len(body) / 2
        assert gzip.decompress(raw) == body
        assert zipped.getheader("Vary") == "Accept-Encoding"
        plain, data = s.request("/metrics", headers={"Accept-Encoding": "gzip;q=0"})
        assert plain.getheader("Content-Encoding") is None and data == body
        query, data = s.request("/metrics?name[]=m")  # what federation-style scrapers add
        assert query.status == 200 and data == body


def test_index_404_and_methods() -> None:
    _calls, collect = _counting()
    with served(collect) as s:
        resp, page = s.request("/")
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "text/html; charset=utf-8"
        assert b'<a href="/metrics">' in page
        for path in ("/metric", "/metrics/", "/favicon.ico", "/../etc/passwd"):
            resp, _data = s.request(path)
            assert resp.status == 404, path
        resp, _data = s.request("/metrics", "POST")
        assert resp.status == 501
        assert _calls[0] == 0  # none of these collected


def test_min_interval_over_http() -> None:
    calls, collect = _counting()
    with served(collect, min_interval=2.0) as s:  # 5 loopback requests take far less
        for _ in range(5):
            assert s.request("/metrics")[0].status == 200
        assert calls[0] == 1
        time.sleep(2.1)
        assert s.request("/metrics")[0].status == 200
        assert calls[0] == 2
    calls, collect = _counting()
    with served(collect, min_interval=0) as s:
        for _ in range(3):
            s.request("/metrics")
        assert calls[0] == 3


def test_collection_error_is_500_and_server_lives() -> None:
    state = {"fail": True}

    def collect() -> bytes:
        if state["fail"]:
            raise SockscopeError("sockscope: Cannot open netlink socket: Permission denied")
        return b"m 1\n"

    with served(collect) as s:
        resp, data = s.request("/metrics")
        assert resp.status == 500
        assert resp.getheader("Content-Type") == "text/plain; charset=utf-8"
        assert b"Cannot open netlink socket: Permission denied" in data
        assert s.logged == [
            "sockscope: --listen: collecting the metrics failed: "
            "Cannot open netlink socket: Permission denied"
        ]
        state["fail"] = False
        resp, data = s.request("/metrics")
        assert (resp.status, data) == (200, b"m 1\n")


def test_stop_finishes_inflight_and_closes_idle() -> None:
    entered = threading.Event()

    def slow() -> bytes:
        entered.set()
        time.sleep(0.5)
        return b"m 1\n"

    s = Served(slow)
    # an idle keep-alive connection (a scraper between two scrapes)
    idle = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    idle.request("GET", "/")
    idle.getresponse().read()
    got: list[tuple[int, bytes, str | None]] = []

    def scrape() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        got.append((resp.status, resp.read(), resp.getheader("Connection")))
        conn.close()

    t = threading.Thread(target=scrape)
    t.start()
    assert entered.wait(10)
    begun = time.monotonic()
    s.stop()  # returns once the in-flight response is written and the idle one closed
    took = time.monotonic() - begun
    t.join(10)
    assert got == [(200, b"m 1\n", "close")]
    assert took < 5  # not the 120 s keep-alive timeout
    with pytest.raises(OSError):  # the port is released: nothing listens there
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
    with pytest.raises((http.client.HTTPException, OSError)):
        idle.request("GET", "/")
        idle.getresponse().read()
    idle.close()
    s.server.stop()  # after serve() returned: harmless


def test_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            SockscopeError, match=f"--listen 127.0.0.1:{port}: Address already in use"
        ):
            exporter.Exporter(socket.AF_INET, "127.0.0.1", port, exporter.Collector(lambda: b""))


# ---------------------------------------------------------------- the command

URL = re.compile(rb"serving the metrics on http://(\S+):(\d+)/metrics")


class Command:
    """``sockscope ARGS --listen 127.0.0.1:0`` as a subprocess, its port read from stderr."""

    def __init__(self, *args: str, listen: str = "127.0.0.1:0") -> None:
        self.proc = subprocess.Popen(
            [*netns.sockscope_cmd(), *args, "--listen", listen],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=netns.tool_env(),
        )
        assert self.proc.stderr is not None
        self.first = self.proc.stderr.readline()
        m = URL.search(self.first)
        if m is None:
            self.proc.kill()
            self.proc.communicate()  # reaped, its pipes closed (no ResourceWarning later)
            raise AssertionError(f"no start message: {self.first!r}")
        self.host, self.port = m.group(1).decode().strip("[]"), int(m.group(2))

    def get(self, path: str = "/metrics") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def end(self, signum: int = signal.SIGTERM, tid: int | None = None) -> tuple[int, bytes, bytes]:
        """Send ``signum`` (to thread ``tid`` of the process when given) and wait for the
        exit; a server still there after 30 s is killed, its pipes closed, and the test
        fails with where its threads waited."""
        if tid is None:
            self.proc.send_signal(signum)
        else:
            _tgkill(self.proc.pid, tid, signum)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            waits = _waits(self.proc.pid)
            self.kill()
            raise AssertionError(
                f"no exit 30 s after signal {signum}; threads in {waits}"
            ) from None
        return self.proc.returncode, out, self.first + err

    def threads(self) -> list[int]:
        """The ids of the process's threads other than the main one."""
        tasks = (int(t) for t in os.listdir(f"/proc/{self.proc.pid}/task"))
        return sorted(t for t in tasks if t != self.proc.pid)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def _tgkill(pid: int, tid: int, signum: int) -> None:
    """A signal to one thread of another process (no os.tgkill; glibc >= 2.30 has it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "tgkill"):
        pytest.skip("no tgkill() in this C library")
    if libc.tgkill(pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _waits(pid: int) -> dict[int, str]:
    """What each thread of ``pid`` waits in (the kernel function), for a failure message."""
    found = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/wchan") as f:
                found[int(tid)] = f.read()
    return found


def _families(text: bytes) -> list[str]:
    return re.findall(r"^# TYPE (\S+) ", text.decode(), re.M)


def test_cli_serves_and_sigterm_exits_0() -> None:
    cmd = Command("-ta", "--count-by", "state", "--min-interval", "0")
    try:
        status, body = cmd.get()
        assert status == 200
        families = _families(body)
        assert "node_sockstat_TCP_inuse" in families
        assert [f for f in families if not f.startswith("node_sockstat_")] == [
            "node_tcp_connection_states",
            "sockscope_group_sockets",
            "sockscope_listen_backlog",
            "sockscope_listen_queue",
            "sockscope_series_folded",
            "sockscope_sockets",
        ]
        # our own listener is in the selection: a fresh collection sees it
        line = f'sockscope_listen_backlog{{local_address="127.0.0.1",local_port="{cmd.port}",'
        assert line.encode() in body
        assert cmd.get("/")[0] == 200
        assert cmd.get("/nope")[0] == 404
    finally:
        status, out, err = cmd.end(signal.SIGTERM)
    assert status == 0, err
    assert out == b""
    assert (
        err == f"sockscope: serving the metrics on http://127.0.0.1:{cmd.port}/metrics\n".encode()
    )
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cmd.port), timeout=2).close()


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, -signal.SIGINT)]
)
def test_cli_signal_taken_by_another_thread(signum: int, status: int) -> None:
    """The kernel may hand a process's SIGTERM to any thread that does not block it (the
    main thread blocks every signal while it creates a connection's thread): Python's
    C handler then runs in that thread, and the main thread, waiting in epoll_wait for
    the next connection, never ran the shutdown (no exit before the fix, wchan
    do_epoll_wait). Delivered here deterministically, to the thread of an idle
    keep-alive connection."""
    cmd = Command("-t")
    idle = http.client.HTTPConnection(cmd.host, cmd.port, timeout=20)
    try:
        idle.request("GET", "/")
        idle.getresponse().read()
        (handler,) = cmd.threads()
        begun = time.monotonic()
        got, _out, err = cmd.end(signum, tid=handler)
        took = time.monotonic() - begun
    finally:
        idle.close()
        cmd.kill()
    assert got == status, err
    assert b"Traceback" not in err
    assert took < 10  # the idle connection is closed at once, not after its 120 s


def test_serve_wakes_on_a_signal_of_another_thread() -> None:
    """In process, serve() in the main thread: a signal whose C handler runs in another
    thread wakes it (signal.set_wakeup_fd): SIGUSR1's handler does not stop the server
    (it still answers), SIGTERM's calls stop() and serve() returns. Before the fix the
    watchdog below had to end it."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    _calls, collect = _counting()
    server = exporter.Exporter(socket.AF_INET, "127.0.0.1", 0, exporter.Collector(collect))
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    seen: list[int] = []
    answers: list[int] = []
    rescued = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        seen.append(signum)
        if signum == signal.SIGTERM:
            server.stop(signum)

    def other_thread() -> None:
        try:
            with contextlib.closing(
                http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            ) as conn:
                for signum in (None, signal.SIGUSR1, signal.SIGTERM):
                    if signum is not None:
                        time.sleep(0.2)  # the main thread is back in its wait
                        signal.pthread_kill(threading.get_ident(), signum)  # taken here
                    if signum != signal.SIGTERM:
                        time.sleep(0.2)
                        conn.request("GET", "/")
                        resp = conn.getresponse()
                        resp.read()
                        answers.append(resp.status)
        finally:
            if not done.wait(5):
                rescued.set()
                server.stop()  # the watchdog: serve() missed the signal (or this failed)

    done = threading.Event()
    before = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGUSR1)}
    wakeup_before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup_before)
    t = threading.Thread(target=other_thread)
    try:
        t.start()
        server.serve()
        done.set()
        t.join(10)
    finally:
        for s, h in before.items():
            signal.signal(s, h)
    assert not rescued.is_set(), "serve() did not wake up on SIGTERM taken by another thread"
    assert answers == [200, 200]
    assert seen == [signal.SIGUSR1, signal.SIGTERM]
    assert server.signum == signal.SIGTERM
    assert signal.set_wakeup_fd(wakeup_before) == wakeup_before  # put back as it was


def test_cli_survives_clients_that_leave() -> None:
    """Scrapers that close (FIN) or reset (RST) before the response is written: no
    death by SIGPIPE (the command runs with SIGPIPE's default action, as ss does), no
    traceback, no message; the next scrape is served."""
    cmd = Command("-a", "--min-interval", "0")
    try:
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", cmd.port), timeout=10)
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            s.close()
        time.sleep(1)
        assert cmd.proc.poll() is None
        assert cmd.get()[0] == 200
    finally:
        status, _out, err = cmd.end()
    assert status == 0
    assert err.count(b"\n") == 1, err  # the start line only


def test_cli_sigint_dies_by_sigint() -> None:
    cmd = Command("-t")
    assert cmd.get()[0] == 200
    status, _out, err = cmd.end(signal.SIGINT)
    assert status == -signal.SIGINT, err
    assert b"Traceback" not in err


def test_cli_ipv6_loopback() -> None:
    if not socket.has_ipv6 or not os.path.exists("/proc/net/if_inet6"):
        pytest.skip("no IPv6 on this host")
    cmd = Command("-t", listen="[::1]:0")
    try:
        assert cmd.host == "::1"
        assert cmd.get()[0] == 200
    finally:
        assert cmd.end()[0] == 0


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*netns.sockscope_cmd(), *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=netns.tool_env(),
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--listen", "9977"], 255, 'sockscope: invalid --listen "9977" (ADDRESS:PORT or :PORT)'),
        (["--listen", ":99999"], 255, 'sockscope: invalid --listen ":99999" (ADDRESS:PORT or :PORT)'),
        (["--listen", "::1:80"], 255, 'sockscope: invalid --listen "::1:80" (write IPv6 as [ADDRESS]:PORT)'),
        (["--listen", ":0", "--textfile", "/tmp"], 255, "sockscope: --listen and --textfile cannot be used together"),
        (["--listen", ":0", "--watch"], 255, "sockscope: --listen and --watch cannot be used together"),
        (["--listen", ":0", "-K"], 255, "sockscope: --listen and -K cannot be used together"),
        (["--listen", ":0", "--count-by", "nope"], 255, 'sockscope: unknown key "nope"'),
        (["--listen", ":0", "--min-interval", "-1"], 255, 'sockscope: invalid --min-interval "-1"'),
        (["--listen", ":0", "--min-interval", "nan"], 255, 'sockscope: invalid --min-interval "nan"'),
        (["--listen", "192.0.2.1:9977"], 1, "sockscope: --listen 192.0.2.1:9977: Cannot assign requested address"),
        (["--listen"], 255, "option '--listen' requires an argument"),
        (["--listen", ":0", "--metrics=otlp-json"], 255, "sockscope: --listen serves the Prometheus format only"),
    ],
)  # fmt: skip
def test_cli_errors(args: list[str], status: int, message: str) -> None:
    out = _run("-t", *args)
    assert out.returncode == status, out.stderr
    assert message.encode() in out.stderr
    assert b"Traceback" not in out.stderr
    assert out.stdout == b""


def test_cli_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _run("-t", "--listen", f"127.0.0.1:{port}")
    assert out.returncode == 1
    assert (
        out.stderr
        == (
            f"sockscope: --listen 127.0.0.1:{port}: Address already in use "
            "(another program listens on that port)\n"
        ).encode()
    )


def test_help_lists_listen() -> None:
    out = _run("-h")
    assert b"--listen=ADDR:PORT" in out.stdout
    assert b"--min-interval=SECONDS" in out.stdout
    assert sys.executable  # the launcher used is this interpreter's
