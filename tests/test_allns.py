"""``--all-netns``, ``-N``'s new forms, ``sockscope.namespaces()`` and container attribution.

The live tests (marked ``live``, root) build a fleet of 22 private namespaces
(:mod:`allns_fleet`: named ones with and without processes, unnamed ones held by a
process, one held by a bind mount, holders in fake container cgroups) and compare every
namespace block of ``sockscope --all-netns`` with upstream ss 7.1 run inside that
namespace (``nsenter --net=...``); that comparison needs ``$SOCKSCOPE_ORACLE`` and is
skipped without it. Other namespaces of the host (other test runs') are ignored: only
blocks of the fleet's inodes are compared.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netns
from sockscope.ops import containers

REASON = netns.live_reason()
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")
ORACLE = os.environ.get("SOCKSCOPE_ORACLE")
needs_oracle = pytest.mark.skipif(
    not (ORACLE and os.access(ORACLE, os.X_OK)),
    reason="set SOCKSCOPE_ORACLE to an upstream iproute2 7.1 ss to compare with it",
)
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "src/sockscope/schema/sockscope.schema.json"


# --- container attribution: real path shapes ------------------------------------------
H = "3f4e8c1d2b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
U = "4ae0bd3c-7c4b-4e26-9d3f-1e56b3e1e0a1"
U_ = U.replace("-", "_")
STATIC = "5a4cd49d0ed7cf3e2e6e3e2d5f9f41c6"

SHAPES = [
    # (cgroup path, runtime, id, pod uid, unit)
    (f"/system.slice/docker-{H}.scope", "docker", H, None, f"docker-{H}.scope"),
    (f"/docker/{H}", "docker", H, None, None),
    (f"/user.slice/user-1000.slice/user@1000.service/app.slice/docker-{H}.scope", "docker", H,
     None, f"docker-{H}.scope"),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{U_}.slice/"
     f"cri-containerd-{H}.scope", "containerd", H, U, f"cri-containerd-{H}.scope"),
    (f"/kubepods.slice/kubepods-pod{U_}.slice/cri-containerd-{H}.scope", "containerd", H, U,
     f"cri-containerd-{H}.scope"),
    (f"/system.slice/nerdctl-{H}.scope", "containerd", H, None, f"nerdctl-{H}.scope"),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{U_}.slice/"
     f"crio-{H}.scope", "cri-o", H, U, f"crio-{H}.scope"),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{U_}.slice/"
     f"crio-conmon-{H}.scope", "cri-o", H, U, f"crio-conmon-{H}.scope"),
    (f"/machine.slice/libpod-{H}.scope", "podman", H, None, f"libpod-{H}.scope"),
    (f"/machine.slice/libpod-{H}.scope/container", "podman", H, None, f"libpod-{H}.scope"),
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{H}.scope", "podman", H,
     None, f"libpod-{H}.scope"),
    (f"/machine.slice/libpod-conmon-{H}.scope", "podman", H, None, f"libpod-conmon-{H}.scope"),
    (f"/libpod_parent/libpod-{H}", "podman", H, None, None),
    (f"/kubepods/burstable/pod{U}/{H}", "cri", H, U, None),
    (f"/kubepods/pod{U}/{H}", "cri", H, U, None),
    (f"/kubepods/besteffort/pod{STATIC}/{H}", "cri", H, STATIC, None),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{U_}.slice/"
     f"docker-{H}.scope", "docker", H, U, f"docker-{H}.scope"),
    (f"/kubepods/burstable/pod{U}", "cri", "", U, None),
    ("/lxc.payload.web1", "lxc", "web1", None, None),
    ("/lxc/web1", "lxc", "web1", None, None),
    ("/machine.slice/systemd-nspawn@web.service/payload", "systemd-nspawn", "web", None,
     "systemd-nspawn@web.service"),
    ("/system.slice/nginx.service", None, None, None, "nginx.service"),
    ("/user.slice/user-1000.slice/session-3.scope", None, None, None, "session-3.scope"),
    ("/init.scope", None, None, None, "init.scope"),
    ("/system.slice/docker.service", None, None, None, "docker.service"),
    ("/system.slice/system-getty.slice/getty@tty1.service", None, None, None,
     "getty@tty1.service"),
    ("/", None, None, None, None),
    ("/process_api/08f4016b58eeb475563944ae4b736c69", None, None, None, None),
    (f"/docker-{H}.scope.bak", None, None, None, None),
    (f"/docker/{H[:-1]}", None, None, None, None),
]  # fmt: skip


@pytest.mark.parametrize(("path", "runtime", "ident", "pod", "unit"), SHAPES)
def test_cgroup_shapes(
    path: str, runtime: str | None, ident: str | None, pod: str | None, unit: str | None
) -> None:
    found = containers.from_path(path)
    if runtime is None:
        assert found is None
    else:
        assert found is not None
        assert (found.runtime, found.id, found.pod_uid, found.cgroup) == (runtime, ident, pod, path)
    assert containers.unit(path) == unit


def test_cgroup_file_order_and_attribution() -> None:
    """v2 line first, then name=systemd, then v1; the first path naming a container wins;
    else the first process's unit; the lowest pids are read first."""
    files = {
        10: "12:memory:/docker/" + H + "\n1:name=systemd:/system.slice/a.service\n0::/\n",
        11: f"0::/system.slice/docker-{H}.scope\n",
        5: "1:name=systemd:/system.slice/b.service\n0::/system.slice/c.service\n",
    }
    assert containers.cgroup_paths(files[10]) == ["/", "/system.slice/a.service", f"/docker/{H}"]
    got = containers.attribute([10], files.__getitem__)
    assert got.container is not None and got.container.runtime == "docker"
    assert got.cgroup == f"/docker/{H}"
    got = containers.attribute([11, 5], files.__getitem__)
    assert got.container is not None and got.cgroup == f"/system.slice/docker-{H}.scope"
    got = containers.attribute([5], files.__getitem__)
    assert got.container is None and (got.unit, got.cgroup) == (
        "c.service",
        "/system.slice/c.service",
    )
    assert containers.attribute([], files.__getitem__).cgroup is None
    assert containers.attribute([99], lambda _p: "").container is None


