"""``contrib/systemd/``: the example units are valid and their command lines work.

* ``systemd-analyze verify`` accepts the three units with no message at all (unknown
  keys are only warnings there, so any output fails the test). It checks that
  ``ExecStart``'s program exists, so the units are verified from a copy whose
  ``/usr/bin/sockscope`` points at a stub; ``--man=no`` because it would otherwise run
  ``man sockscope`` and fail where the man page is not installed. Skipped when
  ``systemd-analyze`` is missing (it comes with systemd; not every container has it).
* The ``ExecStart`` lines themselves run: the textfile unit's command writes a valid
  ``sockscope.prom`` (into a temporary directory instead of node_exporter's), and the
  exporter's command serves ``/metrics`` (on port 0 instead of the example port) and
  exits 0 on SIGTERM, as ``systemctl stop`` sends it.
"""

from __future__ import annotations

import http.client
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

import netns
from test_textfile import check_exposition

UNITS = netns.REPO / "contrib" / "systemd"
NAMES = ["sockscope-exporter.service", "sockscope-textfile.service", "sockscope-textfile.timer"]
ANALYZE = shutil.which("systemd-analyze")


def _exec_start(name: str) -> list[str]:
    (line,) = re.findall(r"^ExecStart=(.*)$", (UNITS / name).read_text(), re.M)
    words = shlex.split(line)
    assert words[0] == "/usr/bin/sockscope"
    return words[1:]


def test_units_present() -> None:
    assert sorted(p.name for p in UNITS.iterdir()) == sorted(NAMES)
    timer = (UNITS / "sockscope-textfile.timer").read_text()
    assert "OnUnitActiveSec=" in timer


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (package systemd)")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    stub = tmp_path / "sockscope"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    for name in NAMES:
        text = (UNITS / name).read_text().replace("/usr/bin/sockscope", str(stub))
        (tmp_path / name).write_text(text)
    assert ANALYZE is not None
    out = subprocess.run(
        [ANALYZE, "verify", "--man=no", *(str(tmp_path / n) for n in NAMES)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    # and it would notice a mistake: a misspelt key is reported
    bad = tmp_path / "sockscope-exporter.service"
    bad.write_text(bad.read_text().replace("ProtectSystem=", "ProtectSystm="))
    out = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(bad)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert "ProtectSystm" in out.stderr


def test_textfile_command(tmp_path: Path) -> None:
    args = _exec_start("sockscope-textfile.service")
    i = args.index("--textfile")
    args[i + 1] = str(tmp_path)
    out = subprocess.run(
        [*netns.sockscope_cmd(), *args], env=netns.tool_env(), capture_output=True, check=False
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, b"", b"")
    check_exposition((tmp_path / "sockscope.prom").read_bytes())


def test_exporter_command() -> None:
    args = _exec_start("sockscope-exporter.service")
    i = args.index("--listen")
    assert args[i + 1].startswith("127.0.0.1:")  # loopback unless told otherwise
    args[i + 1] = "127.0.0.1:0"
    proc = subprocess.Popen(
        [*netns.sockscope_cmd(), *args], env=netns.tool_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        m = re.search(rb"http://127\.0\.0\.1:(\d+)/metrics", proc.stderr.readline())
        assert m is not None
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=20)
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        assert resp.status == 200
        check_exposition(resp.read())
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
