"""sockscope's own command-line additions to ss: ``-j``, ``--version``, ``-h``'s section,
and the exit status when the reader of the output goes away.

ss's bytes stay first everywhere: ``-V`` prints ss's line alone, ``--version`` adds one
line after it, ``-h`` adds a section after ss's usage text (the usage printed on errors
and by ``-f help`` is ss's alone). With the oracle (``$SOCKSCOPE_ORACLE``), ss 7.1 is
checked to reject ``-j``, so the short option cannot collide with one of ss's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import sockscope
from conftest import needs_oracle, oracle_path
from sockscope.cli.usage import SOCKSCOPE_HELP, USAGE, VERSION

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "golden" / "scenario-21"  # ~1,000 sockets: ~400 KiB of -tani


def run(argv: list[str], cmd: list[str] | None = None, **env: str) -> tuple[bytes, bytes, int]:
    full = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "PYTHONPATH": str(ROOT / "src")}
    p = subprocess.run(
        [*(cmd or [sys.executable, "-m", "sockscope"]), *argv],
        env={**full, **env},
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return p.stdout, p.stderr, p.returncode


def test_j_is_json() -> None:
    env = {"TCPDIAG_FILE": str(RECORDED / "tcpdiag.bin")}
    out, err, status = run(["-tanj"], **env)
    assert (err, status) == (b"", 0)
    assert out == run(["-tan", "--json"], **env)[0]
    assert len(json.loads(out)["sockets"]) > 500


@needs_oracle
def test_j_is_not_an_ss_option() -> None:
    _out, err, status = run(["-j"], [oracle_path()])
    assert status == 255
    assert err.startswith(f"{oracle_path()}: invalid option -- 'j'\n".encode())


def test_version_adds_one_line_after_ss() -> None:
    for pure, name in (("1", "pure Python"), ("0", None)):
        out = run(["--version"], SOCKSCOPE_PURE=pure)[0]
        first, second = out.decode().splitlines()
        assert first + "\n" == VERSION
        assert second.startswith(f"sockscope {sockscope.__version__} (backend: ")
        assert name is None or second.endswith(f"(backend: {name})")
    want = run(["--version"])[0]
    for argv in (["--vers"], ["-t", "--version"]):
        assert run(argv) == (want, b"", 0), argv
    for argv in (["-V"], ["-v"], ["-Vt"]):
        assert run(argv) == (VERSION.encode(), b"", 0), argv


@needs_oracle
def test_version_first_line_is_ss() -> None:
    ours = run(["--version"])[0].split(b"\n")
    theirs = run(["--version"], [oracle_path()])
    assert theirs == (ours[0] + b"\n", b"", 0)
    assert run(["-V"]) == run(["-V"], [oracle_path()])


def test_the_version_is_the_packages() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["version"] == sockscope.__version__


def test_help_adds_a_section_after_ss_usage() -> None:
    for argv in (["-h"], ["--help"], ["-th"]):
        assert run(argv) == ((USAGE + SOCKSCOPE_HELP).encode(), b"", 0), argv
    assert run(["-f", "help"]) == (USAGE.encode(), b"", 0)
    out, err, status = run(["--no-such-option"])
    assert (out, status) == (b"", 255)
    assert err.endswith(USAGE.encode())


def test_help_section_names_every_own_option() -> None:
    from sockscope.cli.argv import LONGOPTS

    own = [name for name, _arg, _key in LONGOPTS[[o[0] for o in LONGOPTS].index("json") :]]
    assert "json-lines" in own and "count-by" in own
    for name in [*own, "version"]:
        assert f"--{name}" in SOCKSCOPE_HELP, name
    assert "-j, --json" in SOCKSCOPE_HELP


def test_option_switch_handles_every_key_once() -> None:
    """Every key getopt can return (SHORTOPTS, LONGOPTS) has exactly one handler in the
    option switch: its tables in cli/argv.py, cli/optactions.py or cli/answers.py (a key
    left out falls through to the usage error, as an unknown option would)."""
    from sockscope.cli import argv, optactions

    keys = {ch for ch in argv.SHORTOPTS if ch != ":"} | {key for _n, _a, key in argv.LONGOPTS}
    tables = [
        set(argv._FLAG_OPTS),
        set(argv._DB_OPTS),
        set(argv._AF_OPTS),
        set(argv._STATE_OPTS),
        set(argv._OTHER_OPTS),
        set(argv._ANSWER_OPTS),
        set(argv._ACTION_OPTS),
    ]
    assert set(optactions._ACTIONS) == argv._ACTION_OPTS
    handled = [k for table in tables for k in table]
    assert sorted(handled) == sorted(set(handled))  # once
    assert set(handled) == keys


@needs_oracle
def test_help_starts_with_ss_usage() -> None:
    ss = run(["-h"], [oracle_path()])
    ours = run(["-h"])
    assert ours[0].startswith(ss[0])
    assert ours[0][len(ss[0]) :] == SOCKSCOPE_HELP.encode()
    assert (ours[1], ours[2]) == (ss[1], ss[2]) == (b"", 0)
    assert run(["-f", "help"]) == run(["-f", "help"], [oracle_path()])


# --- a reader that goes away -----------------------------------------------------------
def _head_one(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    """Run sockscope into a real pipe whose reader takes one line and exits (``| head -1``);
    returns (exit status as a shell shows it, the line, stderr)."""
    shell = f'{sys.executable} -m sockscope {" ".join(argv)} 2>"$ERR" | head -1; '
    shell += 'echo "status=${PIPESTATUS[0]}"'
    err = Path(env["ERR"])
    out = subprocess.run(
        ["bash", "-c", shell], env=env, capture_output=True, check=True, timeout=120
    ).stdout
    line, status = out.rsplit(b"status=", 1)
    return int(status), line, err.read_bytes()


@pytest.mark.parametrize("mode", ["--json-lines", "--jsonl", "--json", "-j"])
def test_json_ends_quietly_with_status_0_when_the_reader_leaves(tmp_path: Path, mode: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LC_ALL": "C",
        "PYTHONPATH": str(ROOT / "src"),
        "TCPDIAG_FILE": str(RECORDED / "tcpdiag.bin"),
        "ERR": str(tmp_path / "err"),
    }
    for _ in range(3):  # the reader leaves at a different moment each time
        status, line, err = _head_one(["-tani", mode], env)
        assert line.startswith(b"{")
        assert (status, err) == (0, b"")


def test_text_reader_leaving_is_as_ss(tmp_path: Path) -> None:
    """The text output keeps ss's behaviour: the whole output fits the pipe -> 0; more
    than the reader takes -> death by SIGPIPE (141), as ss 7.1 does on the same input.
    Either way, nothing on stderr."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LC_ALL": "C",
        "PYTHONPATH": str(ROOT / "src"),
        "TCPDIAG_FILE": str(RECORDED / "tcpdiag.bin"),
        "ERR": str(tmp_path / "err"),
    }
    status, line, err = _head_one(["-tan", "sport = :1"], env)  # a header only
    assert (status, err) == (0, b"")
    status, line, err = _head_one(["-tani"], env)  # ~400 KiB
    assert line.startswith(b"State")
    assert (status, err) == (141, b"")


