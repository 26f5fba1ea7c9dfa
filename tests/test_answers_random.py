"""A randomised live checker of --count-by / --top / --sort against the awk/sort/uniq
pipelines people run over ss 7.1's output (``$SOCKSCOPE_ORACLE``).

A private namespace gets a random socket mix (``answers_random.py``: TCP listeners,
established, TIME-WAIT, CLOSE-WAIT/FIN-WAIT-2, SYN-SENT to an address routed nowhere,
UDP, UNIX, IPv4, IPv6 and v4-mapped IPv6, several processes with different names and
uids, sockets shared by a forked child). For every key, some pairs, several tables
and filters, the groups of ``--count-by --json-lines`` (and of the text table) equal
what ``ss -H ... | awk '{print ...}' | sort | uniq -c`` counts, with the Recv-Q/Send-Q
sums of each group; ``--sort`` equals ``sort -s -k`` on the same column.

Bounded for CI (one seed, ``SOCKSCOPE_ANSWERS_SEEDS`` seeds otherwise:
``SOCKSCOPE_ANSWERS_SEEDS=50 pytest tests/test_answers_random.py`` runs 50 namespaces).

What a pipeline reads, per table layout (``ss -H``): ``$1`` netid, ``$2`` state, ``$3``
Recv-Q, ``$4`` Send-Q, ``$5`` local ``addr:port``, ``$6`` peer ``addr:port`` (``-x``
prints ``path inode``: one more column each), then the extras (``users:((...))`` with
``-p``, ``uid:N`` with ``-e`` when not 0, ``cgroup:PATH`` with ``--cgroup``).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import netns

TESTS = Path(__file__).resolve().parent
ORACLE = os.environ.get("SOCKSCOPE_ORACLE")
SEEDS = int(os.environ.get("SOCKSCOPE_ANSWERS_SEEDS", "1"))
live = pytest.mark.live
needs_root = pytest.mark.skipif(netns.live_reason() is not None, reason=netns.live_reason() or "")
needs_oracle = pytest.mark.skipif(
    not ORACLE or not os.access(ORACLE, os.X_OK), reason="SOCKSCOPE_ORACLE is not set"
)
pytestmark = [live, needs_root, needs_oracle]

#: the address of ``ADDR:PORT``, without ss's brackets and ``%scope`` (the key is the
#: address, as the JSON's ``local_address``; the interface is not part of it)
_ADDR = "sed -E 's/:[^:]*$//; s/%.*//; s/^\\[(.*)\\]$/\\1/'"
_PORT = "sed -E 's/.*://'"
_EXTRA = "awk '{{ if (match($0, /{rx}/)) print substr($0, RSTART+{a}, RLENGTH-{b}); else print \"{d}\" }}'"


def _extra(rx: str, a: int, b: int, default: str = "") -> str:
    return _EXTRA.format(rx=rx, a=a, b=b, d=default)


def layout(header: str, unix: bool) -> dict[str, str]:
    """key -> the pipeline printing its value, one line per ss line. ss leaves out the
    Netid column when one table is listed and State when one state is, so the columns
    are found from the header; ``-x`` prints ``path inode``: one more column each."""
    words = header.replace("Local Address:Port", "Local").replace("Peer Address:Port", "Peer")
    cols = {w: i + 1 for i, w in enumerate(words.split())}
    loc, peer = cols["Local"], cols["Local"] + (2 if unix else 1)
    netid = f"awk '{{print ${cols['Netid']}}}'" if "Netid" in cols else None
    state = f"awk '{{print ${cols['State']}}}'" if "State" in cols else None
    found = {
        "state": state or "awk '{print \"?\"}'",
        "netid": netid or "awk '{print \"?\"}'",
        # ss prints * for the IPv6 wildcard of a dual-stack socket only
        "family": f'awk \'{{print (${loc} ~ /^(\\[|\\*:)/) ? "inet6" : "inet"}}\'',
        "local_address": f"awk '{{print ${loc}}}' | {_ADDR}",
        "local_port": f"awk '{{print ${loc}}}' | {_PORT}",
        "peer_address": f"awk '{{print ${peer}}}' | {_ADDR}",
        "peer_port": f"awk '{{print ${peer}}}' | {_PORT}",
        "process": _extra('users:\\(\\("[^"]*"', 9, 10),
        "pid": 'awk \'{ if (match($0, /users:\\(\\("[^"]*",pid=[0-9]+/)) '
        '{ s = substr($0, RSTART, RLENGTH); sub(/.*pid=/, "", s); print s } else print "" }\'',
        "uid": _extra(" uid:[0-9]+", 5, 5, "0"),
        "cgroup": _extra("cgroup:[^ ]+", 7, 7),
        "netns": "awk '{print \"\"}'",
        "container": "awk '{print \"\"}'",
        "recv_q": f"awk '{{print ${cols['Recv-Q']}}}'",
        "send_q": f"awk '{{print ${cols['Send-Q']}}}'",
    }
    if unix:
        found["local_address"] = f"awk '{{print ${loc}}}'"
        found["local_port"] = f"awk '{{print ${loc + 1}}}'"
        found["peer_address"] = f"awk '{{print ${peer}}}'"
        found["peer_port"] = f"awk '{{print ${peer + 1}}}'"
    return found


INET, UNIX = False, True
#: ss options that print the column a key reads
NEEDS = {"process": ["-p"], "pid": ["-p"], "uid": ["-e"], "cgroup": ["--cgroup"]}

PREFIX = (
    "python3 -c 'import ipaddress, sys\n"
    "n4, n6 = (int(x) for x in sys.argv[1:])\n"
    "for line in sys.stdin:\n"
    '    if line.strip() == "*":\n'
    '        print("*")\n'
    "        continue\n"
    "    a = ipaddress.ip_address(line.strip())\n"
    '    m = getattr(a, "ipv4_mapped", None)\n'
    "    a = m or a\n"
    "    n = n4 if a.version == 4 else n6\n"
    '    print(ipaddress.ip_network(f"{a}/{n}", strict=False))\' '
)


def pipeline(key: str, layout: dict[str, str]) -> str:
    name, _sep, arg = key.partition("/")
    if name == "peer_prefix":
        lengths = arg.split("/")
        return f"{layout['peer_address']} | {PREFIX}{lengths[0]} {lengths[-1]}"
    return layout[name]


def run_pipeline(text: bytes, pipe: str) -> list[str]:
    out = subprocess.run(
        ["bash", "-c", pipe],
        input=text,
        capture_output=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
    ).stdout.decode()
    return out.split("\n")[:-1] if out else []


def expected(
    text: bytes, keys: list[str], layout: dict[str, str]
) -> dict[tuple[str, ...], list[int]]:
    """{values: [count, recv_q, send_q]}: the pipelines' columns pasted, then counted."""
    columns = [run_pipeline(text, pipeline(k, layout)) for k in keys]
    rq = run_pipeline(text, layout["recv_q"])
    sq = run_pipeline(text, layout["send_q"])
    n = len(rq)
    assert all(len(c) == n for c in columns), (keys, [len(c) for c in columns], n)
    found: dict[tuple[str, ...], list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for i in range(n):
        g = found[tuple(c[i] for c in columns)]
        g[0] += 1
        g[1] += int(rq[i])
        g[2] += int(sq[i])
    return dict(found)


def _show(key: str, value: object) -> str:
    if value is None:
        return ""
    if key.endswith("_port") and value == 0:
        return "*"  # ss prints port 0 as *
    return str(value)


def got_json(out: bytes, keys: list[str]) -> dict[tuple[str, ...], list[int]]:
    names = [k.partition("/")[0] for k in keys]
    found = {}
    for line in out.decode().splitlines():
        obj = json.loads(line)
        values = tuple(_show(n, obj["group"].get(n)) for n in names)
        assert values not in found, values
        found[values] = [obj["count"], obj["recv_q"], obj["send_q"]]
    return found


def got_text(out: bytes, keys: list[str]) -> dict[tuple[str, ...], list[int]]:
    lines = out.decode().splitlines()
    head = lines[0].split()
    assert head == ["COUNT", *(k.partition("/")[0].upper() for k in keys), "RECV-Q", "SEND-Q"]
    found = {}
    for line in lines[1:]:
        cells = line.split()
        values = tuple("" if c == "-" else c for c in cells[1:-2])
        found[values] = [int(cells[0]), int(cells[-2]), int(cells[-1])]
    return found


@pytest.fixture(scope="module", params=range(SEEDS), ids=lambda s: f"seed{s}")
def mix(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(TESTS))
    import answers_random

    ns = netns.Netns(f"sockscope-rnd-{os.getpid()}-{request.param}")
    proc = None
    try:
        for cmd in answers_random.setup_commands():
            ns.run(cmd, check=True)
        proc = subprocess.Popen(
            [
                *ns.enter(),
                sys.executable,
                str(TESTS / "answers_random.py"),
                str(request.param),
                "6",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None
        ready, _w, _x = select.select([proc.stdout], [], [], 60)
        assert ready and proc.stdout.readline() == b"ready\n"
        yield ns
    finally:
        if proc is not None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        ns.close()


def _run(cmd: list[str], env: dict[str, str]) -> bytes:
    res = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


#: (table and filter options, layout): the listings the keys are counted over
TABLES = [
    (["-tuan"], INET),
    (["-tln"], INET),
    (["-tan", "-4"], INET),
    (["-tuan", "-6"], INET),
    (["-tan", "state", "established"], INET),
    (["-uan", "dport", "=", ":9999"], INET),
    (["-tan", "state", "syn-sent"], INET),
    (["-tan", "state", "time-wait"], INET),
    (["-xan"], UNIX),
]
KEYS = [
    "state",
    "netid",
    "family",
    "local_address",
    "local_port",
    "peer_address",
    "peer_prefix/8",
    "peer_prefix/24/64",
    "peer_prefix/16/120",
    "peer_port",
    "process",
    "pid",
    "uid",
    "netns",
    "cgroup",
    "container",
    "state,local_port",
    "process,peer_address",
    "netid,state,uid",
    "peer_prefix/24,process",
]
UNIX_KEYS = {
    "state",
    "netid",
    "local_address",
    "local_port",
    "peer_address",
    "peer_port",
    "process",
    "pid",
    "netns",
    "container",
    "state,local_port",
}


def check(mix, args: list[str], unix: bool, key: str) -> None:  # type: ignore[no-untyped-def]
    keys = key.split(",")
    env = netns.tool_env()
    extra = sorted({o for k in keys for o in NEEDS.get(k, [])})
    # TIME-WAIT sockets expire (60 s) and SYN-SENT ones give up: compare only when ss
    # printed the same before and after sockscope ran
    for _attempt in range(5):
        full = _run([*mix.enter(), ORACLE, *extra, *args], env)
        if _compare(mix, args, unix, keys, key, full, env) and full == _run(
            [*mix.enter(), ORACLE, *extra, *args], env
        ):
            return
    _compare(mix, args, unix, keys, key, full, env, strict=True)


def _compare(  # type: ignore[no-untyped-def]
    mix, args, unix, keys, key, full, env, strict: bool = False
) -> bool:
    """sockscope's groups against the pipeline over ``full``. Each sockscope output is read
    once (a second run may see a socket come or go: the caller retries what may differ
    between runs unless ``strict``); the order of one output's groups is checked always."""
    header, _nl, text = full.partition(b"\n")
    columns = layout(header.decode(), unix)
    if any(columns.get(k.partition("/")[0], "").endswith('"?"}\'') for k in keys):
        return True  # the column is not printed: one table or one state
    want = expected(text, keys, columns)
    base = [*mix.enter(), *netns.sockscope_cmd(), *args, "--count-by", key]
    lines = _run([*base, "--json-lines"], env)
    tx = got_text(_run(base, env), keys)
    top = [json.loads(x) for x in _run([*base, "--json-lines", "--top", "3"], env).splitlines()]
    # --top N keeps the first N groups of the full order: biggest first
    full_groups = [json.loads(x) for x in lines.decode().splitlines()]
    counts = [g["count"] for g in full_groups]
    assert counts == sorted(counts, reverse=True)
    if key in ("local_port", "peer_port", "pid", "uid", "state", "netid", "process"):
        # ties: the key values ascending (numbers as numbers, text as text), missing last
        def tie(g: dict[str, object]) -> tuple[object, ...]:
            v = g["group"].get(key)  # type: ignore[attr-defined]
            return (-g["count"], v is None, v if v is not None else 0)  # type: ignore[operator]

        assert full_groups == sorted(full_groups, key=tie)
    js = got_json(lines, keys)
    if not strict and (js != want or tx != want or top != full_groups[:3]):
        return False
    assert js == want, full.decode()
    assert tx == want
    assert top == full_groups[:3]
    return True


def _cases() -> list[tuple[int, str]]:
    """Every key over ``-tuan``, and a seeded sample of the other (table, key) pairs (all
    of them when ``SOCKSCOPE_ANSWERS_SEEDS`` is set: the unbounded run by hand)."""
    import random

    rest = [(t, k) for t in range(1, len(TABLES)) for k in KEYS]
    if TABLES[0][1] is INET and "SOCKSCOPE_ANSWERS_SEEDS" not in os.environ:
        rest = random.Random(15).sample(rest, 40)
    return [(0, k) for k in KEYS] + rest


@pytest.mark.parametrize(
    ("table", "key"), _cases(), ids=[f"{' '.join(TABLES[t][0])}-{k}" for t, k in _cases()]
)
def test_count_by_equals_pipeline(mix, backend: str, table: int, key: str) -> None:  # type: ignore[no-untyped-def]
    args, unix = TABLES[table]
    if unix and key not in UNIX_KEYS:
        pytest.skip("an inet key")
    check(mix, args, unix, key)


#: --sort key -> (ss options, key column pipeline (one value per line), `sort` flags):
#: what a user sorts ss's lines with; ``-s`` keeps ss's order of ties, as sockscope does
SORT_COLUMNS = {
    "local_port": ("local_port", "-n"),
    "-local_port": ("local_port", "-nr"),
    "peer_port": ("peer_port", "-n"),
    "-peer_port": ("peer_port", "-nr"),
    "recv_q": ("recv_q", "-n"),
    "-recv_q": ("recv_q", "-nr"),
    "-send_q": ("send_q", "-nr"),
    "state": ("state", ""),
    "-state": ("state", "-r"),
    "netid": ("netid", ""),
    # sockets without a process are last both ways in sockscope; `sort -r` puts the
    # empty key last too (ascending, `sort` puts it first: sockscope deliberately not)
    "-process": ("process", "-r"),
    "-pid": ("pid", "-nr"),
    "-uid": ("uid", "-nr"),
}
#: addresses: sockscope sorts them numerically (10.0.0.9 before 10.0.0.10, IPv4 before
#: IPv6); over IPv4 rows that is `sort -V` (version order of dotted quads)
SORT_V4 = {
    "local_address": ("local_address", "-V"),
    "-peer_address": ("peer_address", "-Vr"),
}


def _sorted_by_pipeline(text: bytes, column: list[str], flags: str) -> bytes:
    lines = text.decode().split("\n")[:-1]
    keyed = "".join(f"{k}\t{line}\n" for k, line in zip(column, lines, strict=True))
    return subprocess.run(
        ["bash", "-c", f"sort -s -t '\t' -k1,1{flags.lstrip('-')} | cut -f2-"],
        input=keyed.encode(),
        capture_output=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
    ).stdout


@pytest.mark.parametrize(
    ("key", "args"),
    [(k, ["-tuan"]) for k in SORT_COLUMNS] + [(k, ["-tan", "-4"]) for k in SORT_V4],
)
def test_sort_equals_sort_s(mix, backend: str, key: str, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    env = netns.tool_env()
    name, flags = {**SORT_COLUMNS, **SORT_V4}[key]
    extra = NEEDS.get(name, [])
    for _attempt in range(5):
        full = _run([*mix.enter(), ORACLE, *extra, *args], env)
        got = _run([*mix.enter(), *netns.sockscope_cmd(), *extra, *args, "--sort", key], env)
        again = _run([*mix.enter(), ORACLE, *extra, *args], env)
        if netns.mask_volatile(full) == netns.mask_volatile(again):
            break
    header, _nl, body = full.partition(b"\n")
    column = run_pipeline(body, layout(header.decode(), unix=False)[name])
    want = header + b"\n" + _sorted_by_pipeline(body, column, flags)
    assert netns.mask_volatile(got) == netns.mask_volatile(want)  # -e's timers tick


LIBRARY = """
import json, sys
import sockscope
q = sockscope.Query(tables=["tcp", "udp"], states=["all"])
by = sys.argv[1].split(",")
print(json.dumps([g.to_dict() for g in sockscope.count(q, by=[k.lstrip("-") for k in by])]))
rows = [[r.netid, r.local_address, r.local_port, r.peer_address, r.peer_port, r.inode]
        for r in sockscope.sockets(q, sort=by)]
print(json.dumps(rows))
"""


@pytest.mark.parametrize(
    "key", ["state", "peer_address", "-local_port", "process,peer_port", "peer_prefix/24/64"]
)
def test_library_matches_cli(mix, backend: str, key: str) -> None:  # type: ignore[no-untyped-def]
    """sockscope.count() and sockets(sort=...) answer what --count-by and --sort print."""
    env = netns.tool_env()
    count_key = key.lstrip("-")
    for _attempt in range(5):
        lib = _run([*mix.enter(), sys.executable, "-c", LIBRARY, key], env)
        cli = _run(
            [
                *mix.enter(),
                *netns.sockscope_cmd(),
                "-tuan",
                "--count-by",
                count_key,
                "--json-lines",
            ],
            env,
        )
        rows = _run(
            [*mix.enter(), *netns.sockscope_cmd(), "-tuan", "--sort", key, "--json-lines"], env
        )
        lib_groups, lib_rows = (json.loads(x) for x in lib.decode().splitlines())
        want_groups = [
            {k: v for k, v in json.loads(x).items() if k != "schema_version"}
            for x in cli.decode().splitlines()
        ]
        want_rows = [
            [
                d["netid"],
                d["local_address"],
                d["local_port"],
                d["peer_address"],
                d["peer_port"],
                d.get("inode"),
            ]
            for d in map(json.loads, rows.decode().splitlines())
        ]
        if lib_groups == want_groups and [r[:5] for r in lib_rows] == [r[:5] for r in want_rows]:
            return
    assert lib_groups == want_groups
    assert [r[:5] for r in lib_rows] == [r[:5] for r in want_rows]
