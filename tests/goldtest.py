"""Golden-case runner: recorded inputs, upstream ss 7.1 outputs, byte for byte.

A scenario folder holds recorded inputs (``tcpdiag.bin``, a raw inet_diag dump
as ``ss -D`` writes it, and ``proc/``, a copy of ``/proc/net``) and a
``cases/`` folder.  Each case folder holds:

``argv``
    the arguments, one a line;
``env``
    ``VAR=value`` lines; values of input variables (``TCPDIAG_FILE``,
    ``PROC_ROOT``, ``PROC_NET_*``, ...) are paths relative to the scenario
    folder, any other value (``COLUMNS=80``) is taken literally;
``stdout``
    the exact bytes upstream ``ss`` printed (trailing blanks included);
``status``
    its exit status.

This is the format of ``../shared/goldens`` (whose env files only hold path
variables), so both sets run through the same code.  The candidate runs with a
fixed environment, stdin from /dev/null and stdout on a pipe (never a tty).
In the spirit of coverage.py's ``goldtest``: on a mismatch the actual output
is written to ``tests/actual/<scenario>/<case>`` and the assertion message is a
diff whose lines are ``repr``-ed, so trailing blanks and tabs are visible.
"""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
GOLDEN = TESTS / "golden"
SHARED_GOLDEN = REPO.parent / "shared" / "goldens"
ACTUAL = TESTS / "actual"

#: environment variables whose values in ``env`` files are paths inside the scenario folder
PATH_VARS = frozenset({"TCPDIAG_FILE", "PROC_ROOT", "PROC_IP_LOCAL_PORT_RANGE"})
BASE_ENV = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C", "HOME": "/root"}
TIMEOUT = 120


def is_path_var(name: str) -> bool:
    return name in PATH_VARS or name.startswith("PROC_NET_")


class Case:
    """One recorded case: ``scenario/cases/name``."""

    __slots__ = ("argv", "env", "name", "path", "scenario", "status", "stdout")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.scenario = path.parent.parent
        self.name = path.name
        self.argv = (path / "argv").read_text().splitlines()
        self.env = {}
        for line in (path / "env").read_text().splitlines():
            if line.strip():
                key, _, value = line.partition("=")
                self.env[key] = str(self.scenario / value) if is_path_var(key) else value
        self.stdout = (path / "stdout").read_bytes()
        self.status = int((path / "status").read_text())

    @property
    def id(self) -> str:
        origin = "shared/" if self.scenario.parent == SHARED_GOLDEN else ""
        return f"{origin}{self.scenario.name}/{self.name}"

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(BASE_ENV)
        env["PATH"] = os.environ.get("PATH", BASE_ENV["PATH"])
        env.update(extra or {})
        if "SOCKSCOPE_PURE" in os.environ:  # the backend fixture's choice (conftest.py)
            env["SOCKSCOPE_PURE"] = os.environ["SOCKSCOPE_PURE"]
        env.update(self.env)
        return env


def scenario_dirs(*roots: Path) -> list[Path]:
    """Scenario folders (those with a ``cases/`` folder) under each existing root."""
    found = []
    for root in roots:
        if root.is_dir():
            found.extend(sorted(p for p in root.iterdir() if (p / "cases").is_dir()))
    return found


def all_cases(*roots: Path) -> list[Case]:
    roots = roots or (GOLDEN, SHARED_GOLDEN)
    return [
        Case(c)
        for s in scenario_dirs(*roots)
        for c in sorted((s / "cases").iterdir())
        if (c / "argv").is_file()
    ]


def candidate_command() -> list[str]:
    """The command under test: ``$SOCKSCOPE_CAND`` (shell words) or ``python -m sockscope``."""
    cand = os.environ.get("SOCKSCOPE_CAND")
    if cand:
        return shlex.split(cand)
    return [sys.executable, "-m", "sockscope"]


