"""The hostile-environment campaign of issue 12: signals, unprivileged runs, rlimits, odd
stdouts and odd environments, against a private network namespace, compared with ss 7.1.

    python3 tests/fuzz/hostile.py [--seed N] [--count N] [--oracle PATH] [--family F ...]

(also ``python3 tests/fuzz/campaign.py hostile ...``). ``--count 0`` runs until
interrupted. Needs root, ``ip`` and ``nsenter``: the campaign creates the namespace
``sockscope-hostile-<pid>`` with ``lo`` up, starts the live-test socket holder in it
(tests/netns.py) plus 150 bound UDP sockets (so that a listing outgrows a 4 KiB pipe), runs
every case in it through ``nsenter --net`` (ss and sockscope see the same sockets), and
deletes it at the end. The backend is the caller's (``SOCKSCOPE_PURE=1`` for pure Python);
``$SOCKSCOPE_CAND`` (shell words, e.g. the installed ``sockscope``) replaces
``python -m sockscope``.

Each case has a *category* (``signal-listing``, ``fsize``, ...). A case fails when
sockscope prints a Python traceback, leaves a JSON document half-written, or answers
otherwise than ss 7.1 does under the same conditions: same stdout, stderr and status where
the output is deterministic, the same death by signal where ss dies of one, and properties
(status ss could give, complete JSON) where the moment a signal lands decides. Cases where
ss itself crashes (SIGSEGV, SIGABRT) are only counted. A mismatch is re-run once before it
counts (a TIME-WAIT socket of the fixed set may expire between the two runs).

The last line of output is a JSON summary: ``{"cases": N, "by_category": {...},
"failures": [...], "skipped": N}``; each failure names its category and how to reproduce it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import pty
import random
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tools"))

import netns  # noqa: E402

FAMILIES = ["signal", "unpriv", "rlimit", "stdout", "environ"]
NOBODY = 65534
BULK_PORTS = range(7000, 7150)  # bound UDP sockets: -uan outgrows a 4 KiB pipe
F_SETPIPE_SZ = 1031
#: signals whose default action ends the process, delivered at random points
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE]
#: the signals a shell or a test runner may have left ignored in us: the children get the
#: default action back, as they would from a login shell
_RESET = [*SIGNALS, signal.SIGXFSZ, signal.SIGUSR1]
#: deterministic listings of the fixed socket set (no timers, no memory counters)
#: (not -e on TIME-WAIT sockets: their timer runs; not -a/-0: ss's own sock_diag socket)
LISTINGS = [["-tan"], ["-tln"], ["-uan"], ["-tanp"], ["-tlne"], ["-tuan"], ["-ua"],
            ["-tan", "state", "established"], ["-uanp"], ["-xa"], ["-tan", "sport", "=", ":6001"],
            ["-s"]]  # fmt: skip
BIG = ["-uan"]  # about 17 KB with the bulk sockets
JSON_MODES = ["--json", "--json-lines"]


@dataclass
class Case:
    """One hostile run: ``argv`` for both programs, under ``how``."""

    category: str
    argv: list[str]
    how: dict[str, object] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        return {"category": self.category, "argv": self.argv, "how": self.how,
                "env": {k: (v if len(v) < 80 else f"<{len(v)} bytes>")
                        for k, v in self.env.items()}}  # fmt: skip


@dataclass
class Result:
    status: int  # negative: killed by that signal
    out: bytes
    err: bytes

    def key(self) -> tuple[int, bytes, bytes]:
        return self.status, self.out, self.err


# --- the cases ----------------------------------------------------------------------------
_LOCALES = ["", "C", "POSIX", "C.UTF-8", "en_US.UTF-8", "tr_TR.UTF-8", "xx_XX.bogus", "\xff",
            "de_DE@euro", "/etc/passwd", "../../x", "C" * 5000]  # fmt: skip
_TERMS = [None, "dumb", "", "xterm-256color", "bogus\x1b[2J", "vt100"]
_COLUMNS = ["0", "1", "-1", "2147483647", "2147483648", "4294967376", "65536", "80x", "",
            "99999999"]  # fmt: skip  # the last only on one-line listings: ss pads lines to it


#: -F - with stdin closed: ss's fgets() on the closed descriptor is the end of the filter
_STDIN_FILTERS = [["-F", "-", "-tan"], ["-tan", "-F", "-x"], ["-F", "-", "-uan", "-F", "-"],
                  ["-F", "-", "-xa"]]  # fmt: skip
#: output (-s's summary) into a full stdout, then an error: ss's failed printf()s change
#: neither its message nor its status
_LATE_ERRORS = [["-s", "-tan", "bogus"], ["-s", "-t", "state", "bogus"],
                ["-s", "-tn", "dev", "nosuchdev"], ["-s", "-t", "-D", "/nonexistent/x"],
                ["-s", "-t", "sport", "=", ":bogus"]]  # fmt: skip


def _listing_category(mode: list[str], sig: int) -> str:
    """The category of a signal sent to a listing in ``mode`` (text, --json, --json-lines)."""
    if not mode:
        return "signal-listing"
    if sig not in (signal.SIGINT, signal.SIGPIPE):
        return "signal-json-listing"
    return (
        "signal-jsonl-int"
        if mode == ["--json-lines"] and sig == signal.SIGINT
        else "signal-json-listing-int"
    )


def random_case(rng: random.Random, family: str, ns: str) -> Case:
    """A case of ``family`` drawn with ``rng``."""
    if family == "signal":
        sig = rng.choice(SIGNALS)
        r = rng.random()
        if r < 0.25:  # a listing paused mid-read: a TCPDIAG_FILE fifo fed a few rows
            mode = rng.choice([[], *[[m] for m in JSON_MODES]])
            cat = _listing_category(mode, sig)
            return Case(cat, ["-tan", *mode], {"signal": sig, "fifo_rows": rng.randint(0, 5)})
        if r < 0.4:  # a listing blocked on a full stdout pipe nobody reads yet
            mode = rng.choice([[], *[[m] for m in JSON_MODES]])
            cat = _listing_category(mode, sig)
            return Case(cat, [*BIG, *mode], {"signal": sig, "delay": 0.8, "stdout": "stall"})
        if r < 0.55:  # a listing at a random moment
            mode = rng.choice([[], [], *[[m] for m in JSON_MODES]])
            cat = _listing_category(mode, sig)
            delay = round(rng.uniform(0, 0.4), 3)
            if sig == signal.SIGINT:
                cat = "signal-startup"  # it may land while the modules load (0.1-0.3 s)
            return Case(cat, [*rng.choice(LISTINGS[:-1]), *mode], {"signal": sig, "delay": delay})
        if r < 0.75:  # ss's own long-running mode: -E
            mode = rng.choice([[], ["--json"], ["--json-lines"]])
            cat = "signal-events-json" if mode else "signal-events"
            if mode and sig in (signal.SIGHUP, signal.SIGQUIT):
                cat = "signal-json-events"
            return Case(cat, ["-E", *mode],
                        {"signal": sig, "delay": round(rng.uniform(0.8, 1.4), 3)})  # fmt: skip
        # sockscope's own long-running modes, early (setup) or late
        argv = rng.choice([["--watch", "-t"], ["--watch", "-t", "--json-lines"],
                           ["-E", "--all-netns"], ["--all-netns", "-E", "--json-lines"],
                           ["--watch", "--all-netns", "-t"]])  # fmt: skip
        early = rng.random() < 0.5
        if early and sig == signal.SIGPIPE:
            # the interpreter ignores SIGPIPE until main() restores it: a SIGPIPE sent by
            # kill during start-up is lost (a long-running mode then runs on)
            sig = signal.SIGTERM
        delay = rng.uniform(0.05, 0.35) if early else rng.uniform(1.8, 2.4)
        cat = "signal-own-early" if early and sig == signal.SIGTERM else "signal-own"
        if early and sig == signal.SIGINT:
            cat = "signal-startup"
        return Case(cat, argv, {"signal": sig, "delay": round(delay, 3), "own": True})
    if family == "unpriv":
        argv = rng.choice([["-tanp"], ["-tK"], ["-tuK"], ["-uanp"], ["-E"], ["-N", ns, "-tan"],
                           ["-N", "sockscope-nosuch", "-tan"], ["--all-netns", "-tan"],
                           ["-s"], ["-xp"]])  # fmt: skip
        how: dict[str, object] = {"uid": NOBODY}
        if argv[0] == "-E":
            how["signal"], how["delay"] = signal.SIGINT, 0.8
        if rng.random() < 0.3:
            how["nproc"] = rng.choice([0, 1])
            return Case("nproc", argv, how)
        return Case("unpriv-own" if argv[0] == "--all-netns" else "unpriv", argv, how)
    if family == "rlimit":
        r = rng.random()
        argv = rng.choice(LISTINGS[:-1])
        env: dict[str, str] = {}
        if r < 0.3:
            return Case("fsize", rng.choice([argv, BIG]),
                        {"fsize": rng.choice([0, 1, 100, 1000, 4096]), "stdout": "file"})  # fmt: skip
        if r < 0.6:
            if rng.random() < 0.4:  # a width ss pads every line to: one line
                env = {"COLUMNS": rng.choice(["99999999", "2147483647", "80"])}
                argv = ["-tln", "sport", "=", ":6001"]
            return Case("rlimit-as", argv, {"as_mib": rng.choice([128, 192, 256])}, env)
        if r < 0.85:
            return Case("nofile", argv, {"nofile": rng.choice([4, 5, 6, 8, 12])})
        return Case("nproc", argv, {"uid": NOBODY, "nproc": 0})
    if family == "stdout":
        r = rng.random()
        if r < 0.2:
            if r < 0.05:  # stdin closed too: -F - reads the closed descriptor (attack7)
                return Case("stdin-closed", rng.choice(_STDIN_FILTERS),
                            {"stdin": "closed", "stdout": rng.choice(["pipe", "closed"])})  # fmt: skip
            return Case("stdout-closed", rng.choice([*LISTINGS, ["-V"], ["-h"]]),
                        {"stdout": "closed"})  # fmt: skip
        if r < 0.35:
            if r < 0.25:  # output that fails, then an error with its own status (attack7)
                return Case("stdout-full-late", rng.choice(_LATE_ERRORS), {"stdout": "devfull"})
            return Case("stdout-full", rng.choice(LISTINGS), {"stdout": "devfull"})
        if r < 0.55:
            mode = rng.choice([[], [], ["--json"], ["--json-lines"]])
            return Case("stdout-fifo-early" + ("-json" if mode else ""), [*BIG, *mode],
                        {"stdout": "fifo", "read": rng.choice([0, 1, 100, 4000])})  # fmt: skip
        if r < 0.75:
            return Case("nonblock", rng.choice([BIG, ["-an"], ["-tan"]]),
                        {"stdout": "nonblock"})  # fmt: skip
        size = rng.choice([(0, 0), (1, 1), (24, 1), (1, 200), (65535, 65535), (50, 80)])
        return Case("pty", rng.choice(LISTINGS[:-1]), {"stdout": "pty", "winsize": size})
    # environ
    env: dict[str, str] = {}
    how = {}
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if r < 0.25:
            env[rng.choice(["LANG", "LC_ALL", "LC_CTYPE", "LC_NUMERIC"])] = rng.choice(_LOCALES)
        elif r < 0.4:
            term = rng.choice(_TERMS)
            if term is not None:
                env["TERM"] = term
        elif r < 0.5:
            env["PATH"] = rng.choice(["", ":", "/nonexistent", "."])
        elif r < 0.6:
            n, size = rng.choice([(2000, 400), (20, 100_000), (30000, 10)])
            env.update({f"HUGE_{i}": "x" * size for i in range(n)})
        elif r < 0.75:
            how["cwd_deleted"] = True
        else:
            env["COLUMNS"] = rng.choice(_COLUMNS)
    argv = rng.choice(LISTINGS[:-1])  # not -s: its counts are the whole host's
    if env.get("COLUMNS") in ("99999999", "2147483647", "65536"):
        argv = ["-tln", "sport", "=", ":6001"]
    return Case("environ", argv, how, env)


# --- running a case -----------------------------------------------------------------------
class World:
    """The namespace, its sockets, and the commands of both programs."""

    def __init__(self, oracle: str | None) -> None:
        self.oracle = oracle
        self.ns = netns.Netns(f"sockscope-hostile-{os.getpid()}")
        self.holder: netns.Holder | None = None
        self.bulk: subprocess.Popen[bytes] | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix="sockscope-hostile-"))
        self.tmp.chmod(0o755)
        try:
            self.holder = netns.Holder(self.ns, seconds=3600)
            code = ("import socket,sys\nk=[]\nfor p in range(%d,%d):\n"
                    " s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('127.0.0.1',p))"
                    ";k.append(s)\nprint('ok',flush=True);sys.stdin.read()\n"
                    % (BULK_PORTS.start, BULK_PORTS.stop))  # fmt: skip
            self.bulk = subprocess.Popen([*self.ns.enter(), sys.executable, "-c", code],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
            assert self.bulk.stdout is not None
            self.bulk.stdout.readline()
        except BaseException:
            self.close()
            raise
        self.python = os.path.realpath(sys.executable)
        self.nobody_ok = self._probe_nobody()

    def _probe_nobody(self) -> bool:
        p = subprocess.run([*netns.DROP, self.python, "-c", "import sockscope.cli"],
                           env=self.base_env(), capture_output=True, cwd="/", check=False)  # fmt: skip
        return p.returncode == 0

    def base_env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin:/sbin"), "LC_ALL": "C",
               "PYTHONPATH": str(SRC), "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
        if os.environ.get("SOCKSCOPE_PURE"):
            env["SOCKSCOPE_PURE"] = os.environ["SOCKSCOPE_PURE"]
        return env

    def command(self, which: str, *, bare: bool = False) -> list[str]:
        """``bare``: the interpreter as the launcher starts it (-E -S), the package taken
        from the tree under test: what RLIMIT_NOFILE cases run, since ``-m`` needs
        ``site`` (whose .pth files need descriptors of their own) and the installed
        command's /bin/sh half, dash, needs 12 (QUIRKS.md)."""
        if which == "ss":
            assert self.oracle is not None
            return [self.oracle]
        cand = netns.sockscope_cmd()  # $SOCKSCOPE_CAND (e.g. the installed command) or -m
        if cand[0] != sys.executable:
            return cand
        if bare:
            boot = (f"import sys; sys.path.insert(0, {str(SRC)!r}); sys.argv[0] = 'sockscope'; "
                    "from sockscope.cli.command import leave, main; leave(main())")  # fmt: skip
            return [self.python, "-E", "-S", "-c", boot]
        return [self.python, "-m", "sockscope"]

    def close(self) -> None:
        for proc in (self.bulk,):
            if proc is not None:
                with contextlib.suppress(OSError):
                    proc.communicate(b"", timeout=10)
        if self.holder is not None:
            self.holder.close()
        self.ns.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- one run
    def run(self, which: str, case: Case, *, plain: bool = False) -> Result:
        """Run ``which`` (ss or sockscope) under ``case``'s conditions; ``plain``: without
        the signal (the reference output of the same command)."""
        how = dict(case.how)
        if plain:
            how.pop("signal", None)
        env = self.base_env()
        env.update(case.env)
        if "TERM" not in case.env:
            env.pop("TERM", None)
        argv = [*self.command(which, bare="nofile" in how), *case.argv]
        if how.get("uid") is not None:
            argv = [*netns.DROP, *argv]
        argv = [shutil.which("nsenter") or "nsenter", f"--net={self.ns.path}", *argv]
        fifo = None
        if "fifo_rows" in how:
            fifo = self.tmp / f"dump-{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                fifo.unlink()
            os.mkfifo(fifo)
            env["TCPDIAG_FILE"] = str(fifo)
        cwd = None
        if how.get("cwd_deleted"):
            cwd = self.tmp / "gone"
            cwd.mkdir(exist_ok=True)

        def child() -> None:
            for s in _RESET:
                signal.signal(s, signal.SIG_DFL)
            for res, key, scale in ((resource.RLIMIT_AS, "as_mib", 1 << 20),
                                    (resource.RLIMIT_FSIZE, "fsize", 1),
                                    (resource.RLIMIT_NOFILE, "nofile", 1),
                                    (resource.RLIMIT_NPROC, "nproc", 1)):  # fmt: skip
                if key in how:
                    v = int(how[key]) * scale  # type: ignore[call-overload]
                    resource.setrlimit(res, (v, v))
            if cwd is not None:
                os.rmdir(cwd)  # the child keeps its deleted working directory
            if how.get("stdout") == "closed":
                os.close(1)
            if how.get("stdin") == "closed":
                os.close(0)

        try:
            return self._spawn(argv, env, how, child, cwd, fifo)
        finally:
            if fifo is not None:
                with contextlib.suppress(FileNotFoundError):
                    fifo.unlink()

    def _spawn(self, argv: list[str], env: dict[str, str], how: dict[str, object],
               child: Callable[[], None], cwd: Path | None, fifo: Path | None) -> Result:  # fmt: skip
        stdout_kind = how.get("stdout", "pipe")
        err = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after the run
        master = rfd = fifo_fd = None
        out_file = None
        stdout: int | object
        if stdout_kind == "devfull":
            stdout = os.open("/dev/full", os.O_WRONLY)
        elif stdout_kind == "closed":
            stdout = subprocess.DEVNULL
        elif stdout_kind == "pty":
            master, slave = pty.openpty()
            winsize: tuple[int, int] = how["winsize"]  # type: ignore[assignment]
            rows, cols = winsize
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            attrs = termios.tcgetattr(slave)
            attrs[1] &= ~termios.OPOST  # bytes as written: no \n -> \r\n
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            stdout = slave
        elif stdout_kind == "file":
            stdout = out_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
        else:
            rfd, wfd = os.pipe()
            if stdout_kind in ("fifo", "nonblock", "stall"):
                fcntl.fcntl(wfd, F_SETPIPE_SZ, 4096)
            if stdout_kind == "nonblock":
                fl = fcntl.fcntl(wfd, fcntl.F_GETFL)
                fcntl.fcntl(wfd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
            stdout = wfd
        # preexec_fn: the only other threads are the readers of earlier runs, all joined
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err,
                                env=env, cwd=cwd, preexec_fn=child,  # noqa: PLW1509
                                restore_signals=True)  # fmt: skip
        if isinstance(stdout, int) and stdout_kind != "closed":
            os.close(stdout)
        sink = _Sink()
        reader = None
        if stdout_kind == "pipe" and rfd is not None:
            reader = threading.Thread(target=sink.drain, args=(rfd, None), daemon=True)
        elif master is not None:
            reader = threading.Thread(target=sink.drain, args=(master, proc), daemon=True)
        if reader is not None:
            reader.start()
        try:
            if fifo is not None:
                # O_RDWR: never blocks; kept open until the program ends, so that what is
                # written stays in the pipe and the program's reads wait for more rows
                fifo_fd = os.open(fifo, os.O_RDWR)
                from synthdump import done, record  # type: ignore[import-not-found]

                for i in range(int(how["fifo_rows"])):  # type: ignore[call-overload]
                    os.write(fifo_fd, record(2, 1, "127.0.0.1", 40000 + i, "127.0.0.1", 80, 7, i))
                if "signal" in how:
                    time.sleep(0.8)  # the rows are read and printed; it waits for more
                    self._signal(proc, how)
                    os.close(fifo_fd)  # one that survives the signal reads EOF
                    fifo_fd = None
                else:
                    os.write(fifo_fd, done())
            elif "signal" in how:
                time.sleep(float(how["delay"]))  # type: ignore[arg-type]
                self._signal(proc, how)
            if stdout_kind == "fifo":
                assert rfd is not None
                left = int(how["read"])  # type: ignore[call-overload]
                while left > 0:
                    got = os.read(rfd, left)
                    if not got:
                        break
                    sink.add(got)
                    left -= len(got)
                os.close(rfd)
                rfd = None
            elif stdout_kind == "nonblock":
                proc.wait(timeout=60)
                assert rfd is not None
                sink.drain(rfd, None)
            elif stdout_kind == "stall":  # read only once the signal is sent
                assert rfd is not None
                sink.drain(rfd, None)
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
            sink.add(b"<timeout>")
        if reader is not None:
            reader.join(timeout=30)
        for fd in (master, rfd, fifo_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if out_file is not None:
            out_file.seek(0)
            while data := out_file.read(1 << 20):
                sink.add(data)
            out_file.close()
        err.seek(0)
        errb = err.read(1 << 20)
        err.close()
        return Result(status, sink.value(), errb)

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], how: dict[str, object]) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(int(how["signal"]))  # type: ignore[call-overload]
        if how.get("own") or "-E" in proc.args:  # type: ignore[operator]
            # a long-running mode that ignores the signal (SIGPIPE with JSON output) would
            # run on: it gets a few seconds, then SIGKILL (judged as surviving the signal)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)


