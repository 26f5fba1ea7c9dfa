"""Record what ss 7.1 prints for a socket state past its ``sstate_name[]`` array.

    python3 tests/tools/record_states.py /path/to/upstream-7.1/ss [--out FILE] [--jobs N]

A /proc/net/tcp line's state is read with ``%x`` into a C int, so any value reaches
``sock_state_print``, which indexes ``sstate_name[]`` without a bound: ss prints what
lies there in its 7.1 binary (mostly ``(null)``), or crashes. This runs ss on one line
per state in -8192..8191 (three times: a text that changes between runs is an address,
recorded as a crash) and writes ``src/sockscope/render/sstate_far.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HEAD = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
LOW, HIGH = -8192, 8192
ROW = re.compile(r"^(.*?) +0 +0 +127\.0\.0\.1:22 ", re.S)


def field(state: int) -> str:
    """A state field that %x reads as ``state`` and whose second character (the state
    tcp_show_line filters on) is one ``state all`` selects."""
    if state >= 0:
        return "0X%X" % state  # "X": state 33, bit 1
    digits = "%X" % -state
    return "-" + digits if digits[0] in "123456789ABCD" else "-0X" + digits


def run(oracle: str, scratch: str, state: int) -> str | None:
    net = Path(scratch, str(state), "net")
    net.mkdir(parents=True, exist_ok=True)
    line = (f"   0: 0100007F:0016 0100007F:0050 {field(state)} 00000000:00000000 00:00000000"
            " 00000000     0        0 100 1 0 20 4 30 10 -1\n")  # fmt: skip
    (net / "tcp").write_bytes(HEAD + line.encode())
    (net / "tcp6").write_bytes(HEAD)
    p = subprocess.run([oracle, "-tan", "state", "all"], env={"PROC_ROOT": str(net.parent)},
                       capture_output=True, check=False)  # fmt: skip
    if p.returncode < 0:
        return None
    found = ROW.match(p.stdout.decode("latin-1").split("\n", 1)[1])
    if found is None:
        raise SystemExit(f"state {state}: unexpected output {p.stdout!r}")
    return found.group(1)


def recorded(path: Path) -> tuple[int, dict[int, str | None]]:
    """The number of builds a table this tool wrote was recorded from, and its text of
    every state in LOW..HIGH past sstate_name[] (``None``: UNKNOWN)."""
    table: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), table)  # our own output
    far, negative = table["FAR"], table["NEGATIVE"]
    assert isinstance(far, dict) and isinstance(negative, dict)
    assert (table["LOW"], table["HIGH"]) == (LOW, HIGH), path
    builds = table.get("BUILDS", 1)  # tables before BUILDS came from one build
    assert isinstance(builds, int)
    return builds, {st: (far.get(st, "(null)") if st >= 256 else negative.get(st))
                    for st in range(LOW, HIGH) if st < 0 or st >= 256}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("oracle", help="upstream ss 7.1")
    ap.add_argument("--out", type=Path, help="write here instead of src/sockscope/render/")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="ss runs at a time")
    ap.add_argument("--stable-with", type=Path, metavar="TABLE",
                    help="a table this tool recorded from another build of ss 7.1 (the "
                         "current sstate_far.py): keep only the texts both builds print")  # fmt: skip
    args = ap.parse_args()
    oracle = args.oracle
    states = range(LOW, HIGH)
    runs = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as ex:
        for _ in range(3):
            runs.append(list(ex.map(lambda st: run(oracle, tmp, st), states)))
    texts = {st: (a if a == b == c else None) for st, a, b, c in zip(states, *runs, strict=True)}
    builds = 1
    if args.stable_with is not None:
        # what lies past the array moves with the build (a build with libbpf shifts ss's
        # string tables by 8 entries): a text another build does not print there is
        # garbage of this build, and sockscope prints UNKNOWN for it (QUIRKS.md)
        before, other = recorded(args.stable_with)
        differ = sum(texts[st] != t for st, t in other.items())
        texts.update({st: None for st, t in other.items() if texts[st] != t})
        builds = before + 1
        print(f"{differ} states print otherwise than in {args.stable_with}")
    far = {st: t for st, t in texts.items() if st >= 256 and t != "(null)"}
    negative = {st: t for st, t in texts.items() if st < 0 and t is not None}
    out = args.out or Path(__file__).resolve().parents[2] / "src/sockscope/render/sstate_far.py"
    lines = [
        '"""What ss 7.1 prints for a socket state far past ``sstate_name[]`` (from /proc).',
        "",
        "A /proc/net/tcp state is read with ``%x`` into a C int and indexes ``sstate_name[]``",
        "without a bound; ss 7.1 prints what lies there in its binary, or crashes. Recorded",
        "from ss 7.1 by ``tests/tools/record_states.py`` (do not edit): states 256..8191",
        "print ``(null)`` except those in ``FAR``; negative states crash except those in",
        "``NEGATIVE``. ``None``: ss crashes, prints an address (it changes from run to run),",
        f"or the {builds} builds of ss 7.1 recorded print different texts (garbage of a build).",
        '"""',
        "",
        f"LOW, HIGH = {LOW}, {HIGH}",
        f"BUILDS = {builds}",
        "# fmt: off",
        f"FAR: dict[int, str | None] = {far!r}  # noqa: E501",
        f"NEGATIVE: dict[int, str] = {negative!r}  # noqa: E501",
        "# fmt: on",
        "",
    ]
    out.write_text("\n".join(lines))
    print(f"{len(far)} far, {len(negative)} negative states written to {out}")


if __name__ == "__main__":
    main()