def test_header_and_dict() -> None:
    from sockscope.ops.namespaces import Namespace

    ns = Namespace(4, 4026532999)
    assert ns.header() == "# netns net:[4026532999] pid=none"
    ns.names = ("a", "b")
    ns.paths = ("/run/x",)
    ns.pids = (7, 9)
    ns.container = containers.from_path(f"/kubepods/pod{U}/{H}")
    assert ns.header() == (
        f"# netns net:[4026532999] name=a,b path=/run/x pid=7 container=cri:{H} pod={U}"
    )
    d = ns.to_dict()
    assert d["name"] == "a" and d["names"] == ["a", "b"] and d["pids"] == [7, 9]
    assert d["container"] == {
        "runtime": "cri",
        "id": H,
        "pod_uid": U,
        "cgroup": f"/kubepods/pod{U}/{H}",
    }
    ns.container = None
    ns.unit = "x.service"
    assert ns.header().endswith("pid=7 unit=x.service")


def test_mountinfo_escapes(tmp_path: Path) -> None:
    from sockscope.ops.namespaces import nsfs_mounts

    f = tmp_path / "mountinfo"
    f.write_text(
        "46 45 0:4 net:[4026532174] /run/netns/a rw shared:2 - nsfs nsfs rw\n"
        "47 45 0:4 mnt:[4026532175] /run/mnt rw - nsfs nsfs rw\n"
        "48 45 0:4 net:[4026532176] /tmp/with\\040space rw - nsfs nsfs rw\n"
        "49 45 0:5 / /proc rw - proc proc rw\n"
    )
    assert nsfs_mounts(str(f)) == ["/run/netns/a", "/tmp/with space"]


