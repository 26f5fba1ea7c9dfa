"""The column engine on outputs big enough for ss's batch renders.

ss buffers cells in 1 MiB chunks and renders whenever five exist at the end of a row,
so a long listing is laid out in batches whose widths only grow; the last cell before a
render is never measured. These tests run sockscope on a synthetic TCPDIAG_FILE
(``tests/tools/synthdump.py``: 60,000 IPv4 then 12,000 IPv6 sockets, about 6 MiB of
text) and compare the SHA-256 of its output with the digest of what upstream ss 7.1
printed for the same bytes and arguments. The digests were recorded with

    python3 tests/tools/synthdump.py > big.bin
    env [COLUMNS=N] TCPDIAG_FILE=big.bin <upstream 7.1 ss> ARGS | sha256sum

(storing the 6 MiB outputs themselves would bloat the repository).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "tools"))
import synthdump

#: every test here runs against both backends, compiled and pure (conftest.py)
pytestmark = pytest.mark.usefixtures("backend")

ROOT = Path(__file__).resolve().parent.parent

ORACLE_SHA256 = {
    ("-tn", ""): "53b1ef19e29ad63a0724e649d12256ab0ec7b59aa823e2edc713f8b7cde5f64d",
    ("-tn", "100"): "786c9d7848fb24781b0e451909dff436e755f57c91799847725015ea1de6080e",
    ("-tn", "60"): "c29a712badf8ae3e3962cd0789b4aed9eb646fc27788f6be6a0fd9c0ea45d2c7",
    ("-tne", ""): "692f1ab94c406dc92dcd5d0742bf686be3104f03b485840f779e17837938578c",
    ("-tne", "100"): "4e1284d7ef2beb018a935d21d432488c84e4cc1248f838b3badf4f01262a113f",
    ("-tne", "60"): "4f9d554641b1a521e01382c4799d54e3576c520c54ab1eef2ed207ad66b32dcc",
    ("-tnO", ""): "53b1ef19e29ad63a0724e649d12256ab0ec7b59aa823e2edc713f8b7cde5f64d",
    ("-tnO", "100"): "786c9d7848fb24781b0e451909dff436e755f57c91799847725015ea1de6080e",
    ("-tnO", "60"): "c29a712badf8ae3e3962cd0789b4aed9eb646fc27788f6be6a0fd9c0ea45d2c7",
    ("-tnH", ""): "f9a2019525573191db85ec2c74feefdfd0f2c5f7d1814b1e197befbdcf3ac483",
    ("-tnH", "100"): "d8aecd4deae9bbc9b6d3c12d9e467e2539da305db2cdb2ff186b84fd70d5c6c7",
    ("-tnH", "60"): "498114a6b3366e6affbe377ca6e858805049368a4d4e2570a327a9a117cc0048",
    ("-tn -Q", ""): "cad67ec9d168673186ca782142d0d838d5fb2b9e849c3b708291740b3b0b66a9",
    ("-tn -Q", "100"): "7eb9fef7c6bf3b4fa0aaf8d37af7bc54257701a14b4989459a44781ca9d8aab4",
    ("-tn -Q", "60"): "ed63ead31e9782312d49019cdc7cdda0109ca42512b751cc7b6b7fd375d3802e",
}


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "big.bin"
    path.write_bytes(synthdump.big_dump())
    return path


@pytest.mark.parametrize(("args", "columns"), sorted(ORACLE_SHA256))
def test_batches_like_ss(big_dump: Path, args: str, columns: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "PYTHONPATH": str(ROOT / "src"),
        "TCPDIAG_FILE": str(big_dump),
    }
    if "SOCKSCOPE_PURE" in os.environ:  # the backend fixture's choice
        env["SOCKSCOPE_PURE"] = os.environ["SOCKSCOPE_PURE"]
    if columns:
        env["COLUMNS"] = columns
    out = subprocess.run(
        [sys.executable, "-m", "sockscope", *args.split()],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
    ).stdout
    assert out.count(b"\n") >= 72000
    assert hashlib.sha256(out).hexdigest() == ORACLE_SHA256[(args, columns)]
