"""The CLI's import path stays lean: no heavy stdlib modules, a bounded startup cost.

``python -X importtime`` reports every module imported with its own and
cumulative cost in microseconds.  It runs in a fresh interpreter with ``-S``:
``site`` and the ``.pth`` files of whatever environment runs the tests may
import ``typing`` and friends first, which would hide sockscope's own imports.
The start-up budget is a count of sockscope's own modules that ``import
sockscope.cli`` loads, not a time: time is the benchmark's to measure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
FORBIDDEN = ("argparse", "dataclasses", "inspect", "typing", "ipaddress", "json", "pyroute2")


def importtime(code: str, pure: bool = False) -> list[tuple[str, int, int, int]]:
    """(name, depth, self us, cumulative us) per import made running ``code`` (with the
    pure-Python backend forced when ``pure``)."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.pop("SOCKSCOPE_PURE", None)
    if pure:
        env["SOCKSCOPE_PURE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        if own.strip().isdigit():
            depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
            rows.append((name.strip(), depth, int(own), int(cumulative)))
    return rows


@pytest.fixture(scope="module")
def cli_imports() -> list[tuple[str, int, int, int]]:
    importtime("import sockscope.cli")  # warm the bytecode cache first
    baseline = {row[0] for row in importtime("pass")}
    return [row for row in importtime("import sockscope.cli") if row[0] not in baseline]


@pytest.mark.parametrize("name", FORBIDDEN)
def test_heavy_module_not_imported(cli_imports: list[tuple[str, int, int, int]], name: str) -> None:
    loaded = [m for m, *_ in cli_imports if m == name or m.startswith(name + ".")]
    assert not loaded, f"`import sockscope.cli` pulls in {loaded}"


#: how many of its own modules ``import sockscope.cli`` may load (counted, not timed: a
#: timed test fails on a busy machine; benchmarks/bench.py measures the time)
MODULE_BUDGET = int(os.environ.get("SOCKSCOPE_IMPORT_MODULE_BUDGET", "18"))


def test_startup_module_budget(cli_imports: list[tuple[str, int, int, int]]) -> None:
    names = sorted({m for m, *_ in cli_imports if m.split(".")[0] == "sockscope"})
    assert "sockscope.cli" in names
    assert len(names) <= MODULE_BUDGET, (
        f"import sockscope.cli loads {len(names)} modules, budget {MODULE_BUDGET}: {names}"
    )


#: what a plain TCP listing must not load: functools (with collections under it) and the
#: extra-information structures cost about 4 ms of a 20 ms start on a 300-socket host
LISTING_FORBIDDEN = (*FORBIDDEN, "functools", "collections", "sockscope.kernel.structs")


@pytest.mark.parametrize("backend", ["compiled", "pure"])
def test_plain_listing_stays_lean(backend: str) -> None:
    code = (
        "import io, os, sys\n"
        "sys.stdout = io.TextIOWrapper(open(os.devnull, 'wb'))\n"
        "from sockscope.cli import main\n"
        "main(['-tan'])\n"
    )
    names = {row[0] for row in importtime(code, pure=backend == "pure")}
    assert "sockscope.tables.inet.row" in names  # the listing really ran
    loaded = sorted(n for n in names if n in LISTING_FORBIDDEN)
    assert not loaded, f"sockscope -tan loads {loaded}"
