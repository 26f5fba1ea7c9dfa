"""--json / --json-lines: schema, agreement with the text output, streaming, memory, pipes.

* Every document sockscope writes for the golden inputs validates against the schema
  shipped in the package (jsonschema, a test dependency only).
* For the same inputs and arguments, every value the text output shows for a socket
  equals the value in that socket's JSON object; the rows and objects come in the same
  order, one for one. The text is the recorded upstream ss 7.1 output of the golden case
  (the project's own ``tests/golden``, sampled, plus ``../shared/goldens`` when present).
* Live (root, private netns filled by ``tests/tools/fill.py``): --json-lines writes its
  first line while the dump still runs, peak memory does not grow with the number of
  sockets, a closed pipe ends quietly with status 0.
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import fill
import pytest

import goldtest
from conftest import LIVE_REASON

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
SCHEMA_FILE = SRC / "sockscope" / "schema" / "sockscope.schema.json"
#: the project's own recorded scenario (tests/golden): a TCP dump and a copy of /proc/net
RECORDED = ROOT / "tests" / "golden" / "scenario-5"
TCPDIAG = RECORDED / "tcpdiag.bin"

sys.path.insert(0, str(SRC))
from sockscope.render import view as fields  # noqa: E402
from sockscope.tables.inet import data as inet_data  # noqa: E402
from sockscope.tables.inet.extinfo import ms_timer  # noqa: E402


@pytest.fixture(scope="module")
def validator() -> object:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def run(
    argv: list[str], env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[bytes]:
    full = dict(os.environ if env is None else env, PYTHONPATH=str(SRC))
    return subprocess.run(
        [*prefix, sys.executable, "-m", "sockscope", *argv],
        capture_output=True,
        env=full,
        check=False,
        timeout=300,
    )


#: ss options after which there is no listing to compare (usage, version, raw dump)
NO_LISTING = {"-h", "--help", "-V", "-v", "--version", "-D", "--diag", "-E", "-K"}


def cases() -> list[tuple[str, goldtest.Case]]:
    """Golden cases to compare with: every third of scenario-5 (the others differ only in
    options that the text layout uses), scenario-extinfo and summary-a, all of
    ../shared/goldens when it is present."""
    own = goldtest.all_cases(goldtest.GOLDEN)
    found = [
        c
        for c in own
        if c.scenario.name in ("scenario-extinfo", "summary-a")
        or (c.scenario.name == "scenario-5" and int(c.name[1:]) % 3 == 0)
    ]
    found += goldtest.all_cases(goldtest.SHARED_GOLDEN)
    return [(c.id, c) for c in found if not NO_LISTING.intersection(c.argv)]


def case_input(case: goldtest.Case) -> tuple[list[str], dict[str, str], bytes]:
    """argv, environment and text output of a golden case (skipped if it is an error)."""
    if case.status:
        pytest.skip(f"ss exits {case.status} here: nothing to print as data")
    return case.argv, case.environ(dict(os.environ)), case.stdout


GOLDEN_CASES = cases()
#: the text <-> JSON value check reads the text with a parser of its own, which knows the
#: recorded scenarios but not the crafted extremes of scenario-extinfo (md5 keys, /proc's
#: rto in seconds, escaped process names) nor -s mixed with a listing (summary-a)
VALUE_CASES = [
    (n, c) for n, c in GOLDEN_CASES if c.scenario.name not in ("scenario-extinfo", "summary-a")
]


# --- the schema -------------------------------------------------------------------------
def test_schema_version_matches_the_code() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["x-schema-version"] == fields.SCHEMA_VERSION
    assert re.fullmatch(schema["$defs"]["schema_version"]["pattern"], fields.SCHEMA_VERSION)


def test_schema_names_every_tcp_info_field() -> None:
    props = json.loads(SCHEMA_FILE.read_text())["$defs"]["tcp_info"]["properties"]
    missing = [name for _c, name, _s, _k in inet_data.TCP_INFO_FIELDS if name not in props]
    assert not missing


def test_library_to_dict_is_what_json_prints() -> None:
    from sockscope.kernel import netlink
    from sockscope.tables.inet import record as records

    recs = list(records.decode_inet(netlink.replay(TCPDIAG.read_bytes()), 6))
    env = dict(os.environ, TCPDIAG_FILE=str(TCPDIAG))
    lines = run(["-tanoemi", "--tos", "--inet-sockopt", "--json-lines"], env).stdout.splitlines()
    assert len(lines) == len(recs) > 100
    view = fields.View()
    view.cgroup_path = None
    for rec, line in zip(recs, lines, strict=True):
        printed = json.loads(line)
        assert printed.pop("schema_version") == fields.SCHEMA_VERSION
        printed.pop("cgroup", None)
        assert printed == json.loads(json.dumps(rec.to_dict(view)))


@pytest.mark.parametrize(("name", "case"), GOLDEN_CASES, ids=[n for n, _ in GOLDEN_CASES])
@pytest.mark.parametrize("mode", ["--json", "--json-lines"])
def test_golden_documents_validate(
    validator: object, name: str, case: goldtest.Case, mode: str
) -> None:
    argv, env, _text = case_input(case)
    proc = run([*argv, mode], env)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = proc.stdout.decode("ascii")
    docs = [json.loads(out)] if mode == "--json" else [json.loads(x) for x in out.splitlines()]
    for doc in docs:
        errors = list(validator.iter_errors(doc))  # type: ignore[attr-defined]
        assert not errors, f"{errors[0].message} at {list(errors[0].absolute_path)}"


def test_json_and_jsonl_carry_the_same_sockets() -> None:
    env = dict(os.environ, TCPDIAG_FILE=str(TCPDIAG))
    doc = json.loads(run(["-tanmi", "--json"], env).stdout)
    lines = [json.loads(x) for x in run(["-tanmi", "--jsonl"], env).stdout.splitlines()]
    assert len(lines) > 100
    for d in lines:
        assert d.pop("schema_version") == doc["schema_version"]
    assert doc["sockets"] == lines


def test_shaping_options_do_not_change_the_data() -> None:
    env = dict(os.environ, TCPDIAG_FILE=str(TCPDIAG), COLUMNS="40")
    proc = run(["-tani", "--json"], env)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    base = json.loads(proc.stdout)["sockets"]
    # the comparison means something only if there is data, and -i data at that
    assert len(base) > 100
    assert sum("tcp_info" in d for d in base) > 100
    for extra in (["-H"], ["-O"], ["-H", "-O"], ["-Q"]):
        other = run(["-tani", *extra, "--json"], env)
        assert other.returncode == 0
        assert json.loads(other.stdout)["sockets"] == base, extra
    assert run(["-tani", "--json"], dict(env, COLUMNS="300")).stdout == proc.stdout


def test_summary_as_data(validator: object) -> None:
    env = dict(os.environ, PROC_ROOT=str(RECORDED / "proc"))
    doc = json.loads(run(["-s", "--json"], env).stdout)
    assert list(doc) == ["schema_version", "summary"]
    case = RECORDED / "cases" / "p084"  # ss 7.1's -s on the same /proc
    assert (case / "argv").read_text() == "-s\n"
    text = (case / "stdout").read_text()
    s = doc["summary"]
    assert f"Total: {s['total']}\n" in text
    t = s["tcp"]
    assert (
        f"TCP:   {t['total']} (estab {t['estab']}, closed {t['closed']}, "
        f"orphaned {t['orphaned']}, timewait {t['timewait']})"
    ) in text
    for row in s["transport"]:
        assert re.search(
            rf"^{row['name'].upper()}\t  {row['total']} +{row['ipv4']} +"
            rf"{row['ipv6']} *$",
            text,
            re.M,
        )
    assert not list(validator.iter_errors(doc))  # type: ignore[attr-defined]
    with_table = json.loads(run(["-s", "-t", "-a", "--json"], env).stdout)
    assert with_table["summary"] == s and with_table["sockets"]


# --- JSON values == text values -----------------------------------------------------------
STATES = {
    "UNKNOWN",
    "ESTAB",
    "SYN-SENT",
    "SYN-RECV",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "TIME-WAIT",
    "UNCONN",
    "CLOSE-WAIT",
    "LAST-ACK",
    "LISTEN",
    "CLOSING",
    "UNDEF",
}
INET_NETIDS = {"tcp", "udp", "raw", "mptcp", "sctp", "dccp", "icmp6", "???"}


def text_rows(text: str) -> tuple[list[list[str]], bool, bool]:
    """The socket rows of ss's text (continuation lines joined) as token lists."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = bool(lines) and lines[0].split()[:1] in (["Netid"], ["State"], ["Recv-Q"])
    rows: list[list[str]] = []
    for line in lines[1:] if header else lines:
        if line.startswith("\t") and rows:
            rows[-1] += line.split()
        else:
            rows.append(line.split())
    if header:
        head = lines[0].split()
        return rows, head[0] == "Netid", "State" in head
    first = rows[0] if rows else []
    has_netid = bool(first) and first[0] not in STATES and not first[0].isdigit()
    has_state = bool(first) and first[int(has_netid)] in STATES
    return rows, has_netid, has_state