class _Sink:
    """What a program wrote: the first MiB as is, the rest as its length and digest (ss
    pads lines to COLUMNS: gigabytes for COLUMNS=99999999)."""

    HEAD = 1 << 20

    def __init__(self) -> None:
        self.head = bytearray()
        self.rest = hashlib.sha256()
        self.size = 0

    def add(self, data: bytes) -> None:
        room = self.HEAD - len(self.head)
        self.head += data[:room]
        self.rest.update(data[room:])
        self.size += len(data)

    def drain(self, fd: int, proc: subprocess.Popen[bytes] | None) -> None:
        """Read ``fd`` to its end (a pty master: until EIO or the program's end)."""
        while True:
            if proc is not None:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    if proc.poll() is not None:
                        return
                    continue
            try:
                data = os.read(fd, 1 << 16)
            except OSError:  # EIO: the slave side of the pty is closed
                return
            if not data:
                return
            self.add(data)

    def value(self) -> bytes:
        if self.size <= self.HEAD:
            return bytes(self.head)
        return bytes(self.head) + f"<{self.size} bytes, {self.rest.hexdigest()}>".encode()


# --- judging a case -----------------------------------------------------------------------
def _json_complete(out: bytes, lines: bool) -> bool:
    """Empty, or whole: one document (--json) or whole lines (--json-lines)."""
    if not out:
        return True
    try:
        if lines:
            if not out.endswith(b"\n"):
                return False
            for line in out.splitlines():
                json.loads(line)
        else:
            json.loads(out)
    except ValueError:
        return False
    return True


