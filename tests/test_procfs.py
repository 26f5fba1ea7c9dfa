"""The /proc/net fallbacks: line reading as ss's generic_record_read does it.

ss reads /proc/net/tcp with a 256-byte fgets buffer; a read that does not end in a
newline aborts the file. Observed with upstream ss 7.1 (PROC_ROOT pointing at a copy of
a recorded /proc/net/tcp with its first socket line padded with blanks to
253, 254, 255 and 256 bytes): 253 and 254 list every socket, 255 and 256 list none.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORDED_TCP = ROOT / "tests" / "golden" / "scenario-5" / "proc" / "net" / "tcp"

# socket lines of the padded files (header excluded) that upstream ss 7.1 listed
ORACLE_ROWS = {253: 2, 254: 2, 255: 0, 256: 0}


def _table(tmp_path: Path, length: int) -> Path:
    lines = RECORDED_TCP.read_bytes().split(b"\n")
    first = lines[1].ljust(length)
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_bytes(b"\n".join([lines[0], first, lines[2], b""]))
    return tmp_path


@pytest.mark.parametrize("length", sorted(ORACLE_ROWS))
def test_long_proc_line_aborts_the_file(tmp_path: Path, length: int) -> None:
    root = _table(tmp_path, length)
    env = {"PATH": os.environ.get("PATH", ""), "PROC_ROOT": str(root),
           "PYTHONPATH": str(ROOT / "src"), "LC_ALL": "C"}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "sockscope", "-tan"], env=env, capture_output=True, check=True
    ).stdout
    assert len(out.splitlines()) - 1 == ORACLE_ROWS[length]
