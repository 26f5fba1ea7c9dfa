"""``--listen ADDR:PORT``: a small HTTP exporter of the ``--metrics`` text (stdlib only).

* :func:`parse_listen` reads ``ADDR:PORT`` (``:PORT`` is the loopback ``127.0.0.1``,
  ``[ADDR]:PORT`` an IPv6 address, a name is resolved); the port is required.
* :class:`Collector` runs the collection at most once per ``min_interval`` seconds,
  counted from the end of the previous one: scrapes in between, and scrapes that arrive
  while a collection runs, get that collection's result (so a burst of scrapers costs
  the host one dump). A failed collection is a result too: its message is served as an
  HTTP 500 for the same interval, and handed to ``log``.
* :class:`Exporter` binds the socket (errors as :class:`~sockscope.errors.SockscopeError`)
  and serves, one thread per connection (``ThreadingHTTPServer``, HTTP/1.1 keep-alive):
  ``GET``/``HEAD /metrics`` the text (``Content-Type`` of the 0.0.4 format, gzip when
  the client accepts it), ``/`` a short HTML page, 404 elsewhere. :meth:`Exporter.stop`
  may be called from a signal handler: :meth:`Exporter.serve` then stops accepting,
  closes the listening socket, lets the responses being written finish, closes the idle
  connections and returns.

Nothing here prints or installs signal handlers: the CLI (``sockscope.cli.serve``) does.
:meth:`Exporter.serve` run in the main thread makes its wake-up pipe the process's
signal wake-up descriptor (``signal.set_wakeup_fd``) while it serves: Python runs a
handler only in the main thread, between two bytecodes, so a signal that the kernel
gives to a connection's thread (the main thread blocks every signal while it creates
one), or that lands just before the main thread enters ``epoll_wait``, would otherwise
leave that wait, and the shutdown, to the next connection: forever, once the scrapers
are gone. The interpreter writes a byte there from whichever thread takes the signal.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import selectors
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sockscope.errors import ArgumentError, SockscopeError
from sockscope.render.prom import CONTENT_TYPE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: ``:PORT`` binds here: an exporter is reachable from elsewhere only when asked
DEFAULT_HOST = "127.0.0.1"
#: how long a finished response may wait for the in-flight ones at shutdown (seconds)
DRAIN_SECONDS = 10.0
#: an idle keep-alive connection is closed after this many seconds
IDLE_SECONDS = 120.0
#: gzip level: 1000 series of --count-by (73 kB) compress to 10 kB at level 1 in 0.17 ms,
#: to 8 kB at level 6 in 0.6 ms (measured); the compressed text is kept per collection
GZIP_LEVEL = 1

PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>sockscope exporter</title></head>\n"
    b"<body><h1>sockscope exporter</h1>\n"
    b'<p>The selected sockets as Prometheus metrics: <a href="/metrics">/metrics</a>.</p>\n'
    b"</body></html>\n"
)


def parse_listen(text: str) -> tuple[int, str, int]:
    """``ADDR:PORT`` as ``(family, host, port)``; a bad word raises ArgumentError, a
    name that does not resolve SockscopeError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not port_text.isascii() or int(port_text) > 65535:
        raise ArgumentError(f'sockscope: invalid --listen "{text}" (ADDRESS:PORT or :PORT)')
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            socket.inet_pton(socket.AF_INET6, host)
        except (OSError, ValueError):
            raise ArgumentError(
                f'sockscope: invalid --listen "{text}" (not an IPv6 address)'
            ) from None
        return socket.AF_INET6, host, port
    if ":" in host:
        raise ArgumentError(f'sockscope: invalid --listen "{text}" (write IPv6 as [ADDRESS]:PORT)')
    if not host:
        return socket.AF_INET, DEFAULT_HOST, port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise SockscopeError(f'sockscope: --listen "{text}": {reason}') from None
    family, _t, _p, _c, address = infos[0]
    return family, str(address[0]), port


class Result:
    """One collection: the text (``body``) or what went wrong (``error``)."""

    __slots__ = ("_gzipped", "body", "error")

    def __init__(self, body: bytes | None, error: str | None = None) -> None:
        self.body = body
        self.error = error
        self._gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        """The body compressed once, shared by every scrape of this result."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body or b"", GZIP_LEVEL, mtime=0)
        return self._gzipped


class Collector:
    """``collect()`` at most once per ``min_interval`` seconds; callers share results."""

    def __init__(
        self,
        collect: Callable[[], bytes],
        min_interval: float = 1.0,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not min_interval >= 0:
            raise ValueError("min_interval must be 0 or more")
        self._collect = collect
        self.min_interval = min_interval
        #: where failures go (one line each)
        self.log = log or (lambda _m: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._last: Result | None = None
        self._done_at = 0.0
        #: how many collections ran (not scrapes)
        self.collections = 0

    def result(self) -> Result:
        """The last result if it is younger than the interval, else a new one. One
        collection at a time: with an interval, who waited for a running one gets its
        result; with 0, each caller gets a collection of its own, one after the other."""
        with self._lock:
            last = self._last
            if last is not None and self._clock() - self._done_at < self.min_interval:
                return last
            self.collections += 1
            try:
                result = Result(self._collect())
            except Exception as e:  # any failure is served as a 500; the server keeps running
                message = e.message if isinstance(e, SockscopeError) else _describe(e)
                message = message.removeprefix("sockscope: ").strip() or type(e).__name__
                self.log(f"sockscope: --listen: collecting the metrics failed: {message}")
                result = Result(None, message)
            self._last = result
            self._done_at = self._clock()
            return result


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return f"{type(e).__name__}: {e}"


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip;q=0`` refuses it)."""
    for item in (header or "").split(","):
        coding, _sep, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().replace(" ", "").lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