def python_startup(err: bytes) -> bool:
    """Whether ``err`` is a KeyboardInterrupt traceback none of whose frames is
    sockscope's: the SIGINT landed in the interpreter's own start-up (site's .pth code
    under ``python -m``, runpy, the frozen imports), before the first sockscope statement
    could let it kill the process as it kills ss. Python prints that traceback whatever
    the program; counted apart (QUIRKS.md, Hardening), never as sockscope's failure. A
    frame of the package's ``__init__.py`` at line 0 is its first instruction, before
    its first statement (the interrupt was pending from the import machinery that loads
    it). Any other sockscope frame fails, at line 0 too: from the package's first
    statements on, its SIGINT handler ends the process (``__main__.py`` at line 0 was
    the window of about 1 run in 1,400 where it did not)."""
    frames = re.findall(rb'^\s*File "([^"]*)", line (\d+)', err, re.MULTILINE)
    ours = [
        line
        for path, line in frames
        if (b"/sockscope/" in path or path.endswith(b"sockscope-run"))
        and not (path.endswith(b"/sockscope/__init__.py") and line == b"0")
    ]
    return err.rstrip().endswith(b"KeyboardInterrupt") and bool(frames) and not ours


def judge(world: World, case: Case) -> tuple[str | None, dict[str, object]]:
    """(None, info) when sockscope behaves; (problem, info) otherwise; ("skip", ...) when the
    case cannot be judged here, ("ss-crash", ...) when ss dies of SIGSEGV or SIGABRT."""
    how = case.how
    own = any(a in ("--json", "--json-lines", "--all-netns", "--watch") for a in case.argv)
    if how.get("uid") is not None and not world.nobody_ok:
        return "skip", {"why": "uid 65534 cannot run this interpreter"}
    got = world.run("sockscope", case)
    info: dict[str, object] = {"status": got.status, "err": got.err[-600:].decode("latin-1")}
    if got.status == 126 and got.err.startswith(b"setpriv: failed to execute"):
        # RLIMIT_NPROC already reached by uid 65534's other processes: execve refuses
        return "unjudged", info
    if b"Traceback (most recent call last)" in got.err or b"Fatal Python error" in got.err:
        if how.get("signal") == signal.SIGINT and python_startup(got.err):
            return "python-startup", info
        return "traceback", info
    for mode, lines in (("--json", False), ("--json-lines", True)):
        if (
            mode in case.argv
            and how.get("stdout", "pipe") in ("pipe", "stall", "file")
            and not _json_complete(got.out, lines)
        ):
            info["out_tail"] = got.out[-200:].decode("latin-1")
            return "half-written JSON", info
    if "signal" in how:
        return _judge_signal(world, case, got, own, info)
    if own or world.oracle is None:
        ok = got.status in (0, 1, 255)
        return (None if ok else "status ss cannot give"), info
    want = world.run("ss", case)
    if want.status in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS):
        return "ss-crash", info
    stdout_kind = how.get("stdout", "pipe")
    if stdout_kind in ("fifo", "nonblock"):
        # how much got through depends on timing: compare status and stderr only
        if (want.status, want.err) == (got.status, got.err):
            return None, info
        want2, got2 = world.run("ss", case), world.run("sockscope", case)
        if (want2.status, want2.err) == (got2.status, got2.err) or (
            {got.status, got2.status} <= {want.status, want2.status} and got.err == want.err
        ):
            return None, info
        info.update(ss_status=want.status, ss_err=want.err[-300:].decode("latin-1"))
        return "differs from ss", info
    if want.key() == got.key():
        return None, info
    want, got = world.run("ss", case), world.run("sockscope", case)  # once more
    if want.key() == got.key():
        return None, info
    info.update(status=got.status, err=got.err[-300:].decode("latin-1"), ss_status=want.status,
                ss_err=want.err[-300:].decode("latin-1"), **_first_difference(want.out, got.out))  # fmt: skip
    return "differs from ss", info


