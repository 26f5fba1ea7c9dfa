"""sockscope.procmap: the -p/-T process map (user_ent_hash_build / find_entry).

Fake ``PROC_ROOT`` trees are built in tmp_path; with the ss 7.1 oracle present the
same tree (plus a ``net/tcp`` naming the inodes) is listed by both programs and
compared byte for byte, so directory order is whatever this file system gives
both.  A live test compares real processes (forked, threaded) in a netns.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netns
from conftest import ORACLE, ORACLE_REASON, needs_oracle
from sockscope.ops.procmap import ProcessMap, scan_int, selinux_enabled, task_name
from sockscope.options import Options

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def test_scan_int_is_sscanf_d() -> None:
    assert scan_int("123") == 123
    assert scan_int("0012") == 12
    assert scan_int("12abc") == 12
    assert scan_int(" 7") == 7
    assert scan_int("+5") == 5
    assert scan_int("-3") == -3
    assert scan_int("self") is None
    assert scan_int("") is None
    assert scan_int("-") is None
    assert scan_int("4294967297") == 1  # strtol then truncation to int


@pytest.mark.parametrize(
    ("stat", "name"),
    [
        (b"1 (systemd) S 0", "systemd"),
        (b"42 (a)b) S 1", "a"),  # cut at the first ')'
        (b"42 (esc\x1b[31mX\xe9) S", "esc.[31mX?"),  # controls -> '.', high bytes -> '?'
        (b"42 (del\x7f\tx) S", "del..x"),
        (b"42 (abcdefghijklmnopqrstuvwxyz) S", "abcdefghijklmnopqrs"),  # char task[20]
        (b"42 () S", ""),  # %[^)] matches nothing: fscanf fails
        (b"x (name) S", ""),
        (b"42name) S", ""),
        (b"  42   (spaced) S", "spaced"),
        (b"42 (no close paren", "no close paren"),
        (b"42 (nul\0after) S", "nul"),
    ],
)
def test_task_name(stat: bytes, name: str) -> None:
    assert task_name(stat) == name


def _opts(**kw: int) -> Options:
    o = Options()
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def make_tree(root: Path, owners: dict[int, list[tuple[int, int]]], names: dict[int, bytes],
              threads: dict[int, list[int]] | None = None) -> None:  # fmt: skip
    """pid -> [(fd, inode)], pid -> comm; threads: pid -> tids (their dirs hold the fds)."""
    for pid, fds in owners.items():
        d = root / str(pid)
        (d / "fd").mkdir(parents=True, exist_ok=True)
        (d / "stat").write_bytes(b"%d (%s) S 1 1 1" % (pid, names.get(pid, b"proc")))
        for fd, ino in fds:
            target = f"socket:[{ino}]" if ino else "/dev/null"
            os.symlink(target, d / "fd" / str(fd))
    for pid, tids in (threads or {}).items():
        for tid in [pid, *tids]:
            (root / str(pid) / "task" / str(tid)).mkdir(parents=True, exist_ok=True)


def test_users_order_is_reverse_discovery(tmp_path: Path) -> None:
    owners = {10: [(3, 500), (7, 500), (8, 0)], 20: [(4, 500), (5, 600)], 30: [(1, 700)]}
    make_tree(tmp_path, owners, {10: b"one", 20: b"two", 30: b"three"})
    (tmp_path / "self").mkdir()
    (tmp_path / "sys").mkdir()
    pmap = ProcessMap.build({"PROC_ROOT": str(tmp_path)}, _opts(show_processes=1))
    order = [int(n) for n in os.listdir(tmp_path) if n.isdigit()]
    found = []
    for pid in order:
        fds = [int(n) for n in os.listdir(tmp_path / str(pid) / "fd")]
        found += [f'("{ {10: "one", 20: "two"}.get(pid, "three")}",pid={pid},fd={fd})'
                  for fd in fds if dict(owners[pid])[fd] == 500]  # fmt: skip
    assert pmap.users(500) == ",".join(reversed(found))
    assert pmap.users(600) == '("two",pid=20,fd=5)'
    assert pmap.users(700) == '("three",pid=30,fd=1)'
    assert pmap.users(0) == ""
    assert pmap.users(12345) == ""
    assert 500 in pmap and len(pmap) == 3


def test_threads_and_contexts(tmp_path: Path) -> None:
    make_tree(tmp_path, {10: [(3, 500)], 11: [(3, 500)]}, {10: b"main", 11: b"worker"}, {10: [11]})
    pmap = ProcessMap.build({"PROC_ROOT": str(tmp_path) + "/"}, _opts(show_threads=1))
    entries = pmap.users(500).split("),(")
    assert '("worker",pid=10,tid=11,fd=3' in pmap.users(500)
    assert '("main",pid=10,tid=10,fd=3' in pmap.users(500)
    assert '("worker",pid=11,tid=11,fd=3' in pmap.users(500)
    assert len(entries) == 3
    ctx = ProcessMap.build({"PROC_ROOT": str(tmp_path)}, _opts(show_proc_ctx=1, show_processes=1))
    assert ctx.users(500).count("proc_ctx=") == 2
    both = ProcessMap.build(
        {"PROC_ROOT": str(tmp_path)}, _opts(show_proc_ctx=1, show_sock_ctx=1, show_processes=1)
    )
    assert both.users(500).count(",sock_ctx=") == 2


def test_missing_root_and_unreadable_parts(tmp_path: Path) -> None:
    assert ProcessMap.build({"PROC_ROOT": str(tmp_path / "nope")}, _opts()).users(1) == ""
    (tmp_path / "5").mkdir()  # a pid without fd/
    make_tree(tmp_path, {6: [(1, 9)]}, {})
    (tmp_path / "6" / "stat").unlink()  # no stat: empty task name
    pmap = ProcessMap.build({"PROC_ROOT": str(tmp_path)}, _opts())
    assert pmap.users(9) == '("",pid=6,fd=1)'


def test_scales_linearly(tmp_path: Path) -> None:
    """20,000 socket fds over 100 pids: built in well under ss's per-fd cost, O(1) lookups."""
    owners = {pid: [(fd, pid * 1000 + fd) for fd in range(200)] for pid in range(1000, 1100)}
    make_tree(tmp_path, owners, {})
    t0 = time.perf_counter()
    pmap = ProcessMap.build({"PROC_ROOT": str(tmp_path)}, _opts(show_processes=1))
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    for pid, fds in owners.items():
        for fd, ino in fds:
            assert pmap.users(ino) == f'("proc",pid={pid},fd={fd})'
    looked = time.perf_counter() - t0
    assert len(pmap) == 20000
    assert built < 5 and looked < 1