# --- -N forms that need no privilege ----------------------------------------------------
def _run(argv: list[str], *, user: bool = False, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    if user:  # as nobody, on a world-readable copy when the checkout is private
        with netns.as_nobody(netns.sockscope_cmd()) as (cmd, nobody_env):
            return _exec([*cmd, *argv], {**nobody_env, **(env or {})}, cwd="/")
    return _exec([*netns.sockscope_cmd(), *argv], env or netns.tool_env())


def _exec(argv: list[str], env: dict[str, str], cwd: str | None = None):  # type: ignore[no-untyped-def]
    r = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=120,
        cwd=cwd,
    )
    return r.stdout, r.stderr, r.returncode


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("pid:abc", 'Cannot open network namespace "pid:abc": "abc" is not a process id'),
        ("pid:", 'Cannot open network namespace "pid:": "" is not a process id'),
        ("pid:0", 'Cannot open network namespace "pid:0": "0" is not a process id'),
        ("pid:4194303", 'Cannot open network namespace "pid:4194303": No such process'),
        ("/nonexistent/ns", 'Cannot open network namespace "/nonexistent/ns": No such file or directory'),
    ],
)  # fmt: skip
def test_new_forms_errors(arg: str, message: str) -> None:
    out, err, status = _run(["-N", arg, "-tan"])
    assert (out, err.decode(), status) == (b"", message + "\n", 1)


@needs_root
def test_path_that_is_not_a_netns(tmp_path: Path) -> None:
    f = tmp_path / "plain"
    f.write_text("")
    out, err, status = _run(["-N", str(f), "-tan"])
    assert (out, status) == (b"", 1)
    assert err.decode() == (
        f'setting the network namespace "{f}" failed: Invalid argument'
        " (not a network namespace file)\n"
    )


@needs_oracle
@pytest.mark.parametrize("arg", ["bogus-sockscope", "a/b", "/nonexistent", "", "x" * 300])
def test_ss_messages_kept(arg: str) -> None:
    """What ss rejects is rejected with ss's own text and status."""
    assert ORACLE is not None
    ours = _run(["-N", arg, "-tan"])
    r = subprocess.run([ORACLE, "-N", arg, "-tan"], capture_output=True, check=False)
    assert ours == (r.stdout, r.stderr, r.returncode)


def test_cli_conflicts() -> None:
    for argv, text in (
        (["--all-netns", "-N", "/proc/self/ns/net"], "--all-netns and -N cannot be used together"),
        (["--all-netns", "-D", "/dev/null"], "--all-netns and -D cannot be used together"),
        (["--all-netns", "-E", "-K"], "-K with --all-netns needs a filter expression"),
        (["--all-netns", "-K"], "-K with --all-netns needs a filter expression"),
        (["--all-netns", "-K", "state", "listening"], "-K with --all-netns needs a filter"),
    ):
        if "-N" in argv and REASON is not None:
            continue  # -N is applied (and fails) first without privileges
        out, err, status = _run(argv)
        assert (out, status) == (b"", 255), argv
        assert text in err.decode(), argv
    out, err, status = _run(["--all-netns", "-t", "sport", "=", ":1", "bogus("])
    # the filter is checked once, before any namespace: one message, no output
    assert (out, err, status) == (
        b"",
        b'Error: "bogus(" does not look like a port.\nCannot parse dst/src address.\n',
        1,
    )


# --- the live fleet ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def fleet():  # type: ignore[no-untyped-def]
    if REASON is not None:
        pytest.skip(REASON)
    from allns_fleet import Fleet

    f = Fleet()
    try:
        time.sleep(0.2)
        yield f
    finally:
        f.close()


HEADER = re.compile(rb"^# netns net:\[(\d+)\](.*)$", re.M)


def blocks(out: bytes) -> dict[int, tuple[bytes, bytes]]:
    """inode -> (header line, the output that follows it)."""
    marks = list(HEADER.finditer(out))
    found = {}
    for n, m in enumerate(marks):
        end = marks[n + 1].start() if n + 1 < len(marks) else len(out)
        found[int(m.group(1))] = (m.group(0), out[m.end() + 1 : end])
    return found


