"""Record tests/data/hardening.json: what upstream ss 7.1 prints for the hardening cases.

    python3 tests/tools/record_hardening.py /path/to/upstream-7.1/ss [ID-PREFIX...]

With ID prefixes, only the cases whose id starts with one of them are recorded (again),
and the other recorded cases are kept.

The cases and their inputs are built by ``hardening_cases.py``. Each case is run nine
times: some damaged inputs make ss 7.1 read past its stack buffer, and then it crashes
(SIGSEGV) or prints one message or another depending on where ASLR put the stack. The
most frequent outcome of the runs that did not die of a signal is recorded, with how
many runs crashed and the other outcomes (``alternatives``, each accepted by the test); a case where every run crashed is recorded with status null and is pinned by a direct
test and QUIRKS.md instead. stdout is kept whole when short, else as a digest of its
first ``limit`` bytes (or all of it) and its length.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hardening_cases import CASES, command, materialize

RUNS = 9
SMALL = 20000


def _run(
    oracle: str, case: dict[str, object], argv: list[str], env: dict[str, str], limit: int | None
) -> dict[str, object]:
    full_env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", **env}
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(
            command([oracle], case, argv), stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
            env=full_env,
        )  # fmt: skip
        assert p.stdout is not None
        digest = hashlib.sha256()
        size = 0
        head = b""
        while chunk := p.stdout.read(1 << 20):
            if limit is not None and size + len(chunk) > limit:
                chunk = chunk[: limit - size]
            if size < SMALL:
                head += chunk[: SMALL - size]
            digest.update(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
        p.stdout.close()  # past the limit the writer dies of SIGPIPE, as under | head -c
        status = p.wait(300)
        err.seek(0)
        stderr = err.read()
    result: dict[str, object] = {
        "status": status,
        "stderr": stderr.decode("latin-1").replace(oracle, "PROG"),
    }
    if size < SMALL:
        result["stdout"] = head.decode("latin-1")
    else:
        result["stdout_sha256"] = digest.hexdigest()
        result["stdout_len"] = size
    return result


def main() -> None:
    oracle = sys.argv[1]
    version = subprocess.run([oracle, "-V"], capture_output=True, text=True).stdout
    if "iproute2-7.1" not in version:
        sys.exit(f"{oracle} is not ss 7.1: {version!r}")
    prefixes = tuple(sys.argv[2:])
    path = Path(__file__).resolve().parent.parent / "data" / "hardening.json"
    kept = json.loads(path.read_text())["cases"] if prefixes else []
    kept_by_id = {c["id"]: c for c in kept}
    out = []
    for case in CASES:
        if prefixes and not str(case["id"]).startswith(prefixes):
            if case["id"] in kept_by_id:
                out.append(kept_by_id[case["id"]])
            continue
        crashes = 0
        seen: list[dict[str, object]] = []
        for _ in range(RUNS):
            with tempfile.TemporaryDirectory() as tmp:
                argv, env = materialize(case, Path(tmp))
                res = _run(oracle, case, argv, env, case.get("limit"))  # type: ignore[arg-type]
            # the scratch path differs between runs: write it as {dir}
            res["stderr"] = str(res["stderr"]).replace(tmp, "{dir}")
            if int(res["status"]) < 0 and res["status"] != -13:  # type: ignore[call-overload]
                crashes += 1
            else:
                seen.append(res)
        keys = [json.dumps(r, sort_keys=True) for r in seen]
        if keys:
            best = max(set(keys), key=keys.count)
            found = json.loads(best)
            found["other_outcomes"] = len(keys) - keys.count(best)
            # ss 7.1 answered differently from run to run (ASLR): any of its answers is right
            others = sorted({k for k in keys if k != best})
            if others:
                found["alternatives"] = [json.loads(k) for k in others]
        else:
            found = {"status": None}
        out.append({"id": case["id"], "crashed_runs": crashes, **found})
    data = {"oracle": version.strip(), "cases": out}
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"recorded {len(out)} cases in {path}")


if __name__ == "__main__":
    main()