def _judge_signal(world: World, case: Case, got: Result, own: bool,
                  info: dict[str, object]) -> tuple[str | None, dict[str, object]]:  # fmt: skip
    sig = int(case.how["signal"])  # type: ignore[call-overload]
    if sig == signal.SIGPIPE and got.status == -signal.SIGKILL and own:
        return None, info  # JSON output ignores SIGPIPE (a reader that left): it ran on
    if got.status < 0 and got.status != -sig:
        return f"died of signal {-got.status}, not of {sig}", info
    if got.status == -sig:
        return None, info  # as ss does
    if case.how.get("own") or ("-E" in case.argv and own):
        # sockscope's long-running modes: SIGTERM 143; SIGINT/-E --json a closed document
        ok = {143, 0} if sig == signal.SIGTERM else {0}
        if got.status in ok:
            return None, info
        return f"status {got.status} after signal {sig}", info
    if world.oracle is not None and ("fifo_rows" in case.how or "-E" in case.argv
                                     or case.how.get("stdout") == "stall"):  # fmt: skip
        want = world.run("ss", Case(case.category, [a for a in case.argv if a not in
                                                    JSON_MODES], case.how, case.env))  # fmt: skip
        info["ss_status"] = want.status
        if want.status == -sig and not (own and sig == signal.SIGPIPE):
            return f"status {got.status} where ss dies of signal {sig}", info
    # the signal came too late (or was ignored, SIGPIPE with --json): a complete run
    ref = world.run("sockscope", case, plain=True)
    if got.status != ref.status:
        return f"status {got.status} after signal {sig}, {ref.status} without", info
    if got.out != ref.out and "fifo_rows" not in case.how and case.how.get("stdout") != "stall":
        info.update(_first_difference(ref.out, got.out))
        return "output differs from an undisturbed run", info
    return None, info


