"""Live comparison with upstream ss on real sockets in a private network namespace.

Marked ``live``: skipped unless root with ``ip``, ``nsenter`` and an ss to compare with.
The reference is ``$SOCKSCOPE_ORACLE`` (upstream 7.1, byte-exact comparison) when
it is set, else Debian's ``/usr/bin/ss`` 6.1.0 with only the documented
6.1 -> 7.1 differences masked (see ``netns.mask_61``).  See ``netns.py``.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

import goldtest
import netns

#: every test here runs against both backends, compiled and pure (conftest.py)
pytestmark = pytest.mark.usefixtures("backend")

REASON = netns.live_reason()
live = pytest.mark.live
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")

P = netns.PORTS
# (id, arguments, flags) -- flags: "vol" time-varying numbers masked on both sides,
# "nl" the listing tool's own sock_diag socket dropped, "71" only against a 7.1 oracle,
# "ttyN" run on an N-column pseudo-terminal, "colsN" piped with COLUMNS=N.
CASES = [
    ("tan", "-tan", ""),
    ("tn", "-tn", ""),
    ("ta-names", "-ta", ""),
    ("tln", "-tln", ""),
    ("tanH", "-tanH", ""),
    ("tanO", "-tanO", ""),
    ("tanQ", "-tanQ", "71"),
    ("tanB", "-tanB", "71"),
    ("tan4", "-tan -4", ""),
    ("tan6", "-tan -6", ""),
    ("tanp", "-tanp", ""),
    ("tane", "-tane", ""),
    ("tano", "-tano", "vol"),
    ("tani", "-tani", "vol"),
    ("tanm", "-tanm", ""),
    ("uan", "-uan", ""),
    ("ua", "-ua", ""),
    ("uanp", "-uanp", ""),
    ("uane", "-uane", ""),
    ("wan", "-wan", ""),
    ("xa", "-xa", ""),
    ("xan", "-xan", ""),
    ("x", "-x", ""),
    ("xl", "-xl", ""),
    ("xae", "-xae", ""),
    ("xap", "-xap", ""),
    ("0a", "-0a", ""),
    ("0an-e", "-0ane", ""),
    ("netlink", "-A netlink -a", "nl"),
    ("netlink-n", "-A netlink -an", "nl"),
    ("an", "-an", "nl"),
    ("a", "-a", "nl"),
    ("l", "-l", "nl"),
    ("default", "", "nl"),
    ("a4", "-a -4", ""),
    ("a6", "-an -6", ""),
    ("f-inet6", "-f inet6 -an", ""),
    ("A-inet-not-tcp", "-A inet,!tcp -an", ""),
    ("sport", f"-tan sport = :{P['tcp4_listen']}", ""),
    ("sport-or", f"-tan dport = :{P['tcp4_listen']} or sport = :{P['tcp6_listen']}", ""),
    ("dport-gt", "-tan dport gt :10000", ""),
    ("not-src", "-tan not src 127.0.0.1", ""),
    ("src-v6", "-tan src [::1]", ""),
    ("dst-prefix", "-tan dst 127/8", ""),
    ("src-mapped", "-tan src [::ffff:127.0.0.1]", ""),
    ("udp-dst", f"-uan dst 127.0.0.1:{P['udp_conn_b']}", ""),
    ("unix-src", "-xa src /run/*", ""),
    ("st-estab", "-tn state established", ""),
    ("st-tw", "-tn state time-wait", ""),
    ("st-listen", "-tn state listening", ""),
    ("st-conn", "-tan state connected", ""),
    ("st-sync", "-tan state synchronized", ""),
    ("ex-estab", "-tan exclude established", ""),
    ("st-fw2-cw", "-tn state fin-wait-2 state close-wait", ""),
    ("cols80", "-tan", "cols80 71"),
    ("cols50", "-an", "cols50 nl 71"),
    ("tty100", "-tan", "tty100"),
    ("tty60", "-xa", "tty60"),
    ("tty200-e", "-uane", "tty200"),
    # a filter whose kernel bytecode no request can carry (sending it fails): ss lists the
    # table from /proc; the compiled path hung here, waiting on a dump that had ended
    (
        "huge-filter",
        "-tan " + " or ".join(f"dst 127.0.{i // 250}.{i % 250 + 1}" for i in range(6000)),
        "",
    ),
]


@pytest.fixture(scope="module")
def lab():
    if REASON:
        pytest.skip(REASON)
    try:
        ns = netns.Netns()
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot create a network namespace here: {exc}")
    try:
        holder = netns.Holder(ns, seconds=900)
    except Exception:
        ns.close()
        raise
    try:
        yield ns, holder
    finally:
        holder.close()
        ns.close()


def run_piped(ns, argv, env):
    p = ns.run(argv, env=env)
    return p.returncode, p.stdout, p.stderr


def run_tty(ns, argv, env, cols):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # no \n -> \r\n translation
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    p = subprocess.Popen(
        [*ns.enter(), *argv],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child side is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    err = p.stderr.read()
    p.stderr.close()
    p.wait(timeout=60)
    return p.returncode, b"".join(chunks), err


def run_both(ns, args, flags):
    ref, _ = netns.oracle()
    extra = {}
    m = re.search(r"cols(\d+)", flags)
    if m:
        extra["COLUMNS"] = m.group(1)
    env = netns.tool_env(**extra)
    m = re.search(r"tty(\d+)", flags)
    argv = args.split()
    outs = []
    for cmd in ([ref], netns.sockscope_cmd()):
        if m:
            outs.append(run_tty(ns, [*cmd, *argv], env, int(m.group(1))))
        else:
            outs.append(run_piped(ns, [*cmd, *argv], env))
    return outs


def normalise(out, flags, holder, is71):
    if "nl" in flags:
        out = netns.drop_self_diag(out)
    if not is71:
        return netns.mask_61(out, (P["tcp_bound"],))
    if "vol" in flags:
        out = netns.mask_volatile(out)
    return out


@live
@needs_root
@pytest.mark.parametrize(("args", "flags"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_same_as_ss(lab, args, flags):
    ns, holder = lab
    _, is71 = netns.oracle()
    if "71" in flags and not is71:
        pytest.skip("needs the 7.1 oracle (6.1 differs here by design)")
    for attempt in range(3):  # sockets may change state between the two runs (TIME-WAIT)
        (rs, rout, _), (cs, cout, cerr) = run_both(ns, args, flags)
        want = normalise(rout, flags, holder, is71)
        got = normalise(cout, flags, holder, is71)
        if (rs, want) == (cs, got):
            return
        time.sleep(0.3 * (attempt + 1))
    diff = goldtest.visible_diff(want, got)
    pytest.fail(
        f"ss {args!r} ({'7.1' if is71 else '6.1 masked'}): status {rs} vs {cs}\n"
        f"{diff}\nsockscope stderr: {cerr[-1500:].decode(errors='replace')}",
        pytrace=False,
    )


#: the listing in-process, with the combined dump of a small TCP table
#: (tables.inet.plan.combinable) forced whatever the host holds and its requests
#: counted: the listing on stdout, the status and the count on stderr
_COMBINED = """
import io, os, sys
from sockscope.tables.inet import plan
plan.SMALL = 1 << 62
request = plan.legacy_request
used = []
def counted(*args):
    used.append(1)
    return request(*args)