def parse_rate(text: str) -> tuple[float, float]:
    """sprint_bw text -> (bits per second, relative tolerance)."""
    assert text.endswith("bps"), text
    num = text[:-3]
    scale = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}.get(num[-1:], 1.0)
    if scale != 1.0:
        return float(num[:-1]) * scale, 5e-3
    return float(num), 1e-6 if "." in num else 0.0


def near(value: object, text_value: float, rel: float = 1e-5) -> bool:
    return isinstance(value, int | float) and abs(value - text_value) <= max(
        rel * abs(text_value), 0.5
    )


class RowCheck:
    """Compares the tokens of one text row with one socket object."""

    def __init__(self, d: dict[str, object]) -> None:
        self.d = d
        self.ti: dict[str, object] = d.get("tcp_info", {})  # type: ignore[assignment]

    def endpoint(self, cell: str, side: str) -> None:
        d = self.d
        addr, _, port = cell.rpartition(":")
        if "%" in addr and side == "local":
            addr, _, iface = addr.rpartition("%")
            assert d["interface"] == iface
        if addr.startswith("[") and addr.endswith("]"):
            addr = addr[1:-1]
        if addr == "*":
            assert d[f"{side}_address"] in ("::", "0.0.0.0"), (cell, d)
        else:
            assert d[f"{side}_address"] == addr, (cell, d)
        if port == "*":
            assert d[f"{side}_port"] == 0
        elif port.isdigit():
            assert d[f"{side}_port"] == int(port), (cell, d)
        else:
            assert d[f"{side}_service"] == port, (cell, d)

    def ext(self, tokens: list[str]) -> None:
        d, ti = self.d, self.ti
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            i += 1
            key, sep, val = tok.partition(":")
            if re.fullmatch(r"[<-]-[->]", tok):
                sd = d["shutdown"]
                assert (tok[0] == "-", tok[2] == "-") == (sd["receive"], sd["send"])  # type: ignore[index]
            elif tok in inet_data.TCP_OPTIONS:
                assert tok in ti["options"]  # type: ignore[operator]
            elif tok == "app_limited":
                assert ti["delivery_rate_app_limited"] is True
            elif tok in ("send", "pacing_rate", "delivery_rate"):
                self.rate(tok, tokens[i])
                i += 1
            elif tok.startswith("tcp-ulp-"):
                assert d["ulp"]["name"] == tok[8:]  # type: ignore[index]
            elif tok == "inet-sockopt:" and tokens[i] == "(":
                i = self.sockopt(tokens, i + 1)
            elif sep and key in KEYS:
                KEYS[key](self, val)
            elif not sep and tok == d.get("congestion_control"):
                pass
            else:
                pytest.fail(f"text item {tok!r} has no JSON counterpart check")

    def rate(self, name: str, text: str) -> None:
        first, _, second = text.partition("/")
        field = {
            "send": "send_bps",
            "pacing_rate": "pacing_rate_bps",
            "delivery_rate": "delivery_rate_bps",
        }[name]
        value, rel = parse_rate(first)
        assert near(self.ti[field], value, rel), (name, text, self.ti.get(field))
        if second:
            value, rel = parse_rate(second)
            assert near(self.ti["max_pacing_rate_bps"], value, rel)

    def sockopt(self, tokens: list[str], i: int) -> int:
        shown = set()
        while True:  # "( is_icsk mc_loop)" or "( )"
            tok = tokens[i]
            i += 1
            if tok.rstrip(")"):
                shown.add(tok.rstrip(")"))
            if tok.endswith(")"):
                break
        flags = self.d["inet_sockopt"]
        assert shown == {k for k, v in flags.items() if v}  # type: ignore[attr-defined]
        return i

    # key:value items
    def timer(self, val: str) -> None:
        name, expire, retrans = val.strip("()").split(",")
        t = self.d["timer"]
        assert (t["name"], ms_timer(t["expires_ms"]), t["retrans"]) == (  # type: ignore[index]
            name,
            expire,
            int(retrans),
        )

    def skmem(self, val: str) -> None:
        prefixes = {
            "r": "rmem_alloc_bytes",
            "rb": "rcvbuf_bytes",
            "t": "wmem_alloc_bytes",
            "tb": "sndbuf_bytes",
            "f": "fwd_alloc_bytes",
            "w": "wmem_queued_bytes",
            "o": "optmem_bytes",
            "bl": "backlog_bytes",
            "d": "drops",
        }
        shown = {}
        for item in val.strip("()").split(","):
            m = re.fullmatch(r"([a-z]+)(\d+)", item)
            assert m, item
            shown[prefixes[m.group(1)]] = int(m.group(2))
        assert shown == self.d["skmem"]

    def users(self, val: str) -> None:
        shown = [
            (n, int(p), int(f))
            for n, p, f in re.findall(r'\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=(\d+)\)', val)
        ]
        got = [(u["name"], u["pid"], u["fd"]) for u in self.d["users"]]  # type: ignore[attr-defined]
        assert shown == got

    def bbr(self, val: str) -> None:
        b = self.d["bbr"]
        for item in val.strip("()").split(","):
            k, _, v = item.partition(":")
            if k == "bw":
                value, rel = parse_rate(v)
                assert near(b["bw_bps"], value, rel)  # type: ignore[index]
            elif k == "mrtt":
                assert near(b["min_rtt_us"] / 1000, float(v))  # type: ignore[index,operator]
            else:
                assert near(b[k], float(v))  # type: ignore[index]

    def ti_ms(self, field: str, val: str) -> None:
        assert near(self.ti[field] / 1000, float(val)), (field, val)  # type: ignore[operator]

    def ti_int(self, field: str, val: str) -> None:
        assert self.ti[field] == int(val), (field, val, self.ti.get(field))

    def ulp_mptcp(self, key: str, val: str) -> None:
        sf = self.d["ulp"]["mptcp"]  # type: ignore[index]
        if key == "token":
            m = re.fullmatch(r"([0-9a-f]+)\(id:(\d+)\)/([0-9a-f]+)\(id:(\d+)\)", val)
            assert m
            assert (sf["token_rem"], sf["id_rem"], sf["token_loc"], sf["id_loc"]) == (
                int(m.group(1), 16),
                int(m.group(2)),
                int(m.group(3), 16),
                int(m.group(4)),
            )
        elif key == "flags":
            bits = sum(1 << "MmJjBbecv".index(c) for c in val)
            assert sf["flags"] == bits
        else:
            name = {
                "seq": "map_seq",
                "sfseq": "map_sfseq",
                "ssnoff": "ssn_offset",
                "maplen": "map_datalen",
            }[key]
            assert sf[name] == int(val)