def run(cmd: list[str], case: Case) -> tuple[int, bytes, bytes]:
    extra = {"PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [*cmd, *case.argv],
        env=case.environ(extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def visible_diff(want: bytes, got: bytes, limit: int = 60) -> str:
    """A diff of two outputs, one ``repr`` per line (blanks and tabs visible).

    Replaced blocks are shown as interleaved ``-``/``+`` pairs, so a change that
    touches every line (a column width) is visible within the first few lines.
    """
    a = [repr(x) for x in want.split(b"\n")]
    b = [repr(x) for x in got.split(b"\n")]
    out = ["--- expected", "+++ actual"]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        out.append(f"@@ expected line {i1 + 1}, actual line {j1 + 1} @@")
        old, new = a[i1:i2], b[j1:j2]
        for k in range(max(len(old), len(new))):
            if k < len(old):
                out.append("-" + old[k])
            if k < len(new):
                out.append("+" + new[k])
        if len(out) > limit:
            break
    if len(out) > limit:
        out = [*out[:limit], "... (more differences)"]
    return "\n".join(out)


def save_actual(case: Case, stdout: bytes, stderr: bytes, status: int) -> Path:
    out = ACTUAL / case.id.replace("/", os.sep)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stdout").write_bytes(stdout)
    (out / "stderr").write_bytes(stderr)
    (out / "status").write_text(f"{status}\n")
    return out


def oracle_problem(ss: str) -> str | None:
    """Why ``ss`` cannot serve as the oracle (it must be upstream iproute2 7.1), or None."""
    try:
        out = subprocess.run([ss, "-V"], capture_output=True, text=True, check=False).stdout
    except OSError as exc:
        return f"{ss}: {exc}"
    if "iproute2-7.1" not in out:
        return f"{ss} -V says {out.strip()!r}, want iproute2-7.1"
    return None


def update(case: Case, ss: str) -> Case:
    """Re-run the oracle ``ss`` on ``case``'s recorded input; rewrite and reload the case."""
    status, stdout, _ = run([ss], case)
    (case.path / "stdout").write_bytes(stdout)
    (case.path / "status").write_text(f"{status}\n")
    return Case(case.path)


def sockscope_addition(argv: list[str]) -> bytes:
    """What sockscope prints after ss's bytes (QUIRKS.md, "Beyond ss"): its own options
    after ``-h``'s usage text, its version after ``--version``'s line; else nothing.
    The version line names the backend that the command run with this environment uses
    (``SOCKSCOPE_PURE``, set by the ``backend`` fixture, or the compiled core if built)."""
    import importlib.util

    import sockscope
    from sockscope.cli.usage import SOCKSCOPE_HELP

    if argv in (["-h"], ["--help"]):
        return SOCKSCOPE_HELP.encode()
    if argv == ["--version"]:
        pure = os.environ.get("SOCKSCOPE_PURE", "") not in ("", "0")
        built = importlib.util.find_spec("sockscope._core") is not None
        name = "compiled C core" if built and not pure else "pure Python"
        return f"sockscope {sockscope.__version__} (backend: {name})\n".encode()
    return b""


def check(case: Case, cmd: list[str] | None = None) -> str | None:
    """Run the candidate on ``case``; None if it matched, else a failure report.

    sockscope must print ss's bytes, plus its documented addition for ``-h``, ``--help``
    and ``--version``; another candidate (``$SOCKSCOPE_CAND``, ss itself) may leave the
    addition out."""
    status, stdout, stderr = run(cmd or candidate_command(), case)
    want = case.stdout + sockscope_addition(case.argv)
    allowed = (want,) if cmd is None and not os.environ.get("SOCKSCOPE_CAND") else (
        want, case.stdout)  # fmt: skip
    if status == case.status and stdout in allowed:
        return None
    where = save_actual(case, stdout, stderr, status)
    report = [f"{case.id}: argv={case.argv!r} env={sorted(case.env)}"]
    if status != case.status:
        report.append(f"exit status {status}, expected {case.status}")
    if stdout not in allowed:
        report.append(visible_diff(want, stdout))
    if stderr:
        report.append("stderr (last 1500 bytes):\n" + stderr[-1500:].decode(errors="replace"))
    report.append(f"actual output written to {where}")
    return "\n".join(report)
