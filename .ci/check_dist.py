"""CI: the built sdist and wheel hold what they must (run by .ci/run after python -m build).

Usage: python .ci/check_dist.py DIST_DIR
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

WHEEL = [
    "sockscope/__init__.py",
    "sockscope/py.typed",
    "sockscope/schema/sockscope.schema.json",
    "{data}/share/man/man1/sockscope.1",
    "{data}/share/bash-completion/completions/sockscope",
    "{data}/share/zsh/site-functions/_sockscope",
    "{info}/licenses/LICENSE",
    "{scripts}/sockscope",
    "{scripts}/sockscope-run",
]
SDIST = [
    "README.md",
    "QUIRKS.md",
    "CHANGELOG.md",
    "LICENSE",
    "pyproject.toml",
    "setup.py",
    "docs/install.md",
    "man/sockscope.1",
    "completions/sockscope",
    "completions/_sockscope",
    "tools/genman.py",
    "tests/conftest.py",
    "tests/test_golden.py",
    "tests/test_packaging.py",
    "tests/golden",
    "src/sockscope/py.typed",
    "src/sockscope/schema/sockscope.schema.json",
    "src/sockscope/_core.c",
    "scripts/sockscope",
    "scripts/sockscope-run",
    "contrib/systemd/sockscope-exporter.service",
    "contrib/systemd/sockscope-textfile.service",
    "contrib/systemd/sockscope-textfile.timer",
]


def launcher_problems(launcher: str, runner: str) -> list[str]:
    """What is wrong with the two halves of the command as packaged (tests/test_packaging.py
    runs this on the files in scripts/, so a change there cannot leave this check behind)."""
    problems = []
    if not launcher.startswith("#!/bin/sh\n") or "sockscope-run" not in launcher:
        problems.append("the launcher script sockscope (scripts/sockscope)")
    if not runner.startswith("#!python") or "from sockscope.cli.command import" not in runner:
        problems.append("the launcher's Python half (scripts/sockscope-run)")
    return problems


def main(dist: Path) -> int:
    (whl,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    name_version = "-".join(whl.name.split("-")[:2])
    with zipfile.ZipFile(whl) as z:
        in_wheel = set(z.namelist())
        launcher = z.read(f"{name_version}.data/scripts/sockscope").decode()
        runner = z.read(f"{name_version}.data/scripts/sockscope-run").decode()
    top = sdist.name.removesuffix(".tar.gz") + "/"
    with tarfile.open(sdist) as t:
        in_sdist = {n.removeprefix(top) for n in t.getnames()}
    missing = [
        n
        for n in (
            p.format(
                data=f"{name_version}.data/data",
                scripts=f"{name_version}.data/scripts",
                info=f"{name_version}.dist-info",
            )
            for p in WHEEL
        )
        if n not in in_wheel
    ]
    missing += [f"sdist:{n}" for n in SDIST if n not in in_sdist]
    missing += launcher_problems(launcher, runner)
    if missing:
        print("missing from the archives:", *missing, sep="\n  ", file=sys.stderr)
        return 1
    print(f"{whl.name}: {len(in_wheel)} files; {sdist.name}: {len(in_sdist)} entries; ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