def _eq(field: str, conv: object = int) -> object:
    return lambda c, v: (
        c.d.__getitem__(field) == conv(v)
        or pytest.fail(  # type: ignore[operator]
            f"{field}: text {v!r} json {c.d.get(field)!r}"
        )
    )


def _ti_int(field: str) -> object:
    return lambda c, v: c.ti_int(field, v)


def _ti_ms(field: str) -> object:
    return lambda c, v: c.ti_ms(field, v)


def _pair(first: str, second: str, conv: object) -> object:
    def check(c: RowCheck, v: str) -> None:
        a, _, b = v.partition("/" if "/" in v else ",")
        conv(c, first, a)  # type: ignore[operator]
        conv(c, second, b)  # type: ignore[operator]

    return check


def _busy(field: str) -> object:
    def check(c: RowCheck, v: str) -> None:
        ms = int(re.match(r"(\d+)ms", v).group(1))  # type: ignore[union-attr]
        assert c.ti[field] // 1000 == ms  # type: ignore[operator]

    return check


def _ulp_mptcp(key: str, c: RowCheck, v: str) -> None:
    c.ulp_mptcp(key, v)


KEYS: dict[str, object] = {
    "timer": RowCheck.timer,
    "uid": _eq("uid"),
    "ino": _eq("inode"),
    "sk": _eq("cookie", lambda v: int(v, 16)),
    "fwmark": _eq("mark", lambda v: int(v, 16)),
    "cgroup": _eq("cgroup", str),
    "v6only": _eq("v6only", lambda v: bool(int(v))),
    "tos": _eq("tos", lambda v: int(v, 0)),
    "tclass": _eq("tclass", lambda v: int(v, 0)),
    "class_id": _eq("class_id", lambda v: int(v, 0)),
    "skmem": RowCheck.skmem,
    "users": RowCheck.users,
    "bbr": RowCheck.bbr,
    "wscale": _pair("snd_wscale", "rcv_wscale", RowCheck.ti_int),
    "rto": _ti_ms("rto_us"),
    "backoff": _ti_int("backoff"),
    "rtt": _pair("rtt_us", "rttvar_us", RowCheck.ti_ms),
    "ato": _ti_ms("ato_us"),
    "qack": _ti_int("qack"),
    "mss": _ti_int("snd_mss_bytes"),
    "pmtu": _ti_int("pmtu_bytes"),
    "rcvmss": _ti_int("rcv_mss_bytes"),
    "advmss": _ti_int("advmss_bytes"),
    "cwnd": _ti_int("snd_cwnd"),
    "ssthresh": _ti_int("snd_ssthresh"),
    "bytes_sent": _ti_int("bytes_sent"),
    "bytes_retrans": _ti_int("bytes_retrans"),
    "bytes_acked": _ti_int("bytes_acked"),
    "bytes_received": _ti_int("bytes_received"),
    "segs_out": _ti_int("segs_out"),
    "segs_in": _ti_int("segs_in"),
    "data_segs_out": _ti_int("data_segs_out"),
    "data_segs_in": _ti_int("data_segs_in"),
    "lastsnd": _ti_int("last_data_sent_ms"),
    "lastrcv": _ti_int("last_data_recv_ms"),
    "lastack": _ti_int("last_ack_recv_ms"),
    "delivered": _ti_int("delivered"),
    "delivered_ce": _ti_int("delivered_ce"),
    "busy": _busy("busy_time_us"),
    "rwnd_limited": _busy("rwnd_limited_us"),
    "sndbuf_limited": _busy("sndbuf_limited_us"),
    "unacked": _ti_int("unacked"),
    "retrans": _pair("retrans", "total_retrans", RowCheck.ti_int),
    "lost": _ti_int("lost"),
    "sacked": _ti_int("sacked"),
    "dsack_dups": _ti_int("dsack_dups"),
    "fackets": _ti_int("fackets"),
    "reordering": _ti_int("reordering"),
    "reord_seen": _ti_int("reord_seen"),
    "rcv_rtt": _ti_ms("rcv_rtt_us"),
    "rcv_space": _ti_int("rcv_space_bytes"),
    "rcv_ssthresh": _ti_int("rcv_ssthresh_bytes"),
    "notsent": _ti_int("notsent_bytes"),
    "minrtt": _ti_ms("min_rtt_us"),
    "rcv_ooopack": _ti_int("rcv_ooopack"),
    "snd_wnd": _ti_int("snd_wnd_bytes"),
    "rcv_wnd": _ti_int("rcv_wnd_bytes"),
    "rehash": _ti_int("rehash"),
    **{
        k: functools.partial(_ulp_mptcp, k)
        for k in ("flags", "token", "seq", "sfseq", "ssnoff", "maplen")
    },
}


