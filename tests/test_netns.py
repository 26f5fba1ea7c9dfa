"""``-N NAME`` (netns_switch) and the library's namespace helpers.

Live tests (marked ``live``) use a private namespace with the test's own sockets (see
test_kill.populated) and compare with the 7.1 oracle run the same way. ``/etc/netns``
entries are created under a unique name and removed afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import netns
from sockscope.cli.status import exit_status
from sockscope.errors import NamespaceError, SockscopeError
from sockscope.ops import netns as ops
from test_kill import ORACLE, REASON, comparable, populated

needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")
SRC = Path(__file__).resolve().parent.parent / "src"
IS_71 = netns.oracle()[1]
needs_71 = pytest.mark.skipif(not IS_71, reason="needs the iproute2 7.1 oracle")


def run(cmd: list[str], argv: list[str], *, user: bool = False) -> tuple[bytes, bytes, int]:
    if user:  # as nobody, on a world-readable copy when the checkout is private
        with netns.as_nobody(cmd) as (cmd_as_nobody, env):
            return _run([*cmd_as_nobody, *argv], env, cwd="/")
    return _run([*cmd, *argv], netns.tool_env())


def _run(argv: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[bytes, bytes, int]:
    r = subprocess.run(
        argv, env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False, timeout=60,
        cwd=cwd,
    )  # fmt: skip
    return r.stdout, r.stderr, r.returncode


def both(argv: list[str], *, user: bool = False) -> tuple[bytes, bytes, int]:
    ours = run(netns.sockscope_cmd(), argv, user=user)
    if IS_71:
        assert comparable(ours) == comparable(run([ORACLE], argv, user=user))
    return ours


@contextlib.contextmanager
def etc_netns(name: str, files: dict[str, bytes]):  # type: ignore[no-untyped-def]
    """/etc/netns/NAME/<files>, removed afterwards (and /etc/netns if we made it)."""
    base = Path("/etc/netns")
    made_base = not base.exists()
    d = base / name
    d.mkdir(parents=True)
    try:
        for fname, data in files.items():
            (d / fname).write_bytes(data)
        yield d
    finally:
        shutil.rmtree(d)
        if made_base:
            with contextlib.suppress(OSError):
                base.rmdir()


@pytest.mark.live
@needs_root
@pytest.mark.parametrize(
    "argv",
    [["-tan"], ["-uan"], ["-tuan", "sport", "=", ":7200"], ["-s"], ["-an", "-A", "inet"]],
    ids=["tan", "uan", "filter", "summary", "inet"],
)
def test_lists_the_namespace(argv: list[str]) -> None:
    with populated() as (ns, _h):
        out, err, status = both(["-N", ns.name, *argv])
        direct = run([*ns.enter(), *netns.sockscope_cmd()], argv)
    assert (err, status) == (b"", 0)
    assert comparable((out, err, status)) == comparable(direct)
    if argv != ["-s"]:
        assert b"7200" in out or b"7210" in out


@pytest.mark.live
@needs_root
def test_missing_namespace() -> None:
    out = both(["-N", "sockscope-no-such-ns", "-tan"])
    assert out == (
        b"",
        b'Cannot open network namespace "sockscope-no-such-ns": No such file or directory\n',
        1,
    )


@pytest.mark.live
@needs_root
def test_no_pid_fallback() -> None:
    """ss's -N takes names only: a pid is a name that does not exist."""
    out = both(["-N", str(os.getpid()), "-tan"])
    assert out[1].startswith(b'Cannot open network namespace "') and out[2] == 1


@pytest.mark.live
@needs_root
def test_unprivileged() -> None:
    with populated() as (ns, _h):
        out = both(["-N", ns.name, "-tan"], user=True)
    assert out == (
        b"",
        f'setting the network namespace "{ns.name}" failed: Operation not permitted\n'.encode(),
        1,
    )


@pytest.mark.live
@needs_root
def test_etc_netns_files_are_bound() -> None:
    """/etc/netns/NAME/hosts replaces /etc/hosts for filter resolution; a file with no
    /etc counterpart gives ``Bind A -> B failed`` (not fatal)."""
    with populated() as (ns, _h):
        hosts = b"127.0.0.1 localhost\n127.0.0.1 sockscope-peer-name\n"
        with etc_netns(ns.name, {"hosts": hosts, "sockscope-nonexistent": b""}):
            out, err, status = both(["-N", ns.name, "-tn", "dst", "sockscope-peer-name"])
        assert status == 0
        assert (
            err
            == (
                f"Bind /etc/netns/{ns.name}/sockscope-nonexistent -> /etc/sockscope-nonexistent"
                " failed: No such file or directory\n"
            ).encode()
        )
        assert b"127.0.0.1:7200" in out
        # the host's /etc is untouched
        assert b"sockscope-peer-name" not in Path("/etc/hosts").read_bytes()
        out, err, status = both(["-N", ns.name, "-tn", "dst", "sockscope-peer-name"])
        assert status == 1 and b"sockscope-peer-name" in err