plan.legacy_request = counted
start = plan.prefetch
ahead = []
def prefetch(ctx):
    started = start(ctx)
    ahead.append(started is not None)
    return started
plan.prefetch = prefetch
out = io.BytesIO()
sys.stdout = io.TextIOWrapper(out, encoding="latin-1")
from sockscope.cli import main
status = main(sys.argv[1:])
sys.stdout.flush()
os.write(1, out.getvalue())
os.write(2, b"prefetched=%d %d combined=%d" % (sum(ahead), status, len(used)))
"""


@live
@needs_root
@pytest.mark.parametrize(
    "args", ["-tan", "-ta", "-tanm", "-tanp", "-tan state established", "-tan src [::1]"]
)
def test_small_tcp_table_is_one_dump(lab, backend, args):
    """A small TCP table of both families is one legacy request (every family in one
    walk of the kernel's hash), with ss's bytes and order: the IPv4 rows, then the IPv6
    ones (both backends). The compiled backend receives it in the core's own thread,
    started before the rows' modules are imported (tables.inet.plan.prefetch)."""
    ns, holder = lab
    ref, is71 = netns.oracle()
    for attempt in range(3):  # sockets may change state between the two runs (TIME-WAIT)
        rp = ns.run([ref, *args.split()], env=netns.tool_env())
        cp = ns.run([sys.executable, "-S", "-c", _COMBINED, *args.split()], env=netns.tool_env())
        assert cp.stderr.endswith(b"0 combined=1"), cp.stderr[-1500:]
        ahead = b"prefetched=0" if backend == "pure" else b"prefetched=1"
        assert cp.stderr.endswith(ahead + b" 0 combined=1"), cp.stderr[-1500:]
        want = normalise(rp.stdout, "", holder, is71)
        got = normalise(cp.stdout, "", holder, is71)
        if want == got:
            break
        time.sleep(0.3 * (attempt + 1))
    assert want == got, goldtest.visible_diff(want, got)
    assert b"127.0.0.1" in got or "src" in args  # both families were really listed
    assert b"[::1]" in got


#: driver code (``HOLD_LISTENERS`` in a driver's text): N listeners on each loopback
#: address, IPv4 first when ``first`` is 4 (else IPv6), kept open in ``held``
def _listeners(n: int, first: int) -> str:
    order = '(socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")'
    if first == 4:
        order = '(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")'
    return (
        f"held = []\nfor family, host in ({order}):\n    for _ in range({n}):\n"
        "        s = socket.socket(family)\n        s.bind((host, 0))\n"
        "        s.listen(1)\n        held.append(s)"
    )


#: a listing of 3,000 IPv4 and 3,000 IPv6 listeners (per-family dumps in receive threads)
#: whose rows are taken slowly, with room for 2 datagrams ahead: the most datagrams each
#: dump ever had waiting, and the rows listed
_AHEAD_DRIVER = """
import io, json, os, resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (16384, 16384))
from sockscope.accel import core
from sockscope.tables.inet import fast
if core() is None:
    print(json.dumps({"pure": True}))
    raise SystemExit(0)
fast._AHEAD = 2
take, most = fast._take, {}
def slow_take(dump):
    waiting = dump.get.__self__.qsize()  # the receive thread's queue
    most[id(dump)] = max(most.get(id(dump), 0), waiting)
    time.sleep(0.003)  # a slow reader: a pager, a full pipe
    return take(dump)
fast._take = slow_take
HOLD_LISTENERS
out = io.BytesIO()
sys.stdout = io.TextIOWrapper(out, encoding="latin-1")
from sockscope.cli import main
status = main(["-tln"])
sys.stdout.flush()
rows = out.getvalue().splitlines()[1:]
six = sum(1 for r in rows if b"[::1]:" in r)
os.write(1, json.dumps({"status": status, "rows": len(rows), "six": six,
                        "most": sorted(most.values())}).encode())
""".replace("HOLD_LISTENERS", _listeners(3000, first=6))


@live
@needs_root
def test_receive_threads_stay_few_datagrams_ahead(backend):
    """The IPv6 dump of a table is received by its thread while the IPv4 rows are made,
    but never more than ``_AHEAD`` datagrams ahead of them: a reader that stops (a pager,
    a full pipe) makes the kernel's dump wait, as ss's sequential dumps do, instead of
    the whole dump being received into memory. Every row is still listed."""
    if backend == "pure":
        pytest.skip("the receive threads are the compiled path's")
    got = netns.driver_json("sockscope-ahead", _AHEAD_DRIVER)
    assert got["status"] == 0
    assert (got["rows"], got["six"]) == (6000, 3000)
    # 3,000 listeners fill ~13 datagrams a family; at most 2 waiting, plus the end mark
    assert got["most"] and max(got["most"]) <= 3, got


#: the compiled core's Prefetch against the Python receive loop (kernel.netlink.datagrams,
#: the reference) on one request, with 300 IPv4 and 300 IPv6 listeners: the messages
#: each received; past its datagram bound (the rest received by fast._prefetched);
#: a request the kernel refuses to take (the errno each saw); a dump dropped unfinished
_PREFETCH_DRIVER = """
import errno, json, socket, struct
import sockscope._core as core
from sockscope.kernel import abi, netlink
from sockscope.tables.inet import fast, plan
HOLD_LISTENERS
def messages(datagrams):
    out = []
    for buf in datagrams:
        off = 0
        while off + 16 <= len(buf):
            length, mtype = struct.unpack_from("=IH", buf, off)
            if length < 16:
                break
            if mtype != abi.NLMSG_DONE:
                out.append(buf[off:off + length].hex())
            off += (length + 3) & ~3
    return sorted(out)
request = plan.legacy_request(abi.IPPROTO_TCP, (1 << 12) - 1, 0, None)
seq = netlink.HDR_UNPACK(request, 0)[3]
sock = netlink.open_diag()
sock.send(request)
ref = []
for buf in netlink.datagrams(sock):
    ref.append(buf)
    if core.dump_end(buf, seq):
        break
sock.close()
got, err, fd = core.Prefetch(request, seq).take()
one, err1, fd1 = core.Prefetch(request, seq, limit=1).take()
handed = fd1 >= 0 and len(one) == 1
if fd1 >= 0:
    socket.socket(fileno=fd1).close()
dump = fast._prefetched(core.Prefetch(request, seq, limit=1))
rest = []
while (buf := fast._take(dump)) is not None:
    rest.append(buf)
big = plan.legacy_request(abi.IPPROTO_TCP, (1 << 12) - 1, 0, bytes(70000))
try:
    netlink.open_diag().send(big)
    python_errno = 0
except OSError as e:
    python_errno = e.errno
_, big_err, big_fd = core.Prefetch(big, seq).take()
try:
    fast._take(fast._prefetched(core.Prefetch(big, seq)))
    taken_errno = 0
except OSError as e:
    taken_errno = e.errno
dropped = core.Prefetch(request, seq + 1)  # never sees its end: its thread waits on
del dropped
misuse = []
for bad in ({"limit": 0}, {"limit": 129}):
    try:
        core.Prefetch(request, seq, **bad)
    except ValueError:
        misuse.append("ValueError")
try:
    core.Prefetch.__new__(core.Prefetch).take()
except RuntimeError:
    misuse.append("RuntimeError")
again = core.Prefetch(request, seq)
try:
    again.__init__(request, seq)
except RuntimeError:
    misuse.append("RuntimeError")
print(json.dumps({
    "ref": messages(ref), "got": messages(got), "err": err, "fd": fd,
    "handed": handed, "rest": messages(rest), "rest_count": len(rest),
    "python_errno": python_errno, "big_err": big_err, "big_fd": big_fd,
    "taken_errno": taken_errno, "misuse": misuse,
}))
""".replace("HOLD_LISTENERS", _listeners(300, first=4))


@live
@needs_root
def test_prefetch_receives_what_the_python_loop_receives(backend):
    """The compiled core's own receive thread (tables.inet.plan.prefetch) gives the
    messages of the Python receive loop, hands the socket over past its datagram bound
    (the rest then received in Python), reports the errno the Python send raises, and a
    dump dropped before its end does not hold the process (the driver returns)."""
    if backend == "pure":
        pytest.skip("Prefetch is the compiled core's")
    got = netns.driver_json("sockscope-prefetch", _PREFETCH_DRIVER)
    assert len(got["ref"]) >= 600  # the listeners (and nothing but this namespace's)
    assert got["got"] == got["ref"]
    assert (got["err"], got["fd"]) == (0, -1)
    assert got["handed"]
    assert got["rest_count"] > 1 and got["rest"] == got["ref"]
    assert got["python_errno"] == got["big_err"] == got["taken_errno"] != 0
    assert got["big_fd"] == -1
    assert got["misuse"] == ["ValueError", "ValueError", "RuntimeError", "RuntimeError"]


@live
@needs_root
@pytest.mark.parametrize("args", ["-tan", "-xa", "-uan"])
def test_dash_n_netns(lab, args):
    """``-N NAME`` from outside the namespace lists the same sockets as entering it."""
    ns, _ = lab
    ref, is71 = netns.oracle()
    env = netns.tool_env()
    outs = []
    for cmd in ([ref], netns.sockscope_cmd()):
        p = subprocess.run(
            [*cmd, "-N", ns.name, *args.split()],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=60,
            check=False,
        )
        out = p.stdout if is71 else netns.mask_61(p.stdout, (P["tcp_bound"],))
        outs.append((p.returncode, out, p.stderr))
    assert outs[0][:2] == outs[1][:2], goldtest.visible_diff(outs[0][1], outs[1][1])
    assert b"Traceback" not in outs[1][2]


def sockscope(ns, *args):
    p = ns.run([*netns.sockscope_cmd(), *args], env=netns.tool_env())
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert b"Traceback" not in p.stderr
    return p.stdout.decode()


def rows(text):
    return [line.split() for line in text.splitlines()[1:]]


@live
@needs_root
def test_listeners(lab):
    ns, _ = lab
    local = {r[3] for r in rows(sockscope(ns, "-tln")) if r[0] == "LISTEN"}
    assert {
        f"127.0.0.1:{P['tcp4_listen']}",
        f"[::1]:{P['tcp6_listen']}",
        f"*:{P['tcp_dual_listen']}",
        f"[::]:{P['tcp6_only_any']}",
    } <= local


@live
@needs_root
def test_states_and_queues(lab):
    ns, _ = lab
    table = rows(sockscope(ns, "-tan"))
    states = {r[0] for r in table}
    assert {"LISTEN", "ESTAB", "TIME-WAIT", "CLOSE-WAIT", "FIN-WAIT-2"} <= states
    server = f"127.0.0.1:{P['tcp4_listen']}"
    assert any(r[0] == "ESTAB" and r[1] == str(netns.UNREAD) and r[3] == server for r in table)
    # a listener with a full accept queue shows its backlog 0 and one waiting connection
    full = [r for r in table if r[0] == "LISTEN" and r[3].endswith(f":{P['tcp_full_listen']}")]
    assert full and full[0][1:3] == ["1", "0"]


@live
@needs_root
def test_bound_inactive(lab):
    ns, _ = lab
    if tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2]) < (6, 8):
        pytest.skip("bound-inactive sockets need Linux >= 6.8")
    bound = f"127.0.0.1:{P['tcp_bound']}"
    assert any(r[0] == "UNCONN" and r[3] == bound for r in rows(sockscope(ns, "-tan")))
    assert [r[2] for r in rows(sockscope(ns, "-tnB"))] == [bound] or any(
        bound in r for r in rows(sockscope(ns, "-tnB"))
    )
    assert not any(bound in r for r in rows(sockscope(ns, "-tln")))