def shows_queues(argv: list[str]) -> bool:
    """False when -Q / --no-queues drops the Recv-Q and Send-Q columns."""
    for a in argv:
        if a.startswith("--"):
            if "--no-queues".startswith(a) and len(a) > 4:
                return False
        elif a.startswith("-") and "Q" in a:
            return False
    return True


def check_row(
    tokens: list[str],
    d: dict[str, object],
    has_netid: bool,
    has_state: bool,
    has_queues: bool = True,
) -> None:
    i = 0
    if has_netid:
        assert tokens[i] == d["netid"]
        i += 1
    if has_state:
        assert tokens[i] == d["state"]
        i += 1
    if has_queues:
        assert (int(tokens[i]), int(tokens[i + 1])) == (d["recv_q"], d["send_q"])
        i += 2
    if d["netid"] not in INET_NETIDS:
        return  # other families: their own fields are checked by their tests
    c = RowCheck(d)
    c.endpoint(tokens[i], "local")
    c.endpoint(tokens[i + 1], "peer")
    c.ext(tokens[i + 2 :])


@pytest.mark.parametrize(("name", "case"), VALUE_CASES, ids=[n for n, _ in VALUE_CASES])
def test_json_values_equal_text_values(name: str, case: goldtest.Case) -> None:
    argv, env, text = case_input(case)
    if "-s" in argv or "--summary" in argv:
        pytest.skip("the summary is compared in test_summary_as_data")
    proc = run([*argv, "--json"], env)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    sockets = json.loads(proc.stdout)["sockets"]
    rows, has_netid, has_state = text_rows(text.decode("latin-1"))
    assert len(rows) == len(sockets)
    for tokens, d in zip(rows, sockets, strict=True):
        check_row(tokens, d, has_netid, has_state, shows_queues(argv))