@pytest.mark.live
@needs_root
def test_host_mounts_untouched() -> None:
    """The /sys remount happens in a private mount namespace."""
    before = sorted(os.listdir("/sys/class/net"))
    with populated() as (ns, _h):
        code = (
            "import os, sys\n"
            "from sockscope.ops import netns\n"
            "netns.switch(sys.argv[1])\n"
            "print(' '.join(sorted(os.listdir('/sys/class/net'))))\n"
        )
        out, err, status = run([sys.executable, "-c", code, ns.name], [])
    assert (out, err, status) == (b"lo\n", b"", 0)
    assert sorted(os.listdir("/sys/class/net")) == before


# --- library ----------------------------------------------------------------------------
def _here() -> str:
    return os.readlink("/proc/thread-self/ns/net")


@pytest.mark.live
@needs_root
def test_entered_and_iterate_come_back() -> None:
    home = _here()
    with populated() as (ns, _h):
        with ops.entered(ns.name):
            inside = _here()
            assert inside != home
        assert _here() == home

        def gen():  # type: ignore[no-untyped-def]
            for _ in range(3):
                yield _here()

        seen = []
        for item in ops.iterate(ns.name, gen):
            seen.append(item)
            assert _here() == home  # the consumer runs at home between items
        assert seen == [inside] * 3 and _here() == home
        # an early exit closes the inner generator inside and comes back
        it = ops.iterate(ns.name, gen)
        next(it)
        it.close()
        assert _here() == home


@pytest.mark.live
@needs_root
def test_entered_is_per_thread() -> None:
    home = _here()
    with populated() as (ns, _h):
        seen: list[str] = []

        def worker() -> None:
            with ops.entered(ns.name):
                seen.append(_here())

        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen and seen[0] != home and _here() == home


@needs_root
def test_library_visits_come_home_when_a_signal_lands(monkeypatch: pytest.MonkeyPatch) -> None:
    """summary(netns=) and metrics(netns=) visit through netns.call_there: a signal's
    exception that lands just after the namespace was joined (modelled here in
    entered()'s __enter__, the gap a ``with`` block leaves) finds the thread already
    home while the exception is still being handled."""
    import sockscope

    home = _here()
    space = netns.Netns(f"sockscope-visit-{os.getpid()}")
    real_enter = contextlib._GeneratorContextManager.__enter__

    def interrupted(self):  # type: ignore[no-untyped-def]
        value = real_enter(self)
        if self.gen.__name__ != "entered":
            return value
        raise KeyboardInterrupt  # as a SIGINT landing before the with block's try

    try:
        monkeypatch.setattr(contextlib._GeneratorContextManager, "__enter__", interrupted)
        for visit in (
            lambda: sockscope.summary(netns=space.name),
            lambda: sockscope.metrics(sockscope.Query(netns=space.name)),
        ):
            try:
                visit()
            except KeyboardInterrupt:
                assert _here() == home
            assert _here() == home
    finally:
        monkeypatch.undo()
        space.close()


def test_missing_namespace_library() -> None:
    with pytest.raises(SockscopeError) as info, ops.entered("sockscope-no-such-ns"):
        pass
    assert isinstance(info.value, NamespaceError)
    assert info.value.errno == errno.ENOENT
    assert exit_status(info.value) == 1
    assert info.value.message.startswith('Cannot open network namespace "sockscope-no-such-ns": ')
    with pytest.raises(SockscopeError):
        list(ops.iterate("sockscope-no-such-ns", lambda: iter(())))


@needs_root
def test_no_descriptor_left_when_home_cannot_be_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """entered() and iterate() open the namespace to visit, then the caller's own; when
    the second open fails (EMFILE near RLIMIT_NOFILE), the first is closed, not leaked."""
    space = netns.Netns(f"sockscope-home-{os.getpid()}")
    try:

        def no_descriptor() -> int:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

        monkeypatch.setattr(ops, "current", no_descriptor)
        before = sorted(os.listdir("/proc/self/fd"))
        for attempt in (
            lambda: ops.entered(space.name).__enter__(),
            lambda: next(ops.iterate(space.name, list)),
        ):
            with pytest.raises(OSError):
                attempt()
            assert sorted(os.listdir("/proc/self/fd")) == before
    finally:
        space.close()