@live
@needs_root
def test_filter_selects(lab):
    ns, _ = lab
    port = f":{P['tcp4_listen']}"
    got = rows(sockscope(ns, "-tn", "sport", "=", port))
    assert got
    assert all(r[3].endswith(port) for r in got)
    tw = sockscope(ns, "-tn", "state", "time-wait")
    assert not tw.startswith("State")  # a single state: no State column
    n_tw = sum(r[0] == "TIME-WAIT" for r in rows(sockscope(ns, "-tan")))
    assert len(rows(tw)) == n_tw > 0


@live
@needs_root
def test_udp_and_unix(lab):
    ns, holder = lab
    udp = rows(sockscope(ns, "-uan"))
    bound = [r for r in udp if r[3] == f"127.0.0.1:{P['udp4']}"]
    assert bound and int(bound[0][1]) > 0  # the unread datagram
    conn = {(r[3], r[4]) for r in udp if r[0] == "ESTAB"}
    assert (f"127.0.0.1:{P['udp_conn_a']}", f"127.0.0.1:{P['udp_conn_b']}") in conn
    unix = sockscope(ns, "-xa")
    assert holder.info["unix"]["stream"] in unix
    assert "@" + holder.info["unix"]["abstract"] in unix
    assert {"u_str", "u_dgr", "u_seq"} <= {r[0] for r in rows(unix)}