#: main(argv) called four times in one process, as a library caller would: the state of
#: the process before and after (collector, SIGPIPE, open descriptors, network namespace)
_AS_LIBRARY = """
import gc, io, json, os, signal, sys
from sockscope.cli import main
def state():
    return [gc.isenabled(), int(signal.getsignal(signal.SIGPIPE)),
            sorted(os.listdir("/proc/self/fd")), os.readlink("/proc/thread-self/ns/net")]
sys.argv[1:] and open(sys.argv[1], "w").write("sport = :22\\n")
before = state()
real, sys.stdout = sys.stdout, io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
calls = [["-tan"], ["--json", "-tan"], ["-tan", "-F", sys.argv[1]], ["-s"]]
if len(sys.argv) > 2:
    calls.append(["-N", sys.argv[2], "-tan"])
status = [main(c) for c in calls]
sys.stdout = real
print(json.dumps({"status": status, "before": before, "after": state()}))
"""


def test_main_as_a_library_leaves_the_process_as_found(tmp_path: Path) -> None:
    """A listing pauses the collector and resets SIGPIPE (ss dies of a closed pipe), -F
    opens a file and -N enters a namespace: a library caller of main() gets its process
    back as it was, call after call (before, the collector stayed off, SIGPIPE at
    SIG_DFL, the -F file open and the thread in -N's namespace)."""
    args = [str(tmp_path / "filter")]
    ns = None
    if os.geteuid() == 0 and subprocess.run(["ip", "netns", "add", f"sockscope-lib-{os.getpid()}"],
                                            capture_output=True, check=False).returncode == 0:  # fmt: skip
        ns = f"sockscope-lib-{os.getpid()}"
        args.append(ns)
    try:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent / "src"))
        r = subprocess.run([sys.executable, "-c", _AS_LIBRARY, *args], env=env,
                           capture_output=True, check=True, timeout=60)  # fmt: skip
    finally:
        if ns is not None:
            subprocess.run(["ip", "netns", "del", ns], check=False)
    got = json.loads(r.stdout)
    assert got["status"] == [0] * len(got["status"])
    assert got["after"] == got["before"]
    assert got["before"][:2] == [True, int(signal.SIG_IGN)]  # Python's own defaults
