"""The CLI's import path stays lean: no heavy stdlib modules, a bounded startup cost.

``python -X importtime`` reports every module imported with its own and
cumulative cost in microseconds.  It runs in a fresh interpreter with ``-S``:
``site`` and the ``.pth`` files of whatever environment runs the tests may
import ``typing`` and friends first, which would hide sockscope's own imports.
Startup cost is the sum of the cumulative times of the top-level imports made
by ``import sockscope.cli`` (interpreter start-up modules excluded).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
FORBIDDEN = ("argparse", "dataclasses", "inspect", "typing", "ipaddress", "json", "pyroute2")
#: cumulative import time of the sockscope package, in milliseconds (importtime clock)
BUDGET_MS = float(os.environ.get("SOCKSCOPE_IMPORT_BUDGET_MS", "40"))


def importtime(code: str) -> list[tuple[str, int, int, int]]:
    """(name, depth, self us, cumulative us) per import made running ``code``."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    env.pop("PYTHONPROFILEIMPORTTIME", None)
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


def test_startup_budget(cli_imports: list[tuple[str, int, int, int]]) -> None:
    names = [m for m, *_ in cli_imports]
    assert "sockscope.cli" in names
    total = sum(cum for _, depth, _, cum in cli_imports if depth == 0)
    worst = sorted(((own, m) for m, _, own, _ in cli_imports), reverse=True)[:5]
    detail = ", ".join(f"{m} {own / 1000:.1f}" for own, m in worst)
    assert total / 1000 < BUDGET_MS, (
        f"import sockscope.cli costs {total / 1000:.1f} ms cumulative, budget {BUDGET_MS} ms "
        f"(largest self times, ms: {detail})"
    )