@live
@needs_root
def test_process_column(lab):
    ns, holder = lab
    out = sockscope(ns, "-tlnp", "sport", "=", f":{P['tcp4_listen']}")
    assert f"pid={holder.info['pid']}," in out


def _head_one(cmd, env):
    """Run ``cmd | head -1``: returns (status, first line, stderr)."""
    p = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    first = p.stdout.readline()
    p.stdout.close()  # what head does after one line
    err = p.stderr.read()
    p.stderr.close()
    return p.wait(timeout=60), first, err


def _assert_quiet_pipe_end(status, first, err):
    assert first.startswith((b"State", b"Netid"))
    assert status in (0, -signal.SIGPIPE), (status, err)
    assert b"Traceback" not in err and b"Exception ignored" not in err, err.decode()
    assert b"BrokenPipe" not in err, err.decode()


BIG = goldtest.GOLDEN / "scenario-21"


@pytest.mark.skipif(not (BIG / "tcpdiag.bin").exists(), reason="needs tests/golden/scenario-21")
def test_head_closes_pipe_quietly():
    """``sockscope -tani | head -1`` with ~600 KiB of output ends without a traceback."""
    env = netns.tool_env(TCPDIAG_FILE=str(BIG / "tcpdiag.bin"))
    _assert_quiet_pipe_end(*_head_one([*netns.sockscope_cmd(), "-tani"], env))


@live
@needs_root
def test_head_closes_pipe_quietly_live(lab):
    ns, _ = lab
    cmd = [*ns.enter(), *netns.sockscope_cmd(), "-aeimo"]
    _assert_quiet_pipe_end(*_head_one(cmd, netns.tool_env()))


def test_netns_masks_only_documented_differences():
    """mask_61 folds layout and drops bound-inactive rows only; numbers stay compared."""
    a = (
        b"State Recv-Q Local Address:Port Peer Address:PortProcess\n"
        b"ESTAB 0 1.2.3.4:5 6.7.8.9:10  \n"
    )
    b = b"State Recv-Q Local Address:Port Peer Address:Port\nESTAB 0 1.2.3.4:5 6.7.8.9:10\n"
    assert netns.mask_61(a) == netns.mask_61(b)
    c = b"State Recv-Q Local Address:Port Peer Address:Port\nESTAB 1 1.2.3.4:5 6.7.8.9:10\n"
    assert netns.mask_61(c) != netns.mask_61(b)
    d = b + b"UNCONN 0 0 127.0.0.1:6005 0.0.0.0:*\n"
    assert netns.mask_61(d, (6005,)) == netns.mask_61(b, (6005,))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