# ---------------------------------------------------------------- vs the oracle


def _net_tcp(inodes: list[int]) -> bytes:
    head = (
        b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
        b"   uid  timeout inode\n"
    )
    rows = [
        b"%4d: 0100007F:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
        b"     0        0 %d 1 0000000000000000 100 0 0 10 0\n" % (i, 5000 + i, ino)
        for i, ino in enumerate(inodes)
    ]
    return head + b"".join(rows)


def _both(root: Path, *args: str) -> tuple[bytes, bytes]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PROC_ROOT": str(root)}
    want = subprocess.run([ORACLE, *args], env=env, capture_output=True, check=False)
    got = subprocess.run(
        [sys.executable, "-m", "sockscope", *args],
        env={**env, "PYTHONPATH": str(SRC)},
        capture_output=True,
        check=False,
    )
    assert got.returncode == want.returncode, got.stderr
    return want.stdout, got.stdout


@needs_oracle
def test_fake_tree_same_as_ss(tmp_path: Path) -> None:
    owners = {
        300: [(3, 801), (4, 802), (9, 801), (2, 0)],
        41: [(5, 801), (6, 803)],
        7000: [(0, 804), (12, 802)],
        55: [(3, 805)],
    }
    names = {300: b"esc\x1b[31mX\xe9", 41: b"a)b", 7000: b"twenty-characters-xx", 55: b""}
    make_tree(tmp_path, owners, names, {300: [301, 302], 41: [42]})
    for tid, fds in ((301, [(3, 801)]), (302, [(8, 804)]), (42, [(1, 805)])):
        make_tree(tmp_path, {tid: fds}, {tid: b"thr%d" % tid})
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_bytes(_net_tcp([801, 802, 803, 804, 805, 806]))
    (tmp_path / "self").mkdir()
    for args in (["-tanp"], ["-tanpT"], ["-tnpl"], ["-tanpO"], ["-tanpe"], ["-tanT"]):
        want, got = _both(tmp_path, *args)
        assert got == want, (
            f"{args}:\n{want.decode(errors='replace')}\n---\n{got.decode(errors='replace')}"
        )