def _first_difference(want: bytes, got: bytes) -> dict[str, str]:
    """The first line where the two outputs differ (campaign.py's report)."""
    sys.path.insert(0, str(HERE))
    from campaign import _first_difference as first

    return first(want, got)


def pinned() -> list[Case]:
    """Cases run first, whatever the seed: each known way to fail, made deterministic (a
    sweep of delays where the window is a moment of the start-up)."""
    t, h, q, i = signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT
    out = [Case("signal-json-listing", [*BIG, "--json"], {"signal": t, "delay": 0.8, "stdout": "stall"}),
           Case("signal-json-listing", [*BIG, "--json-lines"], {"signal": h, "delay": 0.8, "stdout": "stall"}),
           Case("signal-json-listing", [*BIG, "--json"], {"signal": q, "delay": 0.8, "stdout": "stall"}),
           Case("signal-listing", BIG, {"signal": t, "delay": 0.8, "stdout": "stall"}),
           Case("signal-json-listing-int", [*BIG, "--json"], {"signal": i, "delay": 0.8, "stdout": "stall"}),
           *[Case("signal-jsonl-int", [*BIG, "--json-lines"], {"signal": i, "delay": 0.8, "stdout": "stall"})
             for _ in range(3)],
           Case("signal-json-events", ["-E", "--json"], {"signal": h, "delay": 0.8}),
           Case("fsize", BIG, {"fsize": 100, "stdout": "file"}),
           Case("fsize", ["-tan"], {"fsize": 0, "stdout": "file"}),
           Case("nonblock", BIG, {"stdout": "nonblock"}),
           Case("nproc", ["-tan"], {"uid": NOBODY, "nproc": 0}),
           Case("nproc", ["-tanp"], {"uid": NOBODY, "nproc": 0}),
           # 4: no process found (ss's /proc/PID/fd opens fail), cgroups unreachable with
           # "Failed to open mounts file"; 5: processes without names, ports without
           # service names (setservent(1) keeps /etc/services open); 6 and up: all
           Case("nofile", ["-tanp"], {"nofile": 4}),
           Case("nofile", ["-tanp"], {"nofile": 5}),
           Case("nofile", ["-uanp"], {"nofile": 6}),
           Case("nofile", ["-ua"], {"nofile": 4}),
           Case("nofile", ["-ua"], {"nofile": 5}),
           Case("nofile", ["-tlne"], {"nofile": 4}),
           Case("nofile", ["-tuan"], {"nofile": 4}),
           *[Case("stdin-closed", argv, {"stdin": "closed"}) for argv in _STDIN_FILTERS],
           *[Case("stdout-full-late", argv, {"stdout": "devfull"}) for argv in _LATE_ERRORS]]  # fmt: skip
    out += [Case("signal-own-early", ["--all-netns", "-E"], {"signal": t, "delay": d / 1000, "own": True})
            for d in range(60, 450, 15)]  # fmt: skip
    out += [
        Case("signal-startup", ["-tan"], {"signal": i, "delay": d / 100}) for d in range(3, 17, 2)
    ]
    return out


