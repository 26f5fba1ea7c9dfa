"""The documentation stays true: the generated field reference matches the schema, the
README's Quick start is two commands, and every local link of the docs resolves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "QUIRKS.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_field_reference_is_generated_from_the_schema() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "genfields.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_field_reference_names_every_socket_field() -> None:
    import json

    schema = json.loads((ROOT / "src/sockscope/schema/sockscope.schema.json").read_text())
    page = (ROOT / "docs" / "json-fields.md").read_text()
    for name, node in schema["$defs"].items():
        for field in node.get("properties", {}):
            assert f"| `{field}` |" in page, (name, field)


def test_quick_start_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\n\n```sh\n(.*?)```", readme, re.S)
    assert block, "README has a Quick start code block"
    lines = [x for x in block.group(1).splitlines() if x.strip()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("pip install ") and lines[0].endswith("&& sockscope -tan")
    assert "[test]" in lines[1] and lines[1].endswith("&& python -m pytest -q")


def test_local_links_resolve() -> None:
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name}: {target}"


def test_api_reference_is_what_genapi_writes() -> None:
    """docs/api.md is generated from sockscope.__all__ (tools/genapi.py)."""
    check = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "genapi.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