@needs_oracle
def test_a_field_holds_at_most_64_kib(tmp_path: Path) -> None:
    """buf_update caps a field at USHRT_MAX bytes and drops the rest of its text: the
    ``users:`` of a socket open on 4,000 descriptors (about 140 KB) is cut there, and
    the column widths follow the cut length."""
    make_tree(tmp_path, {300: [(fd, 801) for fd in range(3, 4003)], 41: [(3, 802)]},
              {300: b"fifteen-chars-x", 41: b"short"})  # fmt: skip
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_bytes(_net_tcp([801, 802]))
    (tmp_path / "self").mkdir()
    for args in (["-tanp"], ["-tanpO"], ["-tnpl"]):
        want, got = _both(tmp_path, *args)
        assert got == want, args
    assert max(map(len, want.splitlines())) > 0xFFFF  # the cut field, padded


@pytest.mark.live
def test_live_forked_and_threaded_same_as_ss() -> None:
    reason = netns.live_reason()
    if reason or ORACLE is None:
        pytest.skip(reason or ORACLE_REASON)
    code = r"""
import os, socket, sys, threading, time
l = socket.socket(); l.bind(("127.0.0.1", 7401)); l.listen()
c = socket.socket(); c.connect(("127.0.0.1", 7401)); s, _ = l.accept()
dup = os.dup(l.fileno())
for _ in range(3):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
if os.fork() == 0:
    sys.stdin.read(); os._exit(0)
print("ready", flush=True)
sys.stdin.read()
"""
    ns = netns.Netns(f"sockscope-pm-{os.getpid()}")
    p = subprocess.Popen([*ns.enter(), sys.executable, "-c", code], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert p.stdout is not None
        assert p.stdout.readline().startswith(b"ready")
        env = netns.tool_env()
        for args in (["-tanp"], ["-tanpT"], ["-tlp"]):
            want = ns.run([ORACLE, *args], env=env).stdout
            got = ns.run([*netns.sockscope_cmd(), *args], env=env).stdout
            assert got == want, f"{args}:\n{want.decode()}\n---\n{got.decode()}"
    finally:
        p.communicate(timeout=30)
        ns.close()


def _core_or_skip():  # type: ignore[no-untyped-def]
    from sockscope.accel import core

    mod = core()
    if mod is None:
        if os.environ.get("SOCKSCOPE_EXPECT_COMPILED") == "1":
            pytest.fail("the compiled core was expected")
        pytest.skip("no compiled core")
    return mod


#: fd names and link targets of fake fd directories: the plain forms, which the compiled
#: loop reads, and the damaged ones, which make it hand the directory to the Python loop
NAMES = ["0", "3", "17", "2147483647", "2147483648", "4294967299", "007", "-1", "+4", " 9",
         "9 ", "x", "1e3", "12abc", "٣"]  # fmt: skip
TARGETS = ["socket:[123]", "socket:[0]", "socket:[4294967295]", "socket:[4294967296]",
           "socket:[]", "socket:[12", "socket:[1]x", "socket:[ 5]", "socket:[-5]",
           "socket:[0012]", "socket:[" + "9" * 60 + "]", "socket:[" + "7" * 54 + "]",
           "pipe:[5]", "anon_inode:[eventfd]", "/dev/null", "socket:", "Socket:[1]"]  # fmt: skip


def test_compiled_fd_loop_equals_the_python_loop(tmp_path: Path) -> None:
    """_core.fd_sockets gives the Python loop's (fd, inode) list for plain directories
    and declines (None) every other: 3,000 random fake fd directories, then what the
    Python loop reads of them is what a listing uses either way."""
    import random

    from sockscope.ops.procmap import _fd_sockets

    mod = _core_or_skip()
    rnd = random.Random(1205)
    plain_seen = declined = 0
    for i in range(3000):
        d = tmp_path / f"fd{i}"
        d.mkdir()
        plain = rnd.random() < 0.5
        names = NAMES[:4] if plain else NAMES
        targets = TARGETS[:3] + TARGETS[12:15] if plain else TARGETS
        for name in rnd.sample(names, rnd.randint(0, len(names))):
            (d / name).symlink_to(rnd.choice(targets))
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fast = mod.fd_sockets(dfd)
            ref = _fd_sockets(dfd)
        finally:
            os.close(dfd)
        if fast is None:
            declined += 1
        else:
            plain_seen += 1
            assert fast == ref, (sorted(os.listdir(d)), fast, ref)
        if plain:
            assert fast is not None, sorted((n, os.readlink(d / n)) for n in os.listdir(d))
    assert plain_seen > 1000 and declined > 500


def test_compiled_fd_loop_on_real_processes() -> None:
    """On this host's /proc: a child holding sockets, pipes and files at known fds gives
    the same list from both loops; every other readable fd directory too, retried when
    its process opened or closed something in between."""
    from sockscope.ops.procmap import _fd_sockets

    mod = _core_or_skip()
    code = (
        "import os, socket, sys\n"
        "keep = [socket.socket() for _ in range(50)] + [os.pipe() for _ in range(5)]\n"
        "keep += [socket.socketpair() for _ in range(20)]\n"
        "print(len(keep), flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline()
        dfd = os.open(f"/proc/{child.pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
        try:
            fast, ref = mod.fd_sockets(dfd), _fd_sockets(dfd)
        finally:
            os.close(dfd)
        assert fast == ref and len(ref) >= 90
        checked = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                dfd = os.open(f"/proc/{name}/fd", os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                continue
            try:
                for _ in range(3):
                    try:
                        fast, ref = mod.fd_sockets(dfd), _fd_sockets(dfd)
                    except OSError:  # the process exited
                        break
                    if fast == ref:
                        checked += 1
                        break
                else:
                    pytest.fail(f"pid {name}: {fast} != {ref}")
            finally:
                os.close(dfd)
        assert checked > 5
    finally:
        child.communicate("")


# --- -Z/-z: is SELinux enabled (libselinux's is_selinux_enabled) -----------------------
_SELINUXFS = "selinuxfs /sys/fs/selinux selinuxfs {} 0 0\n"


@pytest.mark.parametrize(
    ("mounts", "known", "config", "enabled"),
    [
        ("", True, True, False),  # no selinuxfs mounted
        (_SELINUXFS.format("rw,relatime"), True, True, True),
        (_SELINUXFS.format("rw,relatime"), True, False, False),  # no /etc/selinux/config
        (_SELINUXFS.format("ro,relatime"), True, True, False),  # read-only: disabled
        # mounted elsewhere: found through /proc/filesystems and /proc/mounts
        ("none /mnt/sel selinuxfs rw 0 0\n", True, True, True),
        ("none /mnt/sel selinuxfs rw 0 0\n", False, True, False),
        # the last mount on a directory is the one statfs sees
        (_SELINUXFS.format("rw") + "none /sys/fs/selinux tmpfs rw 0 0\n", True, True, False),
        # /sys/fs/selinux read-only stops the search before /proc/mounts' others
        (_SELINUXFS.format("ro") + "none /mnt/sel selinuxfs rw 0 0\n", True, True, False),
    ],
)
def test_selinux_enabled_rules(
    tmp_path: Path, mounts: str, known: bool, config: bool, enabled: bool
) -> None:
    """init_selinuxmnt + has_selinux_config of libselinux 3.x (src/init.c, enabled.c)."""
    (tmp_path / "mounts").write_text("sysfs /sys sysfs rw 0 0\n" + mounts)
    (tmp_path / "filesystems").write_text("nodev\tsysfs\n" + ("nodev\tselinuxfs\n" * known))
    if config:
        (tmp_path / "config").write_text("SELINUX=enforcing\n")
    paths = [str(tmp_path / name) for name in ("mounts", "filesystems", "config")]
    assert selinux_enabled(*paths) is enabled


def test_selinux_enabled_as_libselinux_here() -> None:
    """The same answer as the host's libselinux (the library ss links), when it has one."""
    try:
        lib = ctypes.CDLL("libselinux.so.1")
    except OSError:
        pytest.skip("no libselinux.so.1 on this host")
    assert selinux_enabled() is (lib.is_selinux_enabled() == 1)


_FAKE_ENFORCE = (
    "mount -t tmpfs none /sys/fs && mkdir /sys/fs/selinux && "
    ': > /sys/fs/selinux/enforce && exec "$@"'
)


@needs_oracle
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_Z_without_selinuxfs_as_ss() -> None:
    """A file /sys/fs/selinux/enforce on a tmpfs is no selinuxfs: ss -Z says SELinux is
    not enabled (status 1), whatever files lie there (in a private mount namespace)."""
    out = []
    for tool in ([ORACLE], netns.sockscope_cmd()):
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", _FAKE_ENFORCE, "sh"]
        proc = subprocess.run(
            [*argv, *tool, "-Z", "-tan"],
            env=netns.tool_env(),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        out.append((proc.returncode, proc.stderr.replace(b"sockscope:", b"ss:")))
    assert out[0] == (1, b"ss: SELinux is not enabled.\n")
    assert out[1] == out[0]