def oracle_in(member, argv: list[str]) -> tuple[bytes, bytes, int]:  # type: ignore[no-untyped-def]
    assert ORACLE is not None
    r = subprocess.run(
        ["nsenter", f"--net={member.handle}", ORACLE, *argv],
        env=netns.tool_env(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    return r.stdout, r.stderr, r.returncode


NOTE = re.compile(
    rb"sockscope: --all-netns: the namespaces of \d+ process\(es\) could not be read[^\n]*\n"
)


@pytest.mark.live
def test_fleet_is_big_enough(fleet) -> None:  # type: ignore[no-untyped-def]
    assert len({m.inode for m in fleet.members}) == len(fleet.members) >= 20
    assert sum(m.name is None and m.holder is not None for m in fleet.members) >= 6
    assert sum(m.name is not None and m.holder is None for m in fleet.members) >= 3


@pytest.mark.live
@needs_oracle
@pytest.mark.parametrize(
    "argv",
    [
        ["-tan"],
        ["-uan"],
        ["-xan"],
        ["-tanp"],
        ["-tuanep"],
        ["-an", "-A", "inet,unix"],
        ["-tn", "sport", "=", ":7350", "or", "dport", "=", ":7400"],
        ["-tanm"],
        ["-ltn", "-H"],
        ["-tan", "-Q", "-O"],
        ["-a", "-0", "-w"],
        ["-s"],
        ["-s", "-tl"],
    ],
    ids=" ".join,
)
def test_blocks_equal_ss_inside(fleet, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    out, err, status = _run(["--all-netns", *argv])
    assert status == 0, err
    assert NOTE.sub(b"", err) == b""
    got = blocks(out)
    for member in fleet.members:
        header, body = got[member.inode]
        want = oracle_in(member, argv)
        assert want[1:] == (b"", 0)
        if argv[0] == "-s":
            body, expected = _mask_summary(body), _mask_summary(want[0])
        else:
            expected = want[0]
        assert body == expected, (member.handle, header)


def _mask_summary(out: bytes) -> bytes:
    """``Total:`` and ``TCP:`` count sockets of the whole host (other tests change them)."""
    out = re.sub(rb"^Total: \d+", b"Total: N", out, flags=re.M)
    return re.sub(
        rb"^TCP:   \d+ \(estab (\d+), closed \d+", rb"TCP:   N (estab \1, closed N", out, flags=re.M
    )


@pytest.mark.live
def test_headers_and_attribution(fleet) -> None:  # type: ignore[no-untyped-def]
    out, _err, status = _run(["--all-netns", "-tan"])
    assert status == 0
    got = blocks(out)
    inodes = [int(m.group(1)) for m in HEADER.finditer(out)]
    assert inodes == sorted(inodes) and len(inodes) == len(set(inodes))  # each once
    for m in fleet.members:
        header = got[m.inode][0].decode()
        if m.name:
            assert f" name={m.name} " in header
        if m.holder is None:
            assert " pid=none" in header
        else:
            assert f" pid={m.holder.pid}" in header
            assert f":{m.holder.port} " in got[m.inode][1].decode()
        if m.path:
            assert f" path={m.path} " in header
        if m.expect is not None:
            runtime, ident, pod, unit = m.expect
            if runtime:
                assert f" container={runtime}:{ident}" in header, (m.shape, header)
            if pod:
                assert header.endswith(f" pod={pod}")
            if runtime is None:
                assert header.endswith(f" unit={unit}")


@pytest.mark.live
def test_library(fleet) -> None:  # type: ignore[no-untyped-def]
    import sockscope

    home = os.readlink("/proc/thread-self/ns/net")
    spaces = {ns.inode: ns for ns in sockscope.namespaces()}
    for m in fleet.members:
        ns = spaces[m.inode]
        assert ns.names == ((m.name,) if m.name else ())
        assert ns.pids == ((m.holder.pid,) if m.holder else ())
        if m.path:
            assert ns.paths == (m.path,)
        if m.expect is not None:
            runtime, ident, pod, unit = m.expect
            got = ns.container
            if runtime is None:
                assert got is None
            else:
                assert got is not None and (got.runtime, got.id, got.pod_uid) == (
                    runtime,
                    ident,
                    pod,
                )
            assert ns.unit == unit
    seen: dict[int, set[int]] = {}
    for rec in sockscope.sockets(tables=["tcp"], states=["listening"], netns="all"):
        assert os.readlink("/proc/thread-self/ns/net") == home
        seen.setdefault(rec.netns.inode, set()).add(rec.lport)  # type: ignore[attr-defined]
    for m in fleet.members:
        if m.holder:
            assert seen[m.inode] == {m.holder.port, m.holder.port + 2}
    named = next(m for m in fleet.members if m.holder and m.name)
    unix = [
        r for r in sockscope.sockets(tables=["unix"], netns="all") if r.netns.inode == named.inode
    ]  # type: ignore[attr-defined]
    assert unix and all(r.netns.name == named.name for r in unix)  # type: ignore[attr-defined]
    holder = next(m for m in fleet.members if m.holder and not m.name)
    assert holder.holder is not None
    for spec in (f"pid:{holder.holder.pid}", holder.handle):
        recs = list(sockscope.sockets(tables=["tcp"], states=["listening"], netns=spec))
        assert {r.lport for r in recs} == {holder.holder.port, holder.holder.port + 2}
        assert {r.netns.inode for r in recs} == {holder.inode}  # type: ignore[attr-defined]
    assert os.readlink("/proc/thread-self/ns/net") == home


@pytest.mark.live
def test_json(fleet) -> None:  # type: ignore[no-untyped-def]
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    # the fleet's ports only: other namespaces of the host may hold 100,000 sockets
    ours = ["sport", ">=", ":7300", "and", "sport", "<", ":7600"]
    out, _err, status = _run(["--all-netns", "--json", "-tanp", *ours])
    assert status == 0
    doc = json.loads(out)
    validator.validate(doc)
    assert doc["schema_version"] == "1.1"
    walked = [n["netns"]["inode"] for n in doc["namespaces"]]
    for m in fleet.members:
        assert m.inode in walked
        mine = [s for s in doc["sockets"] if s["netns"]["inode"] == m.inode]
        if m.holder is None:
            assert mine == []
            continue
        assert {s["local_port"] for s in mine} >= {m.holder.port, m.holder.port + 2}
        assert all(s["users"][0]["pid"] == m.holder.pid for s in mine)
        ns = mine[0]["netns"]
        assert ns["pids"] == [m.holder.pid] and ns.get("name") == m.name
        if m.expect is not None and m.expect[0] is not None:
            assert ns["container"]["runtime"] == m.expect[0]
            assert ns["container"]["id"] == m.expect[1]
    out, _err, status = _run(["--all-netns", "--json-lines", "-s", "-t"])
    lines = [json.loads(line) for line in out.splitlines()]
    for line in lines:
        validator.validate(line)
    summaries = [x for x in lines if "summary" in x]
    assert {x["netns"]["inode"] for x in summaries} >= {m.inode for m in fleet.members}


@pytest.mark.live
def test_unprivileged(fleet) -> None:  # type: ignore[no-untyped-def]
    """nobody sees the namespaces' names but enters none but its own: its own namespace
    is listed, the rest is skipped with one clear note and status 1."""
    out, err, status = _run(["--all-netns", "-tan"], user=True)
    assert status == 1
    text = err.decode()
    assert text.startswith("sockscope: --all-netns: ")
    assert "could not be entered (Operation not permitted" in text
    assert "could not be read (Permission denied)" in text
    assert text.count("\n") == 1
    got = blocks(out)
    here = os.stat("/proc/self/ns/net").st_ino
    assert list(got) == [here]
    out, err, status = _run(["-N", f"pid:{fleet.members[-2].holder.pid}", "-tan"], user=True)
    assert (out, status) == (b"", 1)
    assert err.endswith(b": Permission denied\n")


@pytest.mark.live
def test_kill_in_the_right_namespace(fleet) -> None:  # type: ignore[no-untyped-def]
    m = next(x for x in fleet.members if x.holder is not None and x.name)
    port = m.holder.port
    before = sockscope_in(m, ["-tn", "state", "established"])
    assert f":{port}".encode() in before
    out, err, status = _run(["--all-netns", "-K", "-tn", "dst", f"127.0.0.1:{port}"])
    assert status == 0, err
    got = blocks(out)
    assert f"127.0.0.1:{port}".encode() in got[m.inode][1]
    assert all(
        f":{port} ".encode() not in body for ino, (_h, body) in got.items() if ino != m.inode
    )
    after = sockscope_in(m, ["-tn", "state", "established", "dst", f"127.0.0.1:{port}"])
    assert after.count(b"\n") == 1  # only the header left


def sockscope_in(member, argv: list[str]) -> bytes:  # type: ignore[no-untyped-def]
    r = subprocess.run(
        ["nsenter", f"--net={member.handle}", *netns.sockscope_cmd(), *argv],
        env=netns.tool_env(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return r.stdout


# --- leaving, and namespaces that go ---------------------------------------------------
@pytest.mark.live
# an interrupted listing leaves its dump sockets to the collector (as ss leaves them to exit)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_namespace_restored_on_error_and_signal(fleet) -> None:  # type: ignore[no-untyped-def]
    import sockscope
    from sockscope.ops import namespaces

    home = os.readlink("/proc/thread-self/ns/net")
    spaces = [
        ns
        for ns in namespaces.discover().namespaces
        if ns.inode in {m.inode for m in fleet.members}
    ]

    class Boom(Exception):
        pass

    def make():  # type: ignore[no-untyped-def]
        assert os.readlink("/proc/thread-self/ns/net") != home
        raise Boom

    with pytest.raises(Boom):
        list(namespaces.each(spaces, make))
    assert os.readlink("/proc/thread-self/ns/net") == home

    # a signal handler raising while the walk is inside a namespace
    def slow():  # type: ignore[no-untyped-def]
        while True:
            time.sleep(0.001)
            yield 1

    def alarm(_s, _f):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, alarm)
    try:
        for delay in (0.01, 0.05, 0.2):
            signal.setitimer(signal.ITIMER_REAL, delay)
            with pytest.raises(KeyboardInterrupt):
                for _ in namespaces.each(spaces, slow, batch=100000):
                    pass
            assert os.readlink("/proc/thread-self/ns/net") == home
        # the command, run in this process, interrupted in the middle of the walk
        for delay in (0.05, 0.15):
            signal.setitimer(signal.ITIMER_REAL, delay)
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                try:
                    status = sockscope.main(["--all-netns", "-an"])
                except KeyboardInterrupt:
                    status = 130
            signal.setitimer(signal.ITIMER_REAL, 0)
            gc.enable()  # main() turns the collector off for its listing
            gc.collect()
            assert status in (0, 130)
            assert os.readlink("/proc/thread-self/ns/net") == home
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.live
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_namespace_restored_whenever_the_signal_lands(fleet) -> None:  # type: ignore[no-untyped-def]
    """A signal handler that raises can land anywhere: just after the setns into a
    namespace, or inside the ``finally`` just before the setns home. Hundreds of
    interrupts at random sub-millisecond delays over walks that do almost nothing but
    enter and leave namespaces (batch=1), so that these windows are hit; the thread must
    be home after every one, through each(), call_inside() and Visit.call() (the walks of
    --all-netns, -E --all-netns and --watch). Before netns.call_there, a handler landing
    in those windows left the thread, and so the rest of the process, in a fleet
    namespace."""
    import random

    from sockscope.ops import namespaces
    from sockscope.ops import netns as ops_netns

    home = os.readlink("/proc/thread-self/ns/net")
    home_fd = ops_netns.current()
    spaces = [
        ns
        for ns in namespaces.discover().namespaces
        if ns.inode in {m.inode for m in fleet.members}
    ]

    def alarm(_s, _f):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    def forever():  # type: ignore[no-untyped-def]
        while True:
            yield 1

    rnd = random.Random(1105)
    old = signal.signal(signal.SIGALRM, alarm)
    interrupted = 0
    try:
        for i in range(600):
            delay = rnd.uniform(0.00005, 0.002)
            try:
                # armed inside the try: a descheduled test can see the alarm as soon as
                # setitimer returns (the interpreter checks for signals right after a C
                # call), and that interrupt must be counted, not fail the test
                signal.setitimer(signal.ITIMER_REAL, delay)
                if i % 3 == 0:
                    for _ in namespaces.each(spaces, forever, batch=1):
                        pass
                else:
                    visits = [namespaces.Visit(ns) for ns in spaces] if i % 3 == 2 else []
                    try:
                        while True:
                            for ns in spaces:
                                namespaces.call_inside(ns, int)
                            for v in visits:
                                v.call(int)
                    finally:
                        for v in visits:
                            v.close()
            except KeyboardInterrupt:
                interrupted += 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            assert os.readlink("/proc/thread-self/ns/net") == home, i
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if os.readlink("/proc/thread-self/ns/net") != home:  # do not poison later tests
            ops_netns.setns(home_fd)
        os.close(home_fd)
    assert interrupted == 600


@pytest.mark.live
def test_namespace_gone_during_the_walk() -> None:
    """A namespace whose name is deleted and whose process exits after the scan is
    skipped: no block, no message, status 0; the others are listed."""
    if REASON is not None:
        pytest.skip(REASON)
    from allns_fleet import Holder
    from sockscope.ops import namespaces

    name = f"sockscope-allns-gone-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    holder = None
    try:
        path = f"/var/run/netns/{name}"
        subprocess.run(["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"], check=True)
        holder = Holder(["nsenter", f"--net={path}"], 7900, name)
        doomed = os.stat(path).st_ino
        found = namespaces.discover()
        assert doomed in {ns.inode for ns in found.namespaces}
        listed: list[int] = []

        def make():  # type: ignore[no-untyped-def]
            key = namespaces.current_key()
            if holder is not None and holder.proc.poll() is None:
                holder.close()  # the namespace goes while the walk is under way
                subprocess.run(["ip", "netns", "del", name], check=True)
            assert key is not None
            listed.append(key[1])
            return [key[1]]

        skipped: list[int] = []
        list(
            namespaces.each(found.namespaces, make, on_skip=lambda ns, _e: skipped.append(ns.inode))
        )
        if found.namespaces[0].inode != doomed:
            assert doomed not in listed and doomed in skipped
        assert len(listed) + len(skipped) == len(found.namespaces)
        # and the command, with a scan that is stale in the same way
        from sockscope.cli import allns

        out, err, status = _inprocess(allns, found, ["--all-netns", "-tan"])
        assert status == 0 and NOTE.sub(b"", err) == b""
        assert doomed not in blocks(out)
    finally:
        if holder is not None:
            holder.close()
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _inprocess(allns, found, argv):  # type: ignore[no-untyped-def]
    """Run the command in this process with ``discover`` returning ``found``."""
    import io

    import sockscope

    real = allns.discover
    allns.discover = lambda: found
    out, err = io.BytesIO(), io.StringIO()

    wrapper = io.TextIOWrapper(out, encoding="latin-1", write_through=True)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = wrapper, err
    try:
        status = sockscope.main(argv)
        wrapper.flush()
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        allns.discover = real
    return out.getvalue(), err.getvalue().encode(), status