class _Server(ThreadingHTTPServer):
    """The HTTP server and its connections (for the drain at shutdown)."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        family: int,
        address: tuple[str, int],
        collector: Collector,
        log: Callable[[str], None],
    ) -> None:
        self.address_family = family
        self.collector = collector
        self.log = log
        self.stopping = False
        self.connections: set[_Handler] = set()
        self.busy = 0
        self.changed = threading.Condition()
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A scraper that went away mid-response is routine: no message. Anything else
        is one line, not socketserver's traceback; the server keeps running."""
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        self.log(f"sockscope: --listen: {type(error).__name__}: {error}")

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the name of the address up (getfqdn): a DNS
        # query at start that nothing here needs. SO_REUSEADDR: a restart does not wait
        # for the TIME-WAIT remnants of the connections the last run closed
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()[:2]


class _Handler(BaseHTTPRequestHandler):
    """``/metrics``, ``/`` and 404, for GET and HEAD."""

    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    _busy = False

    def setup(self) -> None:
        super().setup()
        with self.server.changed:
            self.server.connections.add(self)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.changed:
                self.server.connections.discard(self)
                self.server.changed.notify_all()

    def parse_request(self) -> bool:
        # a request line has arrived: from here until the response is written, the
        # connection is busy and the shutdown waits for it
        with self.server.changed:
            self._busy = True
            self.server.busy += 1
        return super().parse_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            if self._busy:
                with self.server.changed:
                    self._busy = False
                    self.server.busy -= 1
                    self.server.changed.notify_all()
            if self.server.stopping:
                self.close_connection = True

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _respond(self, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            result = self.server.collector.result()
            if result.body is None:
                text = f"sockscope: collecting the metrics failed: {result.error}\n"
                self._send(500, "text/plain; charset=utf-8", text.encode(), head)
            else:
                self._send(200, CONTENT_TYPE, result, head)
        elif path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", PAGE, head)
        else:
            self._send(404, "text/plain; charset=utf-8", b"404 page not found\n", head)

    def _send(self, status: int, ctype: str, body: bytes | Result, head: bool) -> None:
        data = (body.body or b"") if isinstance(body, Result) else body
        gzipped = accepts_gzip(self.headers.get("Accept-Encoding"))
        if gzipped:
            data = body.gzipped() if isinstance(body, Result) else gzip.compress(data, GZIP_LEVEL)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Vary", "Accept-Encoding")
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        if self.server.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def version_string(self) -> str:
        return "sockscope"

    def log_message(self, format: str, *args: object) -> None:
        """No access log (a scrape every few seconds would fill the journal)."""


class Exporter:
    """The listening socket (bound on creation) and the loop that serves it."""

    def __init__(self, family: int, host: str, port: int, collector: Collector) -> None:
        self.collector = collector
        try:
            self._server = _Server(family, (host, port), collector, collector.log)
        except OSError as e:
            where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            reason = e.strerror or str(e)
            if e.errno == errno.EADDRINUSE:
                reason += " (another program listens on that port)"
            raise SockscopeError(f"sockscope: --listen {where}: {reason}") from None
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._closed = False
        #: stop() was called; a byte on the pipe alone may be another signal's wake-up
        self._stopping = False
        #: the first signal number given to :meth:`stop`
        self.signum: int | None = None

    @property
    def url(self) -> str:
        """``http://ADDR:PORT/metrics`` of the bound socket (the real port for port 0)."""
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"

    def stop(self, signum: int | None = None) -> None:
        """Ask :meth:`serve` to return (safe in a signal handler: one write to a pipe)."""
        if signum is not None and self.signum is None:
            self.signum = signum
        self._stopping = True
        if not self._closed:  # a closed descriptor's number may be another file's now
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"\0")

    def serve(self) -> None:
        """Serve until :meth:`stop`, then shut down gracefully (see the module docstring)."""
        server = self._server
        server.timeout = 0.5  # handle_request() never blocks for long on a lost client
        wakeup = _wake_on_signals(self._wake_w)
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(server.socket, selectors.EVENT_READ)
                sel.register(self._wake_r, selectors.EVENT_READ)
                while not self._stopping:
                    ready = {key.fd for key, _e in sel.select()}
                    if self._wake_r in ready:
                        self._drain()  # stop()'s byte, or a signal's (its handler has run)
                    elif server.socket.fileno() in ready:
                        server.handle_request()
        finally:
            try:
                self._shutdown()
            finally:
                if wakeup is not None:  # before the pipe goes: its number may be reused
                    signal.set_wakeup_fd(wakeup)
                self._closed = True
                for fd in (self._wake_r, self._wake_w):
                    with contextlib.suppress(OSError):
                        os.close(fd)

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 256):
                pass

    def _shutdown(self) -> None:
        server = self._server
        server.stopping = True
        server.server_close()  # the port is free from here on
        deadline = time.monotonic() + DRAIN_SECONDS
        with server.changed:
            while server.busy and time.monotonic() < deadline:
                server.changed.wait(deadline - time.monotonic())
            idle = list(server.connections)
        for handler in idle:  # waiting for a next request that will not be read
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
        with server.changed:
            while server.connections and time.monotonic() < deadline:
                server.changed.wait(max(deadline - time.monotonic(), 0.01))


def _wake_on_signals(fd: int) -> int | None:
    """Make ``fd`` the signal wake-up descriptor when this is the main thread (where
    Python's signal handlers run); the one it replaces, to put back. None elsewhere."""
    try:
        return signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    except ValueError:  # not the main thread: no handler of this process runs here
        return None
