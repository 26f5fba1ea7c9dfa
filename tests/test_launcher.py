"""The installed command: scripts/sockscope (sh) starting scripts/sockscope-run with
``-E -S``.

Each test builds an installation the way pip lays one out, without the network: a venv
(``--without-pip``), the package in its site-packages (a link, as a regular install, or a
``.pth`` path line, as an editable one) and both scripts in its bin directory, the
``#!python`` line of sockscope-run rewritten to the venv's interpreter exactly as pip's
``fix_script`` does. A ``.pth`` file with an ``import`` line leaves a marker file when
``site`` runs, which tells whether the start-up skipped it. ``.ci/check_dist.py`` checks
that the real wheel carries both scripts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ORACLE

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
PKG = REPO / "src" / "sockscope"

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs /bin/sh")


#: how an installer rewrites sockscope-run's ``#!python`` line for ``python``: pip's
#: fix_script writes the path as it is (spaces too); uv (like distlib's wrappers) writes
#: a /bin/sh line and the path on the next, for a path with spaces or over 127 bytes,
#: or relative to the script for a relocatable venv
HEADERS = {
    "pip": lambda python: b"#!" + os.fsencode(python) + b"\n",
    "uv-long": lambda python: b"#!/bin/sh\n'''exec' '" + os.fsencode(python)
    + b"' \"$0\" \"$@\"\n' '''\n",
    "uv-relocatable": lambda _python: b"#!/bin/sh\n'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"/'python'"
    b" \"$0\" \"$@\"\n' '''\n",
}  # fmt: skip


class Install:
    def __init__(self, root: Path, editable: bool, header: str = "pip", copy: bool = False) -> None:
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(root)],
            check=True,
            capture_output=True,
        )
        self.root = root
        self.bin = root / "bin"
        v = sys.version_info
        self.site = root / "lib" / f"python{v[0]}.{v[1]}" / "site-packages"
        if editable:
            (self.site / "__editable__.sockscope-0.pth").write_text(f"{PKG.parent}\n")
        elif copy:  # its own files (and caches): what a regular install writes is its own
            shutil.copytree(
                PKG, self.site / "sockscope", ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            (self.site / "sockscope").symlink_to(PKG)
        self.site_ran = root / "site-ran"
        (self.site / "zz_marker.pth").write_text(
            f"import pathlib; pathlib.Path({str(self.site_ran)!r}).touch()\n"
        )
        for name in ("sockscope", "sockscope-run"):
            data = (SCRIPTS / name).read_bytes()
            if data.startswith(b"#!python"):  # the installer's rewrite
                data = HEADERS[header](self.bin / "python") + data.split(b"\n", 1)[1]
            target = self.bin / name
            target.write_bytes(data)
            target.chmod(0o755)

    def run(
        self, *args: str, cmd: str | None = None, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "LC_ALL": "C"}
        env.update(kw.pop("env", {}))  # type: ignore[arg-type]
        return subprocess.run(
            [cmd or str(self.bin / "sockscope"), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            **kw,  # type: ignore[arg-type]
        )


def reference(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The same arguments through ``python -m sockscope`` from the source tree (stdin
    /dev/null)."""
    return subprocess.run(
        [sys.executable, "-m", "sockscope", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PKG.parent), "LC_ALL": "C", **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def version_text() -> str:
    return reference("-V").stdout


@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_starts_without_site(tmp_path: Path, editable: bool) -> None:
    inst = Install(tmp_path / "venv", editable)
    r = inst.run("-V")
    assert r.returncode == 0, r.stderr
    assert r.stdout == version_text()
    assert not inst.site_ran.exists(), "site's .pth code ran: the -S start-up was not used"


def test_interpreter_path_with_spaces(tmp_path: Path) -> None:
    """pip's fix_script writes an interpreter path with spaces into the #! line as it
    is: the shell half runs it as one path, not as words."""
    inst = Install(tmp_path / "with space" / "venv", editable=False)
    r = inst.run("-V")
    assert r.returncode == 0, r.stderr
    assert r.stdout == version_text()
    assert not inst.site_ran.exists()


@pytest.mark.parametrize("header", ["uv-long", "uv-relocatable"])
def test_interpreter_on_the_second_line(tmp_path: Path, header: str) -> None:
    """uv writes ``#!/bin/sh`` and the interpreter on the next line (``'''exec' ...``)
    for a path with spaces or a relocatable venv: the shell half finds it there, and
    the Python half still parses (to Python the line is a string literal)."""
    inst = Install(tmp_path / "with space" / "venv", editable=False, header=header)
    r = inst.run("-V")
    assert r.returncode == 0, r.stderr
    assert r.stdout == version_text()
    assert not inst.site_ran.exists()
    link = tmp_path / "elsewhere" / "ss"  # through a symbolic link: realpath of $0
    link.parent.mkdir()
    link.symlink_to(inst.bin / "sockscope")
    r = inst.run("-V", cmd=str(link))
    assert (r.returncode, r.stdout) == (0, version_text()), r.stderr


def test_a_link_runs_its_own_installation(tmp_path: Path) -> None:
    """A link to the command in a directory where another installation's sockscope-run
    lies runs the sockscope-run beside the link's target, not that one."""
    inst = Install(tmp_path / "venv", editable=False)
    other = tmp_path / "other-bin"
    other.mkdir()
    (other / "sockscope-run").write_text("#!/bin/false\n")
    (other / "sockscope").symlink_to(inst.bin / "sockscope")
    r = inst.run("-V", cmd=str(other / "sockscope"))
    assert (r.returncode, r.stdout) == (0, version_text()), r.stderr


def test_falls_back_to_site_when_the_package_is_elsewhere(tmp_path: Path) -> None:
    """A package that only site's code puts on the path (a --user install, a
    distribution's own layout; here a .pth import line) is still found."""
    inst = Install(tmp_path / "venv", editable=False)
    (inst.site / "sockscope").unlink()
    (inst.site / "elsewhere.pth").write_text(f"import sys; sys.path.append({str(PKG.parent)!r})\n")
    r = inst.run("-V")
    assert r.returncode == 0, r.stderr
    assert r.stdout == version_text()
    assert inst.site_ran.exists()


def test_environment_and_directories_bring_no_code_in(tmp_path: Path) -> None:
    """PYTHONPATH, PYTHONSTARTUP, the current directory and the bin directory cannot
    shadow a module: sockscope is often run as root."""
    inst = Install(tmp_path / "venv", editable=False)
    evil = tmp_path / "evil"
    hits = tmp_path / "hits"
    hits.mkdir()
    for where in (evil, tmp_path / "cwd"):
        (where / "sockscope").mkdir(parents=True)
        for mod in ("re", "os", "struct", "socket", "sockscope/__init__", "encodings/__init__"):
            path = where / f"{mod}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"open({str(hits / mod.replace('/', '.'))!r}, 'w').close()\n")
    (inst.bin / "struct.py").write_text(f"open({str(hits / 'bin-struct')!r}, 'w').close()\n")
    startup = evil / "startup.py"
    startup.write_text(f"open({str(hits / 'startup')!r}, 'w').close()\n")
    r = inst.run(
        "-V",
        env={"PYTHONPATH": str(evil), "PYTHONSTARTUP": str(startup), "PYTHONHOME": ""},
        cwd=tmp_path / "cwd",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == version_text()
    assert sorted(p.name for p in hits.iterdir()) == []


def test_through_a_symbolic_link_and_argv0(tmp_path: Path) -> None:
    """A link to the command (say /usr/local/sbin/ss-ng) works, and getopt's messages
    name the command as it was started, as ss's do (argv[0])."""
    inst = Install(tmp_path / "venv", editable=False)
    link = tmp_path / "links" / "sockscope-link"
    link.parent.mkdir()
    link.symlink_to(inst.bin / "sockscope")
    r = inst.run("-V", cmd=str(link))
    assert r.returncode == 0, r.stderr
    assert r.stdout == version_text()
    r = inst.run("-X", cmd=str(link))
    assert r.returncode == 255
    assert r.stderr.startswith(f"{link}: invalid option -- 'X'\n")
    r = inst.run("-X")
    assert r.stderr.startswith(f"{inst.bin / 'sockscope'}: invalid option -- 'X'\n")


def test_status_and_signals_pass_through(tmp_path: Path) -> None:
    """The shell half execs: the status is the program's, a signal reaches it."""
    inst = Install(tmp_path / "venv", editable=False)
    for args in (["-N", "sockscope-no-such-netns", "-tan"], ["-f", "bogus"], ["-D", "/"]):
        got, want = inst.run(*args), reference(*args)
        assert (got.returncode, got.stdout, got.stderr) == (
            want.returncode,
            want.stdout,
            want.stderr,
        ), args
    if os.geteuid() != 0:
        pytest.skip("-E needs root")
    proc = subprocess.Popen(
        [str(inst.bin / "sockscope"), "-tan", "-E"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    try:
        out = ""
        deadline = time.monotonic() + 10
        while "sockscope-run" not in out and time.monotonic() < deadline:
            time.sleep(0.05)
            out = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode().replace("\0", " ")
        assert "-E -S" in out and "sockscope-run" in out, out  # same pid: exec'd
        # named after the command, not the interpreter (ps -C, pgrep, killall, ss -p):
        # sockscope-run renames itself once its interpreter is up, just after the exec
        comm = ""
        while comm != "sockscope\n" and time.monotonic() < deadline + 10:
            time.sleep(0.05)
            comm = Path(f"/proc/{proc.pid}/comm").read_text()
        assert comm == "sockscope\n"
        proc.send_signal(2)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -2  # killed by SIGINT, as ss -E is


def test_a_directory_as_stdin(tmp_path: Path) -> None:
    """``sockscope </tmp``: Python will not start on a directory as stdin (a "Fatal
    Python error", status 1, for every option); ss starts, and ``-F -`` reads nothing from
    it (fgets() fails with EISDIR: the end of the filter), so the shell half gives the
    interpreter /dev/null instead (found by attack7)."""
    inst = Install(tmp_path / "venv", editable=False)
    dump = tmp_path / "dump"
    dump.write_bytes((REPO / "tests" / "golden" / "scenario-5" / "tcpdiag.bin").read_bytes())
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        for args in (["-V"], ["-F", "-", "-tan"], ["-tan", "-F", "-", "sport", "=", ":22"]):
            got = inst.run(*args, stdin=fd, env={"TCPDIAG_FILE": str(dump)})
            want = reference(*args, env={"TCPDIAG_FILE": str(dump)})
            assert (got.returncode, got.stderr, got.stdout) == (0, "", want.stdout), args
            if ORACLE:
                ss = subprocess.run([ORACLE, *args], stdin=fd, capture_output=True, text=True,
                                    env={"PATH": "/usr/bin:/bin", "LC_ALL": "C",
                                         "TCPDIAG_FILE": str(dump)}, check=False)  # fmt: skip
                assert (ss.returncode, ss.stderr, ss.stdout) == (0, "", got.stdout), args
    finally:
        os.close(fd)


def _head_one(argv: list[str]) -> tuple[int, bytes, bytes]:
    """(status, first line, stderr) of ``argv | head -1`` over a 4 KiB pipe."""
    import fcntl

    # the pipe is sized before the command starts: shrinking one that already holds
    # more than 4 KiB fails (EBUSY)
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
    proc = subprocess.Popen(
        argv,
        stdout=w,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    os.close(w)
    assert proc.stderr is not None
    with os.fdopen(r, "rb") as reader:
        first = reader.readline()
    err = proc.stderr.read()
    proc.stderr.close()
    return proc.wait(20), first, err


def test_reader_leaving_is_as_ss(tmp_path: Path) -> None:
    """``sockscope -uan | head -1`` through the installed command, with more output than
    the pipe holds: nothing on stderr and death by SIGPIPE, as ss 7.1 (the shell half
    execs, so the status is the program's; tests/test_cli_own.py pins the same against
    ss on a recorded dump)."""
    import socket

    inst = Install(tmp_path / "venv", editable=False)
    held = []
    for _ in range(600):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        held.append(s)
    try:
        want = reference("-uan")
        assert len(want.stdout) > 4 * 4096
        status, first, err = _head_one([str(inst.bin / "sockscope"), "-uan"])
        assert first.decode() == want.stdout.splitlines(keepends=True)[0]
        assert (status, err) == (-13, b"")
        if ORACLE:
            assert _head_one([ORACLE, "-uan"])[::2] == (-13, b"")
    finally:
        for s in held:
            s.close()


@pytest.mark.parametrize(
    ("code", "out", "status"),
    [
        # the fast exit: what is buffered is flushed, no finalizer runs (the interpreter's
        # teardown would call this __del__)
        (
            "class D:\n    def __del__(self): print('finalized')\n"
            "d = D()\nprint('done', end=''); leave(0); print('after')",
            "done",
            0,
        ),
        # an atexit function still runs (the ordinary exit)
        ("import atexit; atexit.register(print, 'atexit'); leave(0)", "atexit\n", 0),
        # a threading thread is still joined (the ordinary exit)
        (
            "import threading, time\n"
            "threading.Thread(target=lambda: (time.sleep(0.2), print('joined'))).start()\n"
            "leave(0)",
            "joined\n",
            0,
        ),
        # an error status is the ordinary exit's
        ("print('failed', end=''); leave(255)", "failed", 255),
    ],
    ids=["fast", "atexit", "thread", "error"],
)
def test_leave_skips_only_needless_finalization(code: str, out: str, status: int) -> None:
    """cli.command.leave, how the launcher and ``python -m sockscope`` end: without the
    interpreter's finalization only after a success that needs none of it."""
    proc = subprocess.run(
        [sys.executable, "-S", "-c", f"from sockscope.cli.command import leave\n{code}"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(PKG.parent)),
        check=False,
        timeout=30,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (status, out, "")


# -- the start-up bundle (src/sockscope/_startup.py) ----------------------------------------


def _bundle_of(inst: Install) -> Path:
    return inst.site / "sockscope" / "__pycache__" / f"_startup.{sys.implementation.cache_tag}.pyc"


@pytest.mark.live
def test_startup_bundle(tmp_path: Path) -> None:
    """The first plain listing writes the start-up bundle; the next ones are served from
    it (the modules' own .pyc files are not even read: removed, they stay away); a
    module whose source changed is imported from its source (and the bundle written
    again); a damaged bundle or an ordinary .pyc in its place is ignored and replaced."""
    from conftest import LIVE_REASON
    from netns import Netns
    from sockscope import _startup
    from sockscope.accel import core

    if LIVE_REASON:
        pytest.skip(LIVE_REASON)
    if core() is None:
        pytest.skip("the bundle holds the compiled listing's modules: no C core here")
    inst = Install(tmp_path / "venv", editable=False, copy=True)
    bundle = _bundle_of(inst)
    pycs = inst.site / "sockscope"
    ns = Netns(f"sockscope-bundle-{os.getpid()}")
    try:
        holder = subprocess.Popen(
            [*ns.enter(), sys.executable, "-c", _LISTENERS], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "ready\n"

            def listing() -> str:
                r = subprocess.run(
                    [*ns.enter(), str(inst.bin / "sockscope"), "-tan"],
                    capture_output=True,
                    text=True,
                    check=False,
                    env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
                )
                assert (r.returncode, r.stderr) == (0, ""), r.stderr
                return r.stdout

            want = listing()  # the modules imported one by one; the bundle written
            assert want.count("LISTEN") == 3, want  # IPv6 listeners too: made in C
            data = bundle.read_bytes()
            assert data.startswith(_startup.HEADER)
            for path in pycs.rglob("*.pyc"):
                if path != bundle:
                    path.unlink()
            assert listing() == want  # served from the bundle
            command_pyc = (
                pycs / "cli" / "__pycache__" / f"command.{sys.implementation.cache_tag}.pyc"
            )
            assert not command_pyc.exists(), "the modules were imported from their sources"
            assert bundle.read_bytes() == data  # a bundle in use is not rewritten

            # a changed source: that module comes from it, and the bundle follows
            argv = pycs / "cli" / "argv.py"
            argv.write_text(
                argv.read_text().replace("illegal socket table id", "illegal table (edited)")
            )
            r = inst.run("-A", "bogus")
            assert r.returncode == 255 and 'ss: "bogus" is illegal table (edited)' in r.stderr
            assert bundle.read_bytes() == data  # (an error's run writes nothing)
            assert listing() == want
            assert bundle.read_bytes() != data
            assert b"illegal table (edited)" in bundle.read_bytes()

            # damage, then an ordinary .pyc where the bundle lies: ignored, replaced
            for damaged in (data[: len(data) // 2], b"", _startup.HEADER + b"\0" * 64):
                bundle.write_bytes(damaged)
                assert listing() == want
                assert bundle.read_bytes().startswith(_startup.HEADER)
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", "-f", str(pycs / "_startup.py")],
                check=True,
            )
            assert not bundle.read_bytes().startswith(_startup.HEADER)
            assert listing() == want
            assert bundle.read_bytes().startswith(_startup.HEADER)
        finally:
            holder.kill()
            holder.wait()
            if holder.stdout is not None:
                holder.stdout.close()
    finally:
        ns.close()


#: three TCP listeners (IPv4, IPv6 v6only, IPv6 dual-stack) held until killed
_LISTENERS = """
import socket, time
keep = []
for fam, addr, v6only in ((socket.AF_INET, "127.0.0.1", 0), (socket.AF_INET6, "::", 1),
                          (socket.AF_INET6, "::", 0)):
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind((addr, 0))
    s.listen()
    keep.append(s)
print("ready", flush=True)
time.sleep(3600)
"""


def test_launcher_reads_the_bundle_header() -> None:
    """scripts/sockscope-run checks a bundle's first bytes itself (it runs before any
    module is imported): the same header as _startup's."""
    import ast

    from sockscope import _startup

    lines = (SCRIPTS / "sockscope-run").read_text().splitlines()
    heads = [
        ast.literal_eval(ln.split("=", 1)[1].strip())
        for ln in lines
        if ln.strip().startswith("head = ")
    ]
    assert heads == [_startup.HEADER]
