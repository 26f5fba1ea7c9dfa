"""Record tests/data/cli_errors.json: what an upstream ss 7.1 prints for bad input.

    python3 tests/tools/record_cli_errors.py /path/to/upstream-7.1/ss

The oracle must say "iproute2-7.1" for -V. Each case keeps argv, the exit status,
stdout (None when it is large) and stderr with the oracle's path replaced by PROG.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CASES = [
    ["-q"], ["--foo"], ["--foo=bar"], ["--fam"], ["-f"], ["--family"], ["-f", "foo"],
    ["--family=bogus"], ["-A", "foo"], ["-A", "tcp,bar"], ["--query=bogus"], ["-A", "!tcp"],
    ["-A", "!all"], ["-t", "-A", "!tcp"], ["--numeric=3"], ["--s"], ["--so"], ["--no"],
    ["state", "bogus"], ["state"], ["exclude", "new-syn-recv"], ["excl", "listen"],
    ["-tn", "state", "BOGUS"], ["-tn", "sport"], ["-tn", "sport", "=", ":abc"],
    ["-tn", "dst", "foo.invalid."], ["-tn", "src", "::1"], ["-tn", "(", "sport", "=", ":22"],
    ["-tn", "sport", "=", ":22", ")"], ["-tn", "dev", "nonexistdev"], ["-tn", "fwmark", "abc"],
    ["-D"], ["-N"], ["-N", "nonexist-netns"], ["-Z"], ["-z"], ["-F", "/nonexistent"],
    ["-F", "/dev/null", "-F", "/dev/null"], ["--bpf-map-id=abc"], ["--bpf-map-id=0"],
    ["--bpf-maps", "--bpf-map-id=3"], ["--bpf-map-id=3", "--bpf-maps"], ["--bpf-map-id=0x10"],
    ["--bpf-map-id=019"], ["--bpf-map-id=4294967295"], ["--bpf-map-id=+7"], ["--bpf-map-id=-1"],
    ["-V"], ["-v"], ["--version"], ["-h"], ["-f", "help"], ["-x", "-t", "-4", "src", "127.0.0.1"],
    ["-E", "-x"], ["-tD", "/nonexistent-dir/x"], ["-x", "-D", "-"],
    ["-tn", "state", "listening", "sport", "=", ":1", "state", "all"],
]  # fmt: skip


def main() -> None:
    oracle = sys.argv[1]
    version = subprocess.run([oracle, "-V"], capture_output=True, text=True).stdout
    if "iproute2-7.1" not in version:
        sys.exit(f"{oracle} is not ss 7.1: {version!r}")
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    out = []
    for argv in CASES:
        p = subprocess.run(
            [oracle, *argv], capture_output=True, stdin=subprocess.DEVNULL, env=env, check=False
        )
        out.append({
            "argv": argv,
            "status": p.returncode,
            "stdout": p.stdout.decode("latin-1") if len(p.stdout) < 20000 else None,
            "stderr": p.stderr.decode("latin-1").replace(oracle, "PROG"),
        })  # fmt: skip
    data = {"oracle": version.strip() + " (upstream, built with libbpf)", "cases": out}
    path = Path(__file__).resolve().parent.parent / "data" / "cli_errors.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"recorded {len(out)} cases in {path}")


if __name__ == "__main__":
    main()
