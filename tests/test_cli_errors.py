"""Bad input and informational options: stderr, stdout and exit status as ss prints them.

The expected values in ``tests/data/cli_errors.json`` were printed by upstream ss 7.1
(built with libbpf, so ``--bpf-maps``/``--bpf-map-id`` exist) for each argv, with the
program name written as ``PROG`` (glibc's getopt messages start with argv[0]; ours is
``sockscope`` when run as ``python -m sockscope``). Listings that ss printed on success
(status 0 with rows) depend on the host's sockets, so only their stderr and status are
compared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from goldtest import sockscope_addition

ROOT = Path(__file__).resolve().parent.parent
DATA = json.loads((Path(__file__).parent / "data" / "cli_errors.json").read_text())


def _id(case: dict[str, object]) -> str:
    return " ".join(case["argv"]) or "(none)"  # type: ignore[arg-type]


@pytest.mark.parametrize("case", DATA["cases"], ids=_id)
def test_like_ss(case: dict[str, object]) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
           "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
    if "SOCKSCOPE_PURE" in os.environ:  # the backend --version names is this run's
        env["SOCKSCOPE_PURE"] = os.environ["SOCKSCOPE_PURE"]
    p = subprocess.run(
        [sys.executable, "-m", "sockscope", *case["argv"]],  # type: ignore[misc]
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=60,
    )
    assert b"Traceback" not in p.stderr
    assert p.returncode == case["status"]
    want = str(case["stderr"]).replace("PROG", "sockscope")
    if os.geteuid() != 0:
        # recorded as root; without privileges ss 7.1 (and sockscope) explain the failure
        want = re.sub(r"(cannot get fd for BPF map ID \d+)\n",
                      r"\1: missing root permissions, CAP_BPF, or CAP_SYS_ADMIN\n", want)  # fmt: skip
    assert p.stderr.decode("latin-1") == want
    listing = case["status"] == 0 and str(case["stdout"] or "").startswith(("Netid", "State"))
    if case["stdout"] is not None and not listing:
        # -h and --version: ss's bytes, then sockscope's addition (QUIRKS.md)
        addition = sockscope_addition(case["argv"]).decode()  # type: ignore[arg-type]
        assert p.stdout.decode("latin-1") == case["stdout"] + addition


def test_truncated_tcpdiag_file_message_has_no_newline(tmp_path: Path) -> None:
    """ss prints "Unexpected EOF reading $TCPDIAG_FILE" without a newline (observed with
    upstream ss 7.1 on the first 1000 bytes of a recorded dump, and on an empty file)."""
    dump = tmp_path / "t.bin"
    recorded = ROOT / "tests" / "golden" / "scenario-5" / "tcpdiag.bin"
    for data in (b"", recorded.read_bytes()[:1000]):
        dump.write_bytes(data)
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C",
               "PYTHONPATH": str(ROOT / "src"), "TCPDIAG_FILE": str(dump)}  # fmt: skip
        p = subprocess.run(
            [sys.executable, "-m", "sockscope", "-tan"], capture_output=True, env=env, check=False
        )
        assert p.returncode == 0
        assert p.stderr == b"Unexpected EOF reading $TCPDIAG_FILE"


@pytest.mark.parametrize("error", ["MemoryError()",
                                   "ImportError('x.so: failed to map segment from shared object')",
                                   "OSError(12, 'Cannot allocate memory')",
                                   "SystemError('<function _find_and_load> returned NULL "
                                   "without setting an exception')",
                                   "ImportError('x.so: cannot open shared object file')"])  # fmt: skip
def test_memory_exhaustion_is_one_line_not_a_traceback(error: str) -> None:
    """Under ``ulimit -v`` a listing's MemoryError (or a library that cannot be mapped,
    dlopen's mmap failing) is one line on stderr, ``Cannot allocate memory``, and status 1,
    where ss 7.1 aborts on its failed malloc() (found by the RLIMIT_AS attack on a
    namespace of 18,751 sockets: tracebacks); another ImportError says what it is."""
    code = (
        "import sys; from sockscope.cli import command\n"
        f"def boom(*a): raise {error}\n"
        "command._main = boom\n"
        "sys.exit(command.main(['-tan']))\n"
    )
    src = str(Path(__file__).resolve().parent.parent / "src")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False,
                       env={**os.environ, "PYTHONPATH": src})  # fmt: skip
    want = b"cannot open shared" if "cannot open" in error else b"Cannot allocate memory"
    assert p.returncode == 1
    assert p.stderr.startswith(b"sockscope: ") and want in p.stderr
    assert p.stderr.count(b"\n") == 1 and b"Traceback" not in p.stderr


@pytest.mark.parametrize("cap", ["AS", "DATA", "none"])
def test_memory_capped_reads_the_soft_limits(cap: str) -> None:
    """kernel.rlimit.memory_capped (no worker thread under a memory cap) is true exactly
    when RLIMIT_AS or RLIMIT_DATA has a finite soft limit, as resource reads them."""
    code = (
        "import resource, sys\n"
        "from sockscope.kernel.rlimit import memory_capped\n"
        "inf = resource.RLIM_INFINITY\n"
        "for name in ('AS', 'DATA'):\n"
        "    r = getattr(resource, 'RLIMIT_' + name)\n"
        "    hard = resource.getrlimit(r)[1]\n"
        "    if name == sys.argv[1]:\n"
        "        resource.setrlimit(r, (1 << 34 if hard == inf else hard, hard))\n"
        "    elif hard == inf:\n"
        "        resource.setrlimit(r, (inf, inf))\n"
        "finite = any(resource.getrlimit(getattr(resource, 'RLIMIT_' + n))[0] != inf\n"
        "             for n in ('AS', 'DATA'))\n"
        "print(memory_capped(), finite)\n"
    )
    src = str(ROOT / "src")
    p = subprocess.run([sys.executable, "-c", code, cap], capture_output=True, check=True,
                       text=True, env={**os.environ, "PYTHONPATH": src})  # fmt: skip
    got, finite = p.stdout.split()
    assert got == finite
    if cap != "none":
        assert got == "True"


def test_out_of_memory_cues_are_one_list() -> None:
    """The launcher and the package's front door run before sockscope.errors is imported
    and hold copies of its NOMEM_CUES: the same words, so that the same failures give
    the one line wherever they happen."""
    import ast

    from sockscope.errors import NOMEM_CUES

    def tuples(text: str) -> list[tuple[str, ...]]:
        found = []
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Tuple) and any(
                isinstance(e, ast.Constant) and e.value == "failed to map segment"
                for e in node.elts
            ):
                found.append(tuple(ast.literal_eval(node)))
        return found

    for path in (ROOT / "scripts" / "sockscope-run", ROOT / "src" / "sockscope" / "__init__.py"):
        assert tuples(path.read_text()) == [NOMEM_CUES], path
