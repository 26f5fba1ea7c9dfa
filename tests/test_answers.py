"""--count-by, --sort, --watch and --top-view against the pipelines people run on ss today.

* Recorded dumps (``TCPDIAG_FILE`` of the golden scenarios): every count equals what
  ``ss -tan | awk | sort | uniq -c`` gives on the listing of the same dump, and every
  sorted listing equals ``ss -tan | sort -s`` on the same key. The listing is ss 7.1's
  (``$SOCKSCOPE_ORACLE``) when set, else sockscope's own (byte-identical to it, as the
  golden tests pin), so these run everywhere.
* Live (root, ``live``): a private namespace with a fleet of known connections (fixed
  counts per peer, per port, per process: ``answers_fixture.py fleet``), compared with
  the pipelines over ss 7.1's output of the same namespace (skipped without
  ``$SOCKSCOPE_ORACLE``); the watch timeline (``answers_fixture.py script``) with its
  exact events and rates within 5%; the terminal view under a pty with keystrokes.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import math
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netns

TESTS = Path(__file__).resolve().parent
GOLDEN = TESTS / "golden"
FIXTURE = TESTS / "answers_fixture.py"
ORACLE = os.environ.get("SOCKSCOPE_ORACLE")
NO_ORACLE = "SOCKSCOPE_ORACLE is not set (the path of an upstream ss 7.1)"
live = pytest.mark.live
needs_root = pytest.mark.skipif(netns.live_reason() is not None, reason=netns.live_reason() or "")
needs_oracle = pytest.mark.skipif(not ORACLE or not os.access(ORACLE, os.X_OK), reason=NO_ORACLE)

# ---------------------------------------------------------------- the pipelines


def validate(obj: object) -> None:
    """The object validates against the shipped schema (when jsonschema is installed)."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - a test dependency
        return
    schema = json.loads((TESTS.parent / "src/sockscope/schema/sockscope.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(obj)


#: key -> (--count-by key, the awk/sed pipeline over `ss -tanH` lines printing the value)
PIPELINES = {
    "state": ("state", "awk '{print $1}'"),
    "local_port": ("local_port", "awk '{print $4}' | sed -E 's/.*://'"),
    "peer_port": ("peer_port", "awk '{print $5}' | sed -E 's/.*://' | sed 's/^\\*$/0/'"),
    "peer_address": (
        "peer_address",
        "awk '{print $5}' | sed -E 's/:[^:]*$//; s/^\\[(.*)\\]$/\\1/; s/%.*//'",
    ),
    "local_address": (
        "local_address",
        "awk '{print $4}' | sed -E 's/:[^:]*$//; s/^\\[(.*)\\]$/\\1/; s/%.*//'",
    ),
    "peer_prefix/24": (
        "peer_prefix/24",
        "awk '{print $5}' | sed -E 's/:[^:]*$//' | grep -v '\\[' "
        '| awk -F. \'{print $1"."$2"."$3".0/24"}\'',
    ),
}


#: keys whose pipeline reads IPv4 addresses only: both sides list with -4
V4_ONLY = {"peer_prefix/24"}


def family(key: str) -> list[str]:
    return ["-4"] if key in V4_ONLY else []


def uniq_c(text: bytes, pipeline: str) -> dict[str, int]:
    """``... | PIPELINE | sort | uniq -c`` as {value: count}."""
    out = subprocess.run(
        ["bash", "-c", f"{pipeline} | sort | uniq -c"],
        input=text,
        capture_output=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
    ).stdout.decode()
    counts = {}
    for line in out.splitlines():
        n, _sep, value = line.strip().partition(" ")
        counts[value] = int(n)
    return counts


def groups(out: bytes, key: str) -> dict[str, int]:
    """--count-by --json-lines output as {value: count} (values as text, "" when absent)."""
    found = {}
    name = key.partition("/")[0]
    for line in out.decode().splitlines():
        obj = json.loads(line)
        assert obj["schema_version"] == "1.1"
        found[str(obj["group"].get(name, ""))] = obj["count"]
    return found


def sockscope(args: list[str], env: dict[str, str] | None = None, prefix: list[str] = ()) -> bytes:  # type: ignore[assignment]
    cmd = [*prefix, *netns.sockscope_cmd(), *args]
    res = subprocess.run(cmd, capture_output=True, env=env or netns.tool_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def listing(args: list[str], env: dict[str, str], prefix: list[str] = ()) -> bytes:  # type: ignore[assignment]
    """The ss listing the pipelines read: the oracle's when set, else sockscope's."""
    if ORACLE and os.access(ORACLE, os.X_OK):
        res = subprocess.run([*prefix, ORACLE, *args], capture_output=True, env=env, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout
    return sockscope(args, env, prefix)


# ---------------------------------------------------------------- recorded dumps

DUMPS = sorted(p for p in GOLDEN.glob("*/tcpdiag.bin"))


@pytest.mark.parametrize("dump", DUMPS, ids=[p.parent.name for p in DUMPS])
@pytest.mark.parametrize("key", sorted(PIPELINES))
def test_count_equals_uniq_c(dump: Path, key: str) -> None:
    env = netns.tool_env(TCPDIAG_FILE=str(dump))
    text = listing(["-tanH", *family(key)], env)
    option, pipeline = PIPELINES[key]
    expected = uniq_c(text, pipeline)
    got = groups(
        sockscope(["-tan", *family(key), "--count-by", option, "--json-lines"], env), option
    )
    assert got == expected


@pytest.mark.parametrize("dump", DUMPS, ids=[p.parent.name for p in DUMPS])
def test_count_sums_queues(dump: Path) -> None:
    env = netns.tool_env(TCPDIAG_FILE=str(dump))
    text = listing(["-tanH"], env)
    sums = uniq_c(text, "awk '{print $1}'")
    rq = subprocess.run(
        ["awk", "{q[$1]+=$2; s[$1]+=$3} END {for (k in q) print k, q[k], s[k]}"],
        input=text,
        capture_output=True,
        check=True,
    ).stdout.decode()
    expected = {k: (int(a), int(b)) for k, a, b in (line.split() for line in rq.splitlines())}
    out = sockscope(["-tan", "--count-by", "state", "--json-lines"], env)
    got = {}
    for line in out.decode().splitlines():
        obj = json.loads(line)
        got[obj["group"]["state"]] = (obj["recv_q"], obj["send_q"])
        assert obj["count"] == sums[obj["group"]["state"]]
    assert got == expected


def test_count_text_table() -> None:
    dump = DUMPS[0]
    env = netns.tool_env(TCPDIAG_FILE=str(dump))
    out = sockscope(["-tan", "--count-by", "state,local_port", "--top", "3"], env).decode()
    lines = out.splitlines()
    assert lines[0].split() == ["COUNT", "STATE", "LOCAL_PORT", "RECV-Q", "SEND-Q"]
    assert len(lines) == 4
    counts = [int(line.split()[0]) for line in lines[1:]]
    assert counts == sorted(counts, reverse=True)
    assert all(not line.endswith(" ") for line in lines)
    # every row as wide as the header: the columns are aligned
    assert len({len(line) for line in lines}) == 1 or all(
        len(line) <= len(max(lines, key=len)) for line in lines
    )
    no_header = sockscope(["-tan", "--count-by", "state", "-H"], env).decode()
    assert not no_header.startswith("COUNT")
    doc = json.loads(sockscope(["-tan", "--count-by", "state", "--json"], env))
    assert doc["schema_version"] == "1.1"
    validate(doc)
    for line in sockscope(
        ["-tani", "--count-by", "peer_prefix/16,state", "--json-lines"], env
    ).splitlines():
        validate(json.loads(line))
    assert sum(g["count"] for g in doc["groups"]) == len(
        sockscope(["-tanH"], env).decode().splitlines()
    )


#: --sort key -> the `sort -s` arguments over `ss -tanH` lines prefixed by the key column
SORTS = {
    "local_port": ('awk \'{n=split($4,a,":"); print a[n] "\\t" $0}\'', "-s -t '\t' -k1,1n"),
    "-local_port": ('awk \'{n=split($4,a,":"); print a[n] "\\t" $0}\'', "-s -t '\t' -k1,1nr"),
    "-recv_q": ("awk '{print $2 \"\\t\" $0}'", "-s -t '\t' -k1,1nr"),
    "send_q": ("awk '{print $3 \"\\t\" $0}'", "-s -t '\t' -k1,1n"),
    "state": ("awk '{print $1 \"\\t\" $0}'", "-s -t '\t' -k1,1"),
    "-recv_q,local_port": (
        'awk \'{n=split($4,a,":"); print $2 "\\t" a[n] "\\t" $0}\'',
        "-s -t '\t' -k1,1nr -k2,2n",
    ),
}


@pytest.mark.parametrize("dump", DUMPS, ids=[p.parent.name for p in DUMPS])
@pytest.mark.parametrize("key", sorted(SORTS))
def test_sort_equals_sort_s(dump: Path, key: str) -> None:
    env = netns.tool_env(TCPDIAG_FILE=str(dump))
    text = listing(["-tan"], env)
    head, _nl, body = text.partition(b"\n")
    prefix, sort_args = SORTS[key]
    cut = "cut -f3-" if "," in key else "cut -f2-"
    expected = subprocess.run(
        ["bash", "-c", f"{prefix} | sort {sort_args} | {cut}"],
        input=body,
        capture_output=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
    ).stdout
    got = sockscope(["-tan", "--sort", key], env)
    assert got == head + b"\n" + expected


def test_sort_top_and_json() -> None:
    env = netns.tool_env(TCPDIAG_FILE=str(DUMPS[0]))
    full = sockscope(["-tanH", "--sort", "-recv_q"], env).splitlines()
    top = sockscope(["-tanH", "--sort", "-recv_q", "--top", "3"], env).splitlines()
    # the same rows; the columns are as wide as the rows shown need
    assert [netns.fold_blanks(r) for r in top] == [netns.fold_blanks(r) for r in full[:3]]
    lines = sockscope(["-tan", "--sort", "-recv_q", "--json-lines"], env).decode().splitlines()
    queues = [json.loads(line)["recv_q"] for line in lines]
    assert queues == sorted(queues, reverse=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count-by", "nope"], 'unknown key "nope"'),
        (["--count-by", "state,"], "empty key"),
        (["--count-by", "peer_prefix"], "needs a length"),
        (["--count-by", "peer_prefix/40/200"], "bad prefix length"),
        (["--count-by", "peer_prefix/8,state,peer_prefix/16"], 'key "peer_prefix" given twice'),
        (["--top", "x", "--count-by", "state"], "invalid --top"),
        (["--watch=0"], "invalid --watch interval"),
        (["--sort", "state/3"], "takes no"),
        # -E reports closing sockets only: an answer kept up to date by it would drift
        (["-E", "--count-by", "state"], "--count-by cannot be combined with -E"),
        (["--sort", "state", "-E"], "--sort cannot be combined with -E"),
        (["-E", "--watch"], "--watch cannot be combined with -E"),
        (["-E", "--all-netns", "--count-by", "netns"], "--count-by cannot be combined with -E"),
    ],
)
def test_bad_answers(args: list[str], message: str) -> None:
    res = subprocess.run(
        [*netns.sockscope_cmd(), "-tan", *args], capture_output=True, env=netns.tool_env()
    )
    assert res.returncode == 255
    assert message in res.stderr.decode()


def test_abbreviations_keep_ss_meaning() -> None:
    """An abbreviation of one of ss's options means what it means to ss (sockscope's own
    long options are looked at only when no ss option matches)."""
    from sockscope.cli.argv import gnu_getopt

    assert gnu_getopt(["--to"], "ss")[0] == [("tos", "")]
    assert gnu_getopt(["--so", "tcp"], "ss")[0] == [("A", "tcp")]
    assert gnu_getopt(["--sor", "state"], "ss")[0] == [("sort", "state")]
    assert gnu_getopt(["--count", "state"], "ss")[0] == [("count-by", "state")]
    assert gnu_getopt(["--top", "3"], "ss")[0] == [("top", "3")]
    assert gnu_getopt(["--top-v"], "ss")[0] == [("top-view", "")]
    assert gnu_getopt(["--watch"], "ss")[0] == [("watch", "")]
    assert gnu_getopt(["--watch=2.5"], "ss")[0] == [("watch", "2.5")]
    with pytest.raises(Exception, match=r"ambiguous; possibilities: '--context' '--contexts'$"):
        gnu_getopt(["--co"], "ss")


def test_library_count_and_sort() -> None:
    import sockscope as lib

    old = os.environ.get("TCPDIAG_FILE")
    os.environ["TCPDIAG_FILE"] = str(DUMPS[0])
    try:
        q = lib.Query(tables=["tcp"], states=["all"])
        found = lib.count(q, by=["state"])
        env = netns.tool_env(TCPDIAG_FILE=str(DUMPS[0]))
        cli = groups(sockscope(["-tan", "--count-by", "state", "--json-lines"], env), "state")
        assert {g.key["state"]: g.count for g in found} == cli
        assert found[0].to_dict()["group"] == {"state": found[0].key["state"]}
        ports = [s.local_port for s in lib.sockets(q, sort=["-local_port"])]
        assert ports == sorted(ports, reverse=True)
        with pytest.raises(lib.ArgumentError):
            lib.count(q, by=["nope"])
    finally:
        if old is None:
            del os.environ["TCPDIAG_FILE"]
        else:
            os.environ["TCPDIAG_FILE"] = old


# ---------------------------------------------------------------- live: the fleet


@pytest.fixture(scope="module")
def fleet():  # type: ignore[no-untyped-def]
    reason = netns.live_reason()
    if reason is not None:
        pytest.skip(reason)
    ns = netns.Netns(f"sockscope-agg-{os.getpid()}")
    proc = subprocess.Popen(
        [*ns.enter(), sys.executable, str(FIXTURE), "fleet"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready, _w, _x = select.select([proc.stdout], [], [], 30)
        assert ready and proc.stdout.readline() == b"ready\n"
        yield ns
    finally:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        ns.close()


FLEET_PIPELINES = {
    **PIPELINES,
    "process": (
        "process",
        'grep -o \'users:(("[^"]*"\' | sed \'s/users:(("//; s/"$//\'',
    ),
}


@live
@needs_root
@needs_oracle
@pytest.mark.parametrize("key", sorted(FLEET_PIPELINES))
def test_fleet_counts(fleet, key: str) -> None:  # type: ignore[no-untyped-def]
    env = netns.tool_env()
    text = listing(["-tanpH", *family(key)], env, fleet.enter())
    option, pipeline = FLEET_PIPELINES[key]
    expected = uniq_c(text, pipeline)
    out = sockscope(
        ["-tan", *family(key), "--count-by", option, "--json-lines"], env, fleet.enter()
    )
    assert groups(out, option) == expected


@live
@needs_root
def test_fleet_known_counts(fleet) -> None:  # type: ignore[no-untyped-def]
    """The ground truth of the fixture, without any ss."""
    env = netns.tool_env()

    def by(key: str) -> dict[str, int]:
        out = sockscope(
            ["-tan", "--count-by", key, "--json-lines", "state", "established"],
            env,
            fleet.enter(),
        )
        return groups(out, key)

    assert by("process") == {"agg-srv": 10, "agg-cli-a": 5, "agg-cli-b": 5}
    # client ends see their server, server ends their client's source address
    assert by("peer_address") == {"127.0.0.1": 12, "127.0.0.2": 2, "127.0.0.3": 4, "::1": 2}
    lp = by("local_port")
    assert (lp["7001"], lp["7002"], lp["7003"]) == (3, 6, 1)
    out = sockscope(
        ["-tan", "--count-by", "local_port", "--json-lines", "sport", "=", ":7001"],
        env,
        fleet.enter(),
    )
    (line,) = out.decode().splitlines()
    assert json.loads(line)["recv_q"] == sum(answers_unread())


def answers_unread() -> tuple[int, ...]:
    sys.path.insert(0, str(TESTS))
    import answers_fixture

    return answers_fixture.UNREAD


@live
@needs_root
@needs_oracle
@pytest.mark.parametrize("key", ["local_port", "-recv_q", "state", "-recv_q,local_port"])
def test_fleet_sorted(fleet, key: str) -> None:  # type: ignore[no-untyped-def]
    env = netns.tool_env()
    text = listing(["-tan"], env, fleet.enter())
    head, _nl, body = text.partition(b"\n")
    prefix, sort_args = SORTS[key]
    cut = "cut -f3-" if "," in key else "cut -f2-"
    expected = subprocess.run(
        ["bash", "-c", f"{prefix} | sort {sort_args} | {cut}"],
        input=body,
        capture_output=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
    ).stdout
    assert sockscope(["-tan", "--sort", key], env, fleet.enter()) == head + b"\n" + expected


# ---------------------------------------------------------------- live: watch


def _events(out: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def _read_between(sent: list[list[float]], count: int) -> tuple[float, float]:
    """When the kernel can have read a bytes_received of ``count`` during the script's
    paced writes (``sent``: start, received by, total per write): after write m started
    (count = its total) and before write m + 1 was received; an open end is infinite."""
    totals = [int(n) for _s, _r, n in sent]
    m = bisect.bisect_right(totals, count)  # the writes whose data the count includes
    assert m == 0 or totals[m - 1] == count, (count, totals[m - 1])
    after = sent[m - 1][0] if m else -math.inf
    before = sent[m][1] if m < len(sent) else math.inf
    return after, before


def _ends(ev: dict[str, object]) -> tuple[int, int]:
    s = ev["socket"]
    return s["local_port"], s["peer_port"]  # type: ignore[index]


@live
@needs_root
def test_watch_script(tmp_path: Path) -> None:
    """The timeline of answers_fixture.script, watched every 0.6 s with -i: the exact
    events of each socket, a connection opened and closed within 50 ms between two
    snapshots, and the paced transfer's rate within 5%."""
    ns = netns.Netns(f"sockscope-aggw-{os.getpid()}")
    # a file, not a pipe: the test reads at the end, a full pipe would stall the watcher
    sink = (tmp_path / "watch.out").open("wb")
    watcher = subprocess.Popen(
        [*ns.enter(), *netns.sockscope_cmd(), "-tai", "--watch=0.6", "--json-lines"],
        stdout=sink,
        stderr=subprocess.PIPE,
        env=netns.tool_env(),
    )
    try:
        time.sleep(1.5)  # start-up and the baseline snapshot
        script = ns.run([sys.executable, str(FIXTURE), "script", "1.4"], timeout=60)
        assert script.returncode == 0, script.stderr
        time.sleep(0.5)
        watcher.send_signal(signal.SIGINT)
        _out, err = watcher.communicate(timeout=10)
    finally:
        if watcher.poll() is None:
            watcher.kill()
        sink.close()
        ns.close()
    out = (tmp_path / "watch.out").read_bytes()
    assert watcher.returncode in (130, -signal.SIGINT), err
    events = _events(out)
    assert all(ev["schema_version"] == "1.1" and "time" in ev for ev in events)
    for ev in events:
        validate(ev)
    by_kind: dict[str, list[dict[str, object]]] = {}
    for ev in events:
        by_kind.setdefault(ev["event"], []).append(ev)  # type: ignore[arg-type]
    new = sorted((ev["socket"]["state"], *_ends(ev)) for ev in by_kind.get("new", []))  # type: ignore[index]
    # the listener, A's and C's two ends (B never made a snapshot)
    assert [n[0] for n in new] == ["ESTAB"] * 4 + ["LISTEN"]
    assert sum(1 for n in new if n[1] == 7100 or n[2] == 7100) == 5
    closed = by_kind.get("closed", [])
    assert len(closed) == 7  # B's two ends, A's two, C's two, the listener
    unseen = [ev for ev in closed if "lifetime_max_s" in ev]
    assert len(unseen) == 2  # B: opened and closed between two snapshots
    for ev in unseen:
        assert ev["lifetime_max_s"] < 1.4
        counters = ev["counters"]
        moved = (
            counters["bytes_received"]
            if ev["socket"]["local_port"] != 7100
            else counters["bytes_acked"]
        )  # type: ignore[index]
        assert moved in (3000, 3001)
    assert all("lifetime_s" in ev for ev in closed if ev not in unseen)
    states = sorted((ev["old_state"], ev["socket"]["state"]) for ev in by_kind.get("state", []))
    # C's half-close (the close phase may add transitions of its own: looked at apart)
    assert ("ESTAB", "CLOSE-WAIT") in states
    assert ("ESTAB", "FIN-WAIT-2") in states
    # A's paced transfer: 200,000 B/s. Its server end's bytes_received counts whole
    # writes, and the script logged when each write started and when its data had been
    # received: so the count a snapshot shows places the kernel's reading of it between
    # two such times (_read_between), whatever the snapshot's time stamp says, and the
    # true rate between two snapshots lies between the bytes over the longest and over
    # the shortest interval those bounds allow. The reported rate (bytes over the time
    # between the two time stamps) must be within 5% of that range: the time stamps'
    # error, not the transfer's steps, is what this checks (a stepwise counter linearly
    # interpolated at the time stamps was itself up to one write off at each end, 3% of
    # an interval, and flaked with the time stamps' own error under load).
    sent = next(json.loads(x)["sent"] for x in script.stdout.splitlines() if b'"sent"' in x)
    rates = by_kind.get("rate", [])
    received = [
        ev
        for ev in rates
        if ev["socket"]["local_port"] == 7100 and ev["rates"]["bytes_received_per_s"] > 1000  # type: ignore[index]
    ]
    assert len(received) >= 5
    checked = 0
    for before, ev in itertools.pairwise(received):
        t0, t1 = before["time"], ev["time"]
        c0, c1 = before["counters"]["bytes_received"], ev["counters"]["bytes_received"]  # type: ignore[index]
        got = ev["rates"]["bytes_received_per_s"]  # type: ignore[index]
        # consecutive snapshots: the rate is the counters' difference over their times
        assert abs(got * (t1 - t0) - (c1 - c0)) <= 0.001 * (c1 - c0) + 1, (got, t0, t1, c0, c1)  # type: ignore[operator]
        after0, before0 = _read_between(sent, c0)  # type: ignore[arg-type]
        after1, before1 = _read_between(sent, c1)  # type: ignore[arg-type]
        if math.isinf(after0) or math.isinf(before1):
            continue  # an interval that holds part of the transfer only
        shortest, longest = max(after1 - before0, 1e-3), before1 - after0
        low, high = (c1 - c0) / longest, (c1 - c0) / shortest  # type: ignore[operator]
        assert low * 0.95 <= got <= high * 1.05, (got, low, high)
        # and the script did pace its data
        assert abs((c1 - c0) / (t1 - t0) - 200000) / 200000 < 0.25  # type: ignore[operator]
        checked += 1
    assert checked >= 3
    acked = [ev["counters"]["bytes_acked"] for ev in rates if ev["socket"]["peer_port"] == 7100]  # type: ignore[index]
    assert acked == sorted(acked) and max(acked) in (800000, 800001)


@live
@needs_root
def test_watch_lines_piped_and_flushed() -> None:
    """Text lines: a timestamp first, flushed at once into a pipe; SIGINT ends it."""
    ns = netns.Netns(f"sockscope-aggl-{os.getpid()}")
    watcher = subprocess.Popen(
        [*ns.enter(), *netns.sockscope_cmd(), "-ta", "--watch=0.2"],
        stdout=subprocess.PIPE,
        env=netns.tool_env(),
    )
    holder = None
    try:
        time.sleep(1.2)
        holder = subprocess.Popen(
            [
                *ns.enter(),
                sys.executable,
                "-c",
                "import socket,time; l=socket.socket(); l.bind(('127.0.0.1',7200)); l.listen(); time.sleep(30)",
            ],
        )
        assert watcher.stdout is not None
        ready, _w, _x = select.select([watcher.stdout], [], [], 5)
        assert ready, "no line arrived while the watcher runs"
        line = watcher.stdout.readline().decode()
        stamp, kind, netid, state, local, _peer = line.split()[:6]
        assert len(stamp) == 26 and stamp[10] == "T"
        assert (kind, netid, state, local) == ("new", "tcp", "LISTEN", "127.0.0.1:7200")
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        watcher.send_signal(signal.SIGINT)
        watcher.wait(10)
        if watcher.stdout is not None:
            watcher.stdout.close()
        ns.close()
    assert watcher.returncode in (130, -signal.SIGINT)


# ---------------------------------------------------------------- live: the terminal view


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _w, _x = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


@live
@needs_root
def test_top_view_pty(fleet) -> None:  # type: ignore[no-untyped-def]
    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = netns.tool_env(TERM="xterm")
    proc = subprocess.Popen(
        [
            *fleet.enter(),
            *netns.sockscope_cmd(),
            "-tan",
            "--top-view",
            "--count-by",
            "process",
            "--watch=0.3",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    try:
        screen = _read_until(master, b"agg-cli-b", 15)
        assert b"COUNT" in screen and b"agg-srv" in screen, screen[-500:]
        assert b"\x1b[" in screen  # drawn by curses
        os.write(master, b"q")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@live
@needs_root
def test_top_view_not_a_terminal_falls_back_to_watch(fleet) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [*fleet.enter(), *netns.sockscope_cmd(), "-ta", "--top-view", "--watch=0.2"],
        stdout=subprocess.PIPE,
        env=netns.tool_env(TERM="xterm"),
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, _err = proc.communicate(timeout=10)
    assert b"\x1b[" not in out
    assert proc.returncode in (130, -signal.SIGINT)


@live
@needs_root
def test_all_netns_count_by_netns() -> None:
    """--all-netns --count-by netns: one count over every namespace, keyed by its name."""
    spaces = [netns.Netns(f"sockscope-aggn{i}-{os.getpid()}") for i in (1, 2)]
    holders = []
    try:
        for n, ns in enumerate(spaces, 1):
            code = (
                "import socket,sys,time; l=socket.socket(); l.bind(('127.0.0.1',7400)); "
                f"l.listen(); c=[socket.create_connection(('127.0.0.1',7400)) for _ in range({n})]; "
                "print('ready',flush=True); sys.stdin.read()"
            )
            proc = subprocess.Popen(
                [*ns.enter(), sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            holders.append(proc)
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        out = sockscope(
            ["--all-netns", "-tan", "--count-by", "netns,state", "--json-lines"], netns.tool_env()
        )
        found = {}
        for line in out.decode().splitlines():
            obj = json.loads(line)
            found[(obj["group"].get("netns"), obj["group"]["state"])] = obj["count"]
        for n, ns in enumerate(spaces, 1):
            # n client ends; the accept queue holds the n server ends (ESTAB too)
            assert found[(ns.name, "ESTAB")] == 2 * n
            assert found[(ns.name, "LISTEN")] == 1
        res = subprocess.run(
            [*netns.sockscope_cmd(), "--all-netns", "-tan", "--metrics"],
            capture_output=True,
            env=netns.tool_env(),
        )
        assert res.returncode == 0, res.stderr
        for ns in spaces:  # one exposition, every namespace's series labelled
            assert f'netns_name="{ns.name}"'.encode() in res.stdout
    finally:
        for proc in holders:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
            proc.wait(10)
        for ns in spaces:
            ns.close()
