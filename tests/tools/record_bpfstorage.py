"""Print ``EXPECTED`` for tests/test_bpfstorage.py: what ss 7.1 prints for each value
type of tests/bpfstore.py (run as root inside a private namespace, e.g.
``unshare -n sh -c 'ip link set lo up; python3 tests/tools/record_bpfstorage.py /path/to/ss71'``).

Each case's socket is listed alone (``sport = :PORT``), multiline and with ``-O``; the
text between ``map_id:N [`` and ``]`` (and after `` map_id:N``) is kept.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def main(ss: str) -> int:
    holder = subprocess.Popen(
        [sys.executable, str(TESTS / "bpfstore.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdin is not None and holder.stdout is not None
    info = json.loads(holder.stdout.readline())
    if "error" in info:
        sys.stderr.write(info["error"] + "\n")
        return 1
    print("EXPECTED = {")
    for name, (port, _map_id) in info.items():
        argv = [f"sport = :{port}", "--bpf-maps"]
        multi = subprocess.run([ss, "-tln", *argv], capture_output=True, check=True).stdout
        one = subprocess.run([ss, "-tlnO", *argv], capture_output=True, check=True).stdout
        m = re.search(r"\tmap_id:\d+ \[\n(.*)\n\t\]\n$", multi.decode(), re.S)
        o = re.search(r" map_id:\d+(.*)\n$", one.decode())
        assert m is not None and o is not None, name
        print(f"    {name!r}: (\n        {m.group(1)!r},\n        {o.group(1)!r},\n    ),")
    print("}")
    holder.stdin.close()
    holder.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
