"""The man page and the shell completions: generated from one table, rendered, tried.

``tools/genman.py`` writes ``man/sockscope.1``, ``completions/sockscope`` and
``completions/_sockscope`` from its table of options; these tests fail when a committed
file differs from its output, when groff or man warns about the page, when the table
misses an option of ``sockscope -h``, and when bash, driven through a pty as a user would
drive it, does not complete what it should.
"""

from __future__ import annotations

import importlib.util
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

import sockscope

ROOT = Path(__file__).resolve().parent.parent
GENMAN = ROOT / "tools" / "genman.py"
MAN = ROOT / "man" / "sockscope.1"
BASH = ROOT / "completions" / "sockscope"
ZSH = ROOT / "completions" / "_sockscope"


def _genman() -> ModuleType:
    spec = importlib.util.spec_from_file_location("genman", GENMAN)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["genman"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


genman = _genman()


@pytest.mark.parametrize("path", [MAN, BASH, ZSH], ids=lambda p: p.name)
def test_committed_file_is_the_generators_output(path: Path) -> None:
    want = genman.outputs()[path]
    assert path.read_text(encoding="utf-8") == want, (
        f"{path.relative_to(ROOT)} is stale: run python3 tools/genman.py and commit"
    )


def test_genman_check_mode() -> None:
    r = subprocess.run(
        [sys.executable, str(GENMAN), "--check"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr


def test_every_option_of_the_usage_text_is_in_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert sockscope.main(["-h"]) == 0
    usage = capsys.readouterr().out
    longs = set(re.findall(r"--([a-z][a-z0-9-]*)", usage))
    shorts = set(re.findall(r"(?<![\w-])-([A-Za-z0-9]),", usage))
    assert "tcp" in longs and "t" in shorts
    table_longs = {n for o in genman.OPTIONS for n in o.longs}
    table_shorts = {o.short for o in genman.OPTIONS if o.short}
    assert longs <= table_longs, longs - table_longs
    assert shorts <= table_shorts, shorts - table_shorts


def test_every_ss_option_of_the_table_is_in_ss_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert sockscope.main(["-h"]) == 0
    usage = capsys.readouterr().out
    for o in genman.OPTIONS:
        if o.origin != "ss":
            continue
        for name in o.longs:
            assert f"--{name}" in usage, name
        if o.short:
            assert f"-{o.short}," in usage, o.short


def test_man_page_covers_every_option_and_section() -> None:
    text = MAN.read_text(encoding="utf-8")
    for o in genman.OPTIONS:
        for name in o.longs:
            assert "\\-\\-" + name.replace("-", "\\-") in text, name
    for section in ("JSON OUTPUT", "BEYOND SS", "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"):
        assert f".SH {section}" in text
    assert "ss (8)" in text
    for var in ("COLUMNS", "PROC_ROOT", "PROC_NET_TCP", "TCPDIAG_FILE", "SOCKSCOPE_PURE"):
        assert var in text


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_renders_without_groff_warnings() -> None:
    r = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_l_renders_without_warnings() -> None:
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", LC_ALL="C.UTF-8")
    r = subprocess.run(
        ["man", "--warnings", "-l", str(MAN)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    assert "SOCKSCOPE(1)" in r.stdout and "JSON OUTPUT" in r.stdout


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_parses() -> None:
    r = subprocess.run(["zsh", "-n", str(ZSH)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert ZSH.read_text(encoding="utf-8").startswith("#compdef sockscope\n")


def test_bash_completion_parses() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    r = subprocess.run([bash, "-n", str(BASH)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- bash under a pty


class _Bash:
    """An interactive bash on a pty, with the completion sourced: keys in, screen out."""

    def __init__(self, cwd: Path) -> None:
        import fcntl
        import pty
        import struct
        import termios

        bash = shutil.which("bash")
        assert bash is not None
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(cwd),
            "TERM": "dumb",
            "INPUTRC": "/dev/null",
            "PS1": "$ ",
            "LC_ALL": "C",
        }
        self.proc = subprocess.Popen(
            [bash, "--norc", "--noprofile", "-i"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.out = b""
        self.send(f"set +H; bind 'set bell-style none'; source {BASH}; echo READY\n")
        self.expect(b"\nREADY")
        self.expect(b"$ ")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, pattern: bytes, timeout: float = 10.0) -> bytes:
        """Read until ``pattern`` has appeared (in output after the last call)."""
        deadline = time.monotonic() + timeout
        while pattern not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not seen; the pty showed {self.out!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.out += chunk
        if pattern not in self.out:
            raise AssertionError(f"{pattern!r} not seen; the pty showed {self.out!r}")
        seen, _, self.out = self.out.partition(pattern)
        return seen + pattern

    def line_after(self, keys: str, settle: float = 0.3) -> tuple[str, str]:
        """Type ``keys`` (with tabs), then run the completed line as printf's arguments.

        Returns what appeared on the screen while completing and the completed line's
        words as the shell split them, joined with "|"."""
        for part in re.split(r"(\t)", keys):
            if part:
                self.send(part)
                time.sleep(settle if part == "\t" else 0.05)
        r, _, _ = select.select([self.master], [], [], 0.5)
        screen = b""
        while r:
            screen += os.read(self.master, 4096)
            r, _, _ = select.select([self.master], [], [], 0.2)
        # Ctrl-A, Ctrl-E: turn the line into a command that prints its words, then a mark
        self.send("\x01printf '<%s>' \x05 ; echo =END=\n")
        got = self.expect(b">=END=").decode(errors="replace")
        self.expect(b"$ ")
        printed = got.rsplit("\n", 1)[-1]
        # a slow completion may still be listing when the printf keys arrive: keep it all
        screen_all = screen.decode(errors="replace") + got
        return screen_all, "|".join(re.findall(r"<([^<>]*)>", printed))

    def close(self) -> None:
        try:
            self.send("exit\n")
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self.master)


@pytest.fixture
def bash_pty(tmp_path: Path):  # type: ignore[no-untyped-def]
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    (tmp_path / "filter-file.txt").write_text("sport = :22\n")
    sh = _Bash(tmp_path)
    yield sh
    sh.close()


def test_bash_completes_long_options(bash_pty: _Bash) -> None:
    screen, line = bash_pty.line_after("sockscope --js\t\t")
    assert line == "sockscope|--json"
    # the first tab inserted the common prefix; a tab that changes nothing lists the rest
    screen, line = bash_pty.line_after("sockscope --json\t\t")
    assert line == "sockscope|--json"
    assert re.search(r"--json\s+--json-lines\s+--jsonl", screen), screen
    _, line = bash_pty.line_after("sockscope --no-h\t")
    assert line == "sockscope|--no-header"
    _, line = bash_pty.line_after("sockscope --fam\tin\t6\t")
    assert line == "sockscope|--family=inet6"


def test_bash_completes_table_names(bash_pty: _Bash) -> None:
    screen, line = bash_pty.line_after("sockscope -A t\t\t")
    assert line == "sockscope|-A|t"
    assert re.search(r"\btcp\b", screen) and re.search(r"\btipc\b", screen)
    _, line = bash_pty.line_after("sockscope -A 'all,!tc\t")
    assert line == "sockscope|-A|all,!tcp"
    _, line = bash_pty.line_after("sockscope -tA mpt\t")
    assert line == "sockscope|-tA|mptcp"
    _, line = bash_pty.line_after("sockscope --query=netl\t")
    assert line == "sockscope|--query=netlink"


def test_bash_completes_states_families_and_keywords(bash_pty: _Bash) -> None:
    _, line = bash_pty.line_after("sockscope state est\t")
    assert line == "sockscope|state|established"
    _, line = bash_pty.line_after("sockscope -t exclude syn-s\t")
    assert line == "sockscope|-t|exclude|syn-sent"
    _, line = bash_pty.line_after("sockscope -f inet6\t")
    assert line == "sockscope|-f|inet6"
    _, line = bash_pty.line_after("sockscope -f ne\t")
    assert line == "sockscope|-f|netlink"
    _, line = bash_pty.line_after("sockscope -tn state established dpo\t")
    assert line == "sockscope|-tn|state|established|dport"
    _, line = bash_pty.line_after("sockscope -F filter-f\t")
    assert line == "sockscope|-F|filter-file.txt"


def test_dist_check_accepts_the_launcher_as_committed() -> None:
    """CI's archive check (.ci/check_dist.py) looks for the launcher's marks; it must
    accept the two halves in scripts/ as they are, or CI fails only after the whole suite."""
    spec = importlib.util.spec_from_file_location("check_dist", ROOT / ".ci" / "check_dist.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    scripts = ROOT / "scripts"
    launcher = (scripts / "sockscope").read_text()
    runner = (scripts / "sockscope-run").read_text()
    assert mod.launcher_problems(launcher, runner) == []
    assert mod.launcher_problems(launcher, runner.replace("sockscope.cli.command", "x")) != []
