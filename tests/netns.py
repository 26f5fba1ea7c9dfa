"""Live-test helpers: a private network namespace and a process holding real sockets in it.

Used by ``test_live_inet.py`` (marked ``live``).  Everything happens on loopback
inside a namespace created for the test run (``ip netns add sockscope-test-<pid>``)
and entered with ``nsenter --net=/var/run/netns/NAME`` (never ``ip netns exec``,
which remounts /sys and breaks cgroup lookups).

``python netns.py hold --seconds S --dir D`` is the holder: run inside the
namespace, it opens the sockets described in :func:`open_sockets`, prints one
JSON line describing them, and keeps them until its stdin is closed or ``S``
seconds have passed, whichever comes first, so a crashed test run cannot leave
it behind for long.

Comparisons.  The reference is an upstream iproute2 7.1 ``ss``
(``$SOCKSCOPE_ORACLE``, see conftest.py) when set: outputs must then match byte for
byte.  Otherwise it is Debian's ``/usr/bin/ss`` 6.1.0, and :func:`mask_61` hides only
the documented 6.1 -> 7.1 differences (see its docstring).  Time-
varying numbers (timers, rtt, last send/receive ages) are not version differences:
:func:`mask_volatile` is applied to both sides of the few cases that print them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SYSTEM_SS = "/usr/bin/ss"
NETNS_DIR = "/var/run/netns"

# fixed ports: the namespace is private, nothing else binds there
PORTS = {
    "tcp4_listen": 6001,  # 127.0.0.1, backlog 16
    "tcp6_listen": 6002,  # [::1], IPV6_V6ONLY
    "tcp_dual_listen": 6003,  # [::], dual stack, v4-mapped peers
    "tcp6_only_any": 6004,  # [::], IPV6_V6ONLY
    "tcp_bound": 6005,  # 127.0.0.1, bound, never listening (bound-inactive)
    "tcp_full_listen": 6006,  # 127.0.0.1, backlog 0, one connection never accepted
    "udp4": 6101,  # 127.0.0.1, one unread datagram
    "udp6": 6102,  # [::1]
    "udp_conn_a": 6103,  # 127.0.0.1, connected to udp_conn_b
    "udp_conn_b": 6104,
}
UNREAD = 1000  # bytes left unread on one established server socket (Recv-Q)


def live_reason() -> str | None:
    """Why live comparisons cannot run here (no root, ``ip``, ``nsenter``, or no ss at
    all: neither ``$SOCKSCOPE_ORACLE`` nor the system's), or None."""
    from conftest import LIVE_REASON, ORACLE

    if LIVE_REASON:
        return LIVE_REASON
    if ORACLE is None and not os.access(SYSTEM_SS, os.X_OK):
        return f"live comparisons need SOCKSCOPE_ORACLE (ss 7.1) or {SYSTEM_SS}"
    return None


def oracle() -> tuple[str, bool]:
    """(path, is_71): ``$SOCKSCOPE_ORACLE`` (7.1) when set, else the system ss (masked)."""
    from conftest import ORACLE

    if ORACLE is not None:
        return ORACLE, True
    return SYSTEM_SS, False


class Netns:
    """A private network namespace with ``lo`` up; :meth:`close` deletes it."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"sockscope-test-{os.getpid()}"
        self.path = f"{NETNS_DIR}/{self.name}"
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run(["ip", "link", "set", "lo", "up"], check=True)

    def enter(self) -> list[str]:
        return ["nsenter", f"--net={self.path}"]

    def run(
        self,
        argv: list[str],
        *,
        check: bool = False,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self.enter(), *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=check,
            env=env,
            timeout=timeout,
        )

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


def tool_env(**extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin:/sbin"),
        "LC_ALL": "C",
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(REPO / "src"),
    }
    if "SOCKSCOPE_PURE" in os.environ:  # the backend fixture's choice (conftest.py)
        env["SOCKSCOPE_PURE"] = os.environ["SOCKSCOPE_PURE"]
    env.update(extra)
    return env


def driver_json(prefix: str, code: str) -> Any:
    """Run the Python ``code`` in a fresh namespace (``prefix``-PID) with the tree under
    test on its path; what its last act printed, as JSON."""
    ns = Netns(f"{prefix}-{os.getpid()}")
    try:
        run = ns.run([sys.executable, "-c", code], env=tool_env(), timeout=60)
    finally:
        ns.close()
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


#: run the rest of a command line as an unprivileged user (nobody)
DROP = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@contextlib.contextmanager
def as_nobody(cmd: list[str]) -> Iterator[tuple[list[str], dict[str, str]]]:
    """``cmd`` (and its environment) rewritten so that uid 65534 can run it.

    The checkout may sit in a directory that user cannot enter (a clone under a 0700
    home), and so may the virtual environment: when ``cmd`` starts with this
    interpreter, the package is copied to a world-readable temporary directory and the
    base interpreter runs it (sockscope has no runtime dependencies). Other commands
    (the oracle) are left alone. Skips the test when even that cannot run as the user.
    """
    import pytest

    if not cmd or cmd[0] != sys.executable:
        yield [*DROP, *cmd], tool_env()
        return
    tmp = Path(tempfile.mkdtemp(prefix="sockscope-nobody-"))
    try:
        shutil.copytree(REPO / "src" / "sockscope", tmp / "sockscope")
        for p in (tmp, *tmp.rglob("*")):
            p.chmod(0o755 if p.is_dir() else 0o644)
        python = os.path.realpath(sys.executable)
        env = tool_env(PYTHONPATH=str(tmp), PYTHONDONTWRITEBYTECODE="1")
        probe = subprocess.run(
            [*DROP, python, "-c", "import sockscope.cli"],
            env=env, capture_output=True, check=False, cwd="/", timeout=60,
        )  # fmt: skip
        if probe.returncode:
            pytest.skip(f"uid 65534 cannot run {python} on a copy of the package: "
                        f"{probe.stderr[-300:]!r}")  # fmt: skip
        yield [*DROP, python, *cmd[1:]], env
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sockscope_cmd() -> list[str]:
    """The command under test: ``$SOCKSCOPE_CAND`` (shell words) or ``python -m sockscope``."""
    cand = os.environ.get("SOCKSCOPE_CAND")
    return shlex.split(cand) if cand else [sys.executable, "-m", "sockscope"]


def end_holder(holder: subprocess.Popen[bytes]) -> None:
    """Stop a holder process that keeps its sockets until its stdin closes, and close
    its pipes (a ResourceWarning otherwise)."""
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)
    if holder.stdout is not None:
        holder.stdout.close()


class Holder:
    """The socket-holding child, started inside ``ns``; ``info`` is its JSON report."""

    def __init__(self, ns: Netns, seconds: float = 600) -> None:
        self.dir = Path(f"/run/sockscope-test-{os.getpid()}")
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            *ns.enter(),
            sys.executable,
            str(Path(__file__).resolve()),
            "hold",
            "--seconds",
            str(seconds),
            "--dir",
            str(self.dir),
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.close()
            raise RuntimeError("socket holder did not start")
        self.info = json.loads(line)
        time.sleep(0.2)  # let TIME-WAIT / FIN states settle

    def close(self) -> None:
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- output masks

_VOLATILE = [
    (re.compile(rb"timer:\([a-z_]+,[0-9.]+(?:ms|sec|min)?,"), rb"timer:(T,"),
    (
        re.compile(
            rb"\b(lastsnd|lastrcv|lastack|busy|rwnd_limited|sndbuf_limited|app_limited)"
            rb":[0-9.]+(ms)?(\([0-9.%]+\))?"
        ),
        rb"\1:N",
    ),
    (re.compile(rb"\b(rtt:[0-9.]+/[0-9.]+|minrtt:[0-9.]+|rto:[0-9.]+|ato:[0-9.]+)"), rb"RTT"),
    (
        re.compile(rb"\b(send|pacing_rate|delivery_rate) [0-9.]+[KMG]?bps(/[0-9.]+[KMG]?bps)?"),
        rb"\1 R",
    ),
]
_BLANKS = re.compile(rb"[ \t]+")
_NEW_TCP_INFO = re.compile(rb" (rcv_wnd:\d+|rehash:\d+|usec_ts)(?=\s|$)")
# a sock_diag socket in netlink listings: "tcpdiag:NAME/PORTID", or "4:PORTID" with -n
_SELF_DIAG = re.compile(rb"tcpdiag:([^/\s]+)(?:/\d+)?\s|\s4:(\d+)\s")


def mask_volatile(out: bytes) -> bytes:
    """Time-varying numbers (timers, rtt, ages, rates) -> fixed text; blanks folded."""
    for rx, rep in _VOLATILE:
        out = rx.sub(rep, out)
    return fold_blanks(out)


def fold_blanks(out: bytes) -> bytes:
    return b"\n".join(_BLANKS.sub(b" ", line).rstrip(b" ") for line in out.split(b"\n"))


def drop_self_diag(out: bytes) -> bytes:
    """Drop the listing tool's own NETLINK_SOCK_DIAG socket (it differs by nature).

    The holder opens no sock_diag socket, so every one not owned by the kernel
    belongs to the tool that is listing; blanks are folded afterwards.
    """
    keep = []
    for line in out.split(b"\n"):
        m = _SELF_DIAG.search(line)
        if m and (m.group(1) or m.group(2)) not in (b"kernel", b"0"):
            continue
        keep.append(line)
    return fold_blanks(b"\n".join(keep))


def mask_61(out: bytes, bound_ports: tuple[int, ...] = ()) -> bytes:
    """Hide the documented 6.1.0 -> 7.1 differences (ss-internals.md section 4) and nothing else.

    * 6.1 pads a Process column and trailing blanks when stdout is not a tty, and
      7.1 sizes columns from ``COLUMNS`` (item 6): runs of blanks are folded,
      trailing blanks and the ``Process`` header dropped, on both sides.
    * 6.1 does not list bound-inactive TCP sockets (item 1): rows of the given
      bound-but-never-listening ports (and their continuation lines) are dropped.
    * timer names and formats changed (item 6): timers are masked (cases with -o only).
    * new tcp_info fields (item 6): ``rcv_wnd:N``, ``rehash:N`` and ``usec_ts`` are dropped.
    """
    out = mask_volatile(out)
    out = _NEW_TCP_INFO.sub(b"", out)
    names = []
    for port in bound_ports:
        names.append(b"%d" % port)
        with contextlib.suppress(OSError):
            names.append(socket.getservbyport(port, "tcp").encode())
    bound = re.compile(rb"^(tcp )?UNCONN \S+ \S+ \S+:(%s) \S+:\*( |$)" % b"|".join(names))
    lines: list[bytes] = []
    dropping = False
    split = out.split(b"\n")
    for i, line in enumerate(split):
        if names and bound.match(line):
            dropping = True
            continue
        if dropping and (line[:1] == b" " or (not line and i < len(split) - 1)):
            continue  # continuation line of a dropped row (-e -i -m without -O)
        dropping = False
        if line.startswith((b"State", b"Netid", b"Recv-Q")):
            # the header: 6.1 appends "Process" (glued to "Address:Port" if narrow)
            lines.append(re.sub(rb" ?Process$", b"", line))
        else:
            lines.append(line)
    return b"\n".join(lines)


# ---------------------------------------------------------------- the holder


def _tcp_listener(
    family: int, addr: str, port: int, backlog: int = 16, v6only: bool | None = None
) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    s.bind((addr, port))
    s.listen(backlog)
    return s


def _pair(listener: socket.socket, family: int, addr: str) -> tuple[socket.socket, socket.socket]:
    c = socket.socket(family, socket.SOCK_STREAM)
    c.connect((addr, listener.getsockname()[1]))
    s, _ = listener.accept()
    return c, s


def open_sockets(directory: Path) -> tuple[list[object], dict[str, object]]:
    """Open the live-test socket set; returns (objects to keep, description)."""
    p = PORTS
    keep: list[object] = []
    info: dict[str, object] = {"pid": os.getpid(), "ports": p, "dir": str(directory)}
    l4 = _tcp_listener(socket.AF_INET, "127.0.0.1", p["tcp4_listen"])
    l6 = _tcp_listener(socket.AF_INET6, "::1", p["tcp6_listen"], v6only=True)
    ld = _tcp_listener(socket.AF_INET6, "::", p["tcp_dual_listen"], v6only=False)
    lo = _tcp_listener(socket.AF_INET6, "::", p["tcp6_only_any"], v6only=True)
    keep += [l4, l6, ld, lo]
    est = [_pair(l4, socket.AF_INET, "127.0.0.1") for _ in range(3)]
    est.append(_pair(l6, socket.AF_INET6, "::1"))
    est.append(_pair(ld, socket.AF_INET, "127.0.0.1"))  # v4-mapped on the server side
    est.append(_pair(ld, socket.AF_INET6, "::1"))
    est[0][0].sendall(b"x" * UNREAD)  # server side keeps UNREAD bytes in Recv-Q
    keep += est
    # CLOSE-WAIT (server) / FIN-WAIT-2 (client)
    c, s = _pair(l4, socket.AF_INET, "127.0.0.1")
    c.shutdown(socket.SHUT_WR)
    keep += [c, s]
    # TIME-WAIT: the client closes first
    for _ in range(2):
        c, s = _pair(l4, socket.AF_INET, "127.0.0.1")
        c.close()
        time.sleep(0.05)
        s.close()
    # bound, never listening or connecting (bound-inactive in 7.1 on kernels >= 6.8)
    b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    b.bind(("127.0.0.1", p["tcp_bound"]))
    keep.append(b)
    # a listener whose accept queue is full: its connection waits un-accepted
    lf = _tcp_listener(socket.AF_INET, "127.0.0.1", p["tcp_full_listen"], backlog=0)
    cf = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cf.connect(("127.0.0.1", p["tcp_full_listen"]))
    keep += [lf, cf]
    # UDP: bound v4 with an unread datagram, bound v6, a connected pair
    u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u4.bind(("127.0.0.1", p["udp4"]))
    u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u6.bind(("::1", p["udp6"]))
    ua = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ua.bind(("127.0.0.1", p["udp_conn_a"]))
    ub = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ub.bind(("127.0.0.1", p["udp_conn_b"]))
    ua.connect(("127.0.0.1", p["udp_conn_b"]))
    ub.connect(("127.0.0.1", p["udp_conn_a"]))
    ua.sendto(b"d" * 100, ("127.0.0.1", p["udp4"]))
    keep += [u4, u6, ua, ub]
    # UNIX: path and abstract listeners with a connection, socketpairs, bound dgram
    path = str(directory / "stream.sock")
    ux = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ux.bind(path)
    ux.listen(8)
    uc = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    uc.connect(path)
    us, _ = ux.accept()
    abstract = f"\0sockscope-test-{os.getpid()}"
    ua_l = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ua_l.bind(abstract)
    ua_l.listen(4)
    ud = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ud.bind(str(directory / "dgram.sock"))
    keep += [ux, uc, us, ua_l, ud]
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
        keep += list(socket.socketpair(socket.AF_UNIX, kind))
    dgram = str(directory / "dgram.sock")
    info["unix"] = {"stream": path, "abstract": abstract[1:], "dgram": dgram}
    # netlink (route, with groups) and, optionally, packet and raw
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    nl.bind((0, 1))
    keep.append(nl)
    extra = []
    with contextlib.suppress(OSError):
        pk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        pk.bind(("lo", 0))
        keep.append(pk)
        extra.append("packet")
    with contextlib.suppress(OSError):
        keep.append(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        extra.append("raw")
    info["optional"] = extra
    return keep, info


def hold(seconds: float, directory: Path) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    directory.mkdir(parents=True, exist_ok=True)
    keep, info = open_sockets(directory)
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sys.stdin], [], [], min(left, 5))
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break  # parent closed our stdin (or died)
    del keep
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "hold":
        import argparse

        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("--seconds", type=float, default=600)
        ap.add_argument("--dir", required=True)
        a = ap.parse_args()
        sys.exit(hold(a.seconds, Path(a.dir)))
    sys.exit("usage: netns.py hold --seconds S --dir D")