def cases(rng: random.Random, families: list[str], ns: str) -> Iterator[Case]:
    while True:
        yield random_case(rng, rng.choice(families), ns)


def campaign(seed: int, count: int, oracle: str | None, families: list[str] | None = None,
             progress: Callable[[str], None] | None = None,
             with_pinned: bool = False) -> dict[str, object]:  # fmt: skip
    """Run ``count`` cases (0: until interrupted) drawn with ``seed``, after the
    :func:`pinned` ones when ``with_pinned``."""
    rng = random.Random(seed)
    world = World(oracle)
    failures: list[dict[str, object]] = []
    by_category: dict[str, int] = {}
    skipped = crashes = unjudged = startup = n = 0
    try:
        first = pinned() if with_pinned else []
        for case in itertools.chain(first, cases(rng, families or FAMILIES, world.ns.name)):
            if count and n >= count + len(first):
                break
            n += 1
            problem, info = judge(world, case)
            by_category[case.category] = by_category.get(case.category, 0) + 1
            if problem == "skip":
                skipped += 1
            elif problem == "unjudged":
                unjudged += 1
            elif problem == "ss-crash":
                crashes += 1
            elif problem == "python-startup":
                startup += 1
            elif problem is not None:
                failures.append({"n": n, "problem": problem, **case.describe(), **info})
                if progress is not None:
                    progress(json.dumps(failures[-1])[:2000])
            if progress is not None and n % 50 == 0:
                progress(f"{n} cases")
    except KeyboardInterrupt:
        pass
    finally:
        world.close()
    return {"kind": "hostile", "seed": seed, "cases": n, "by_category": by_category,
            "failures": failures, "skipped": skipped, "ss_crashes": crashes, "unjudged": unjudged,
            "python_startup": startup,
            "backend": "pure" if os.environ.get("SOCKSCOPE_PURE") else "compiled"}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--count", type=int, default=60, help="0: until interrupted")
    ap.add_argument("--oracle", help="upstream ss 7.1, to compare with")
    ap.add_argument("--family", action="append", choices=FAMILIES)
    ap.add_argument("--pinned", action="store_true", help="run the pinned cases first")
    args = ap.parse_args(argv)
    result: dict[str, object] = {}
    try:
        result = campaign(args.seed, args.count, args.oracle, args.family,
                          lambda s: print(s, file=sys.stderr, flush=True), args.pinned)  # fmt: skip
    finally:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