# --- live: streaming, memory, pipes ---------------------------------------------------------
live = pytest.mark.skipif(LIVE_REASON is not None, reason=LIVE_REASON or "")


@pytest.fixture(scope="module")
def big_netns() -> object:
    """A private namespace holding about 20,000 real sockets of every kind (fill.py)."""
    with fill.Filled(20000, name=f"ssjson{os.getpid()}") as lab:
        assert lab.counts["tcp ESTAB"] > 10000, lab.counts
        yield lab.name


@pytest.fixture(scope="module")
def small_netns() -> object:
    name = f"ssjsonsmall{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _nsenter(name: str) -> tuple[str, ...]:
    return ("nsenter", f"--net=/var/run/netns/{name}")


@live
@pytest.mark.live
@pytest.mark.slow
def test_json_lines_stream(big_netns: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    with subprocess.Popen(
        [*_nsenter(big_netns), sys.executable, "-m", "sockscope", "-tan", "--json-lines"],
        stdout=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready
        first = proc.stdout.readline()
        still_running = proc.poll() is None
        rest = proc.stdout.read()
    assert json.loads(first)["netid"] == "tcp"
    assert still_running, "the first line came only after the dump had ended"
    # more than 10,000 lines still to come after the first: written as the dump goes,
    # not after it (no wall-time bound: the compiled writer ends within milliseconds)
    assert rest.count(b"\n") > 10000


def _peak_rss_kb(name: str, argv: list[str]) -> tuple[int, int]:
    """(peak RSS in KiB, lines written) of sockscope run inside netns ``name``."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    code = (
        "import resource,subprocess,sys;"
        "p=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
        "p.stdout.count(b'\\n'))"
    )
    out = subprocess.run(
        [*_nsenter(name), sys.executable, "-c", code, sys.executable, "-m", "sockscope", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    ).stdout.split()
    return int(out[0]), int(out[1])


@live
@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--json-lines", "--json"])
def test_memory_stays_flat(big_netns: str, small_netns: str, mode: str) -> None:
    small, n_small = _peak_rss_kb(small_netns, ["-tan", mode])
    big, n_big = _peak_rss_kb(big_netns, ["-tan", mode])
    assert n_big > 10000 > n_small
    # a list of 17,000+ socket objects alone would take well over 10 MiB
    assert big - small < 6 * 1024, (small, big)


@live
@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--json-lines", "--json"])
def test_closed_pipe_is_quiet(big_netns: str, mode: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    with subprocess.Popen(
        [*_nsenter(big_netns), sys.executable, "-m", "sockscope", "-tan", mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        rc = proc.wait(timeout=120)
    assert err == b""
    assert rc == 0  # ends quietly with status 0, as text mode does (README, EXIT STATUS)


LIVE_ARGS = (
    ["-a"],
    ["-aemoi", "--tos", "--cgroup", "--inet-sockopt"],
    ["-aempi"],
    ["-xaemp"],
    ["-0aeb"],
    ["-A", "netlink", "-ae"],
    ["-Maemi"],
    ["-s", "-ta"],
    ["-tap", "-T"],
)


@live
@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("args", LIVE_ARGS, ids=" ".join)
def test_live_documents_validate(validator: object, big_netns: str, args: list[str]) -> None:
    proc = run([*args, "--json-lines"], prefix=_nsenter(big_netns))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    lines = proc.stdout.splitlines()
    assert lines
    for line in lines:
        errors = list(validator.iter_errors(json.loads(line)))  # type: ignore[attr-defined]
        assert not errors, f"{errors[0].message} at {list(errors[0].absolute_path)}"


@live
@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [["-tlnp"], ["-tlnpe"], ["-ulnpe"], ["-tln", "--tos"]], ids=" ".join
)
def test_live_values_equal_text(big_netns: str, args: list[str]) -> None:
    """Listening sockets (stable between two runs) with owners: JSON == sockscope's text."""
    text = run(args, prefix=_nsenter(big_netns)).stdout.decode("latin-1")
    sockets = json.loads(run([*args, "--json"], prefix=_nsenter(big_netns)).stdout)["sockets"]
    rows, has_netid, has_state = text_rows(text)
    assert len(rows) == len(sockets) > 0
    if "-p" in args[0]:
        assert any("users" in d for d in sockets)
    for tokens, d in zip(rows, sockets, strict=True):
        check_row(tokens, d, has_netid, has_state)
