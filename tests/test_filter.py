"""The ss filter language (sockscope.filter, sockscope.hostcond) against upstream ss 7.1.

Expected values come from the oracle binary: ``TCPDIAG_FILE`` makes ss read a crafted
inet_diag dump and apply only its user-space filter (run_ssfilter), so which records it
prints is exactly what ``Filter.matches`` must say; error texts and exit statuses are
compared with what the oracle writes for the same words.
"""

from __future__ import annotations

import ctypes
import io
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sockscope.cli.status import exit_status, shows_usage
from sockscope.errors import FilterError
from sockscope.kernel import abi
from sockscope.kernel.libc import c_strtol, c_strtoul, scanf_int
from sockscope.query.filter import (
    SYNTAX_ERROR,
    And,
    AutoBound,
    HostMatch,
    Not,
    Or,
    PortRange,
    parse_filter,
    read_filter_file,
    split_words,
)
from sockscope.query.hostcond import FilterContext, get_prefix

ORACLE = Path(os.environ.get("SOCKSCOPE_ORACLE", "/work/oracle/ss71"))
SCENARIO = Path("/work/shared/goldens/scenario-3/tcpdiag.bin")
needs_oracle = pytest.mark.skipif(not os.access(ORACLE, os.X_OK), reason="no ss 7.1 oracle")

# --- socket records ---------------------------------------------------------------------


class Rec:
    """The filter view of one socket (ss's struct sockstat)."""

    __slots__ = (
        "cgroup_id", "family", "iface", "index", "local_data", "lport", "mark", "name",
        "remote_data", "rport", "state",
    )  # fmt: skip

    def __init__(self, **kw: object) -> None:
        self.name = None
        self.iface = self.mark = self.cgroup_id = self.index = self.state = 0
        for key, value in kw.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        fam = socket.AF_INET6 if self.family == abi.AF_INET6 else socket.AF_INET
        return (
            f"Rec#{self.index}({socket.inet_ntop(fam, self.local_data)}:{self.lport} -> "
            f"{socket.inet_ntop(fam, self.remote_data)}:{self.rport} if={self.iface} "
            f"mark={self.mark:#x} cg={self.cgroup_id})"
        )


_MSG = struct.Struct("=BBBB2s2s16s16sIIIIIIII")


def encode_dump(recs: list[Rec]) -> bytes:
    """An inet_diag dump (ss -D format) of the records; Recv-Q carries the index."""
    out = bytearray()
    for rec in recs:
        addr_len = 4 if rec.family == abi.AF_INET else 16
        body = _MSG.pack(
            rec.family, rec.state or 1, 0, 0,
            struct.pack(">H", rec.lport), struct.pack(">H", rec.rport),
            rec.local_data[:addr_len].ljust(16, b"\0"), rec.remote_data[:addr_len].ljust(16, b"\0"),
            rec.iface, rec.index, 0, 0, rec.index, 0, 0, 1000 + rec.index,
        )  # fmt: skip
        body += struct.pack("=HHI", 8, abi.INET_DIAG_MARK, rec.mark)
        body += struct.pack("=HHQ", 12, abi.INET_DIAG_CGROUP_ID, rec.cgroup_id)
        out += struct.pack("=IHHII", 16 + len(body), abi.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body
    out += struct.pack("=IHHIIi", 20, abi.NLMSG_DONE, 2, 1, 0, 0)
    return bytes(out)


def decode_dump(data: bytes) -> list[Rec]:
    """Records of an ss -D dump up to the first NLMSG_DONE (what TCPDIAG_FILE reads)."""
    recs = []
    off = 0
    while off < len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if kind == abi.NLMSG_DONE:
            break
        fields = _MSG.unpack_from(data, off + 16)
        family = fields[0]
        alen = 4 if family == abi.AF_INET else 16
        rec = Rec(
            family=family, state=fields[1], lport=struct.unpack(">H", fields[4])[0],
            rport=struct.unpack(">H", fields[5])[0], local_data=fields[6][:alen],
            remote_data=fields[7][:alen], iface=fields[8], index=len(recs),
        )  # fmt: skip
        attr = off + 16 + _MSG.size
        while attr + 4 <= off + length:
            alen_, atype = struct.unpack_from("=HH", data, attr)
            if atype == abi.INET_DIAG_MARK:
                rec.mark = struct.unpack_from("=I", data, attr + 4)[0]
            elif atype == abi.INET_DIAG_CGROUP_ID:
                rec.cgroup_id = struct.unpack_from("=Q", data, attr + 4)[0]
            attr += (alen_ + 3) & ~3
        recs.append(rec)
        off += (length + 3) & ~3
    return recs


_V4 = ["127.0.0.1", "127.1.0.0", "127.0.0.2", "10.1.2.3", "0.0.0.0", "192.168.1.1", "127.0.1.1"]
_V6 = ["::1", "::", "::ffff:127.0.0.1", "::ffff:10.1.2.3", "fe80::1", "7f00:1::1", "2001:db8::5"]
_PORTS = [0, 7, 22, 80, 993, 1001, 1023, 1024, 4464, 4999, 5000, 32768, 40000, 60999, 65535]


def synthetic_records(count: int = 160, seed: int = 7) -> list[Rec]:
    rnd = random.Random(seed)
    recs = []
    for index in range(count):
        if rnd.random() < 0.5:
            family, pool = abi.AF_INET, _V4
        else:
            family, pool = abi.AF_INET6, _V6
        fam = socket.AF_INET if family == abi.AF_INET else socket.AF_INET6
        recs.append(Rec(
            family=family, index=index, state=rnd.randint(1, 11),
            local_data=socket.inet_pton(fam, rnd.choice(pool)),
            remote_data=socket.inet_pton(fam, rnd.choice(pool)),
            lport=rnd.choice(_PORTS), rport=rnd.choice(_PORTS),
            iface=rnd.choice([0, 0, 1, 2]), mark=rnd.choice([0, 0, 5, 0x10, 0xFF, 0x1234]),
            cgroup_id=rnd.choice([0, 1, 12345]),
        ))  # fmt: skip
    return recs


RECORDS = synthetic_records()


@pytest.fixture(scope="session")
def dump_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the oracle: the synthetic dump and a fixed ephemeral range."""
    tmp = tmp_path_factory.mktemp("filter")
    (tmp / "dump.bin").write_bytes(encode_dump(RECORDS))
    (tmp / "range").write_text("32768\t60999\n")
    env = dict(os.environ)
    env.update(TCPDIAG_FILE=str(tmp / "dump.bin"), PROC_IP_LOCAL_PORT_RANGE=str(tmp / "range"))
    return env


def run_oracle(args: list[str], env: dict[str, str] | None = None, stdin: bytes = b""):
    return subprocess.run(
        [str(ORACLE), *args], env=env, input=stdin, capture_output=True, timeout=20, check=False
    )


def oracle_selection(words: list[str], env: dict[str, str]) -> list[int]:
    """Indexes (Recv-Q) of the records the oracle prints for ``ss -tanH WORDS``."""
    proc = run_oracle(["-tanH", *words], env)
    assert proc.returncode == 0, proc.stderr
    return [int(line.split()[1]) for line in proc.stdout.decode().splitlines()]


INET_FAMILIES = (1 << abi.AF_INET) | (1 << abi.AF_INET6)


def ours(words: list[str], recs: list[Rec] = RECORDS) -> list[int]:
    """What ``ss -tanH WORDS`` prints from the dump: tcp_show() runs only if a family
    operand left inet or inet6 selected, then run_ssfilter() picks the records."""
    ctx = FilterContext(dbs=1 << abi.TCP_DB)
    flt = parse_filter(words, ctx)
    if not ctx.families & INET_FAMILIES:
        return []
    return [r.index for r in recs if flt is None or flt.matches(r)]


def oracle_error(words: list[str], env: dict[str, str] | None = None) -> tuple[str, int]:
    """(stderr up to ss's usage text, exit status) of the oracle for a bad filter."""
    proc = run_oracle(["-tnH", *words], env)
    err = proc.stderr.decode(errors="surrogateescape")
    usage = err.find("Usage: ss")
    return (err[:usage] if usage >= 0 else err), proc.returncode


def our_error(words: list[str], ctx: FilterContext | None = None) -> tuple[str, int]:
    with pytest.raises(FilterError) as info:
        parse_filter(words, ctx or FilterContext(dbs=1 << abi.TCP_DB))
    exc = info.value
    return exc.message + "\n", exit_status(exc) & 0xFF


# --- tokenizer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sport = :22", ["sport", "=", ":22"]),
        ("  a\tb  ", ["a", "b"]),
        ("a\\ b c", ["a b", "c"]),
        ("a\\\\b", ["a\\b"]),
        ("\\", [""]),
        ("ab\\", ["ab"]),
        ("x\\\ty", ["x\ty"]),
        ("(sport", ["(sport"]),
        ("a\nb", ["a\nb"]),
        ("", []),
    ],
)
def test_split_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


def test_source_forms_are_equivalent() -> None:
    one = parse_filter("sport = :22 or dport = :80")
    many = parse_filter(["sport", "=", ":22", "or", "dport = :80"])
    assert one == many
    assert parse_filter("") is None
    assert parse_filter([]) is None
    assert parse_filter(["  ", "\t"]) is None


# --- grammar ----------------------------------------------------------------------------


def _tree(text: str) -> object:
    flt = parse_filter(text)
    assert flt is not None
    return flt.root


def test_and_or_same_precedence_left_assoc() -> None:
    root = _tree("sport = :1 or sport = :2 and sport = :3")
    assert isinstance(root, And)
    assert isinstance(root.left, Or)
    root = _tree("sport = :1 or ( sport = :2 and sport = :3 )")
    assert isinstance(root, Or)
    assert isinstance(root.right, And)


def test_not_binds_one_primary() -> None:
    root = _tree("! sport = :1 or sport = :2")
    assert isinstance(root, Or)
    assert isinstance(root.left, Not)


def test_juxtaposition_is_and() -> None:
    assert _tree("sport = :1 dport = :2") == _tree("sport = :1 and dport = :2")
    assert _tree("sport = :1 && dport = :2") == _tree("sport = :1 & dport = :2")
    assert _tree("sport = :1 || dport = :2") == _tree("sport = :1 | dport = :2")


def test_operator_desugaring() -> None:
    gt = _tree("sport gt :5")
    assert isinstance(gt, Not) and isinstance(gt.child, PortRange) and gt.child.op == "<="
    lt = _tree("dport < :5")
    assert isinstance(lt, Not) and isinstance(lt.child, PortRange) and lt.child.op == ">="
    ne = _tree("sport neq :5")
    assert isinstance(ne, Not) and isinstance(ne.child, HostMatch)
    assert _tree("sport 1001") == _tree("sport = :1001") == _tree("sport eq 1001")
    assert _tree("src *:1001") == _tree("sport == :1001")
    assert isinstance(_tree("autobound"), AutoBound)


@pytest.mark.parametrize(
    "text",
    [
        "sport = :22 or dport = :80 and src 127.0.0.1/8",
        "! ( sport >= :1024 or dport < :5 ) dst [::1]:22",
        "sport > :5 and sport != :7 and dport <= :9",
        "src 127.1 or ! dst 10/8 or ( autobound )",
        "dev = 1 or dev != 2 and fwmark 0x10/0xff or ! fwmark != 5",
        "src unix:a\\ b\\\\c or src localhost",
        "src \\",
        "sport = \\",
    ],
)
def test_str_round_trip(text: str) -> None:
    first = parse_filter(text)
    assert first is not None
    again = parse_filter(str(first))
    assert again == first
    assert str(again) == str(first)


# --- operands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0x10", (16, 4)),
        ("010", (8, 3)),
        ("08", (0, 1)),
        ("0x", (0, 1)),
        ("-1", (-1, 2)),
        ("  +7z", (7, 4)),
        ("z", (0, 0)),
        ("99999999999999999999", ((1 << 63) - 1, 20)),
    ],
)
def test_c_strtol(text: str, expected: tuple[int, int]) -> None:
    value, end, _ = c_strtol(text)
    assert (value, end) == expected


def test_c_number_scanners_against_libc() -> None:
    libc = ctypes.CDLL(None)
    libc.strtoul.restype = ctypes.c_ulong
    libc.strtol.restype = ctypes.c_long
    end = ctypes.c_char_p()
    for text in ["0", "12", "0x1f", "0X", "017", "09", "-0", "-5", " \v+9", "x", "",
                 "18446744073709551615", "18446744073709551616", "-18446744073709551615",
                 "0x8000000000000000", "99999999999999999999"]:  # fmt: skip
        raw = text.encode()
        buf = ctypes.create_string_buffer(raw)
        for fn, mine in ((libc.strtoul, c_strtoul), (libc.strtol, c_strtol)):
            fn.argtypes = (ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int)
            value = fn(buf, ctypes.byref(end), 0)
            consumed = ctypes.cast(end, ctypes.c_void_p).value - ctypes.addressof(buf)
            got, got_end, _ = mine(text)
            assert (got, got_end) == (value, consumed), (fn, text)
        number = ctypes.c_int(0)
        count = libc.sscanf(raw, b"%i", ctypes.byref(number))
        scanned = scanf_int(text)
        assert (scanned is not None) == (count == 1), text
        if scanned is not None:
            assert scanned[0] == number.value & 0xFFFFFFFF, text


@pytest.mark.parametrize(
    ("text", "family", "bitlen", "data"),
    [
        ("127.1", abi.AF_INET, 32, "7f010000"),
        ("0177.0.0.1", abi.AF_INET, 32, "7f000001"),
        ("127/8", abi.AF_INET, 8, "7f000000"),
        ("10.0.0.0/255.255.0.0", abi.AF_INET, 16, "0a000000"),
        ("10.1.2.3/any", abi.AF_INET, 0, "0a010203"),
        ("any", abi.AF_UNSPEC, 0, ""),
        ("::1/128", abi.AF_INET6, 128, "00" * 15 + "01"),
    ],
)
def test_get_prefix(text: str, family: int, bitlen: int, data: str) -> None:
    prefix = get_prefix(text, abi.AF_UNSPEC)
    assert prefix is not None
    assert (prefix.family, prefix.bitlen, prefix.data) == (
        family, bitlen, bytes.fromhex(data).ljust(16, b"\0"),
    )  # fmt: skip


@pytest.mark.parametrize("text", ["256.1", "1.2.3.4.5", "1..2", "10/33", "any/8",
                                  "1.2.3.4/0.255.0.0",
                                  "::1/129", "-1", "1.2.3.4x"])  # fmt: skip
def test_get_prefix_rejects(text: str) -> None:
    assert get_prefix(text, abi.AF_UNSPEC) is None


def test_family_side_effects() -> None:
    ctx = FilterContext(preferred_family=abi.AF_UNSPEC, families=0xFFFF)
    parse_filter("src 127.0.0.1", ctx)
    assert (ctx.preferred_family, ctx.families) == (abi.AF_UNSPEC, 0xFFFF)
    parse_filter("src inet:127.0.0.1", ctx)
    assert (ctx.preferred_family, ctx.families) == (abi.AF_INET, 1 << abi.AF_INET)
    ctx = FilterContext()
    flt = parse_filter("src unix:/tmp/* or src /run/*", ctx)
    assert flt is not None and isinstance(flt.root, Or)
    right = flt.root.right
    assert isinstance(right, HostMatch) and right.cond.pattern == "/run/*"
    assert ctx.families == 1 << abi.AF_UNIX
    # -4 -6: the preferred family is inet6, so an IPv4 literal is not an address
    msg, status = our_error(["src", "127.0.0.1"], FilterContext(preferred_family=abi.AF_INET6))
    assert status == 1
    assert msg.startswith('Error: an inet prefix is expected rather than "127.0.0.1"')


def test_unix_globs() -> None:
    names = [None, "/tmp/sock", "/TMP/Other", "@0a1b2", "@abcdeg", "@/abs", "/run/x"]
    recs = [Rec(family=abi.AF_UNIX, name=n, lport=i, rport=0, local_data=b"", remote_data=b"")
            for i, n in enumerate(names)]  # fmt: skip

    def pick(text: str) -> list[object]:
        flt = parse_filter(text, FilterContext(preferred_family=abi.AF_UNIX))
        assert flt is not None
        return [r.name for r in recs if flt.matches(r)]

    assert pick("src /tmp/*") == ["/tmp/sock", "/TMP/Other"]  # FNM_CASEFOLD
    assert pick("src /tmp/SOCK") == ["/tmp/sock"]
    assert pick("src unix:") == [None]
    assert pick("src *") == names
    assert pick("src [/]run*") == ["/run/x"]
    assert pick("dst /tmp/*") == []  # the peer name is never known
    assert pick("dst *") == names
    assert pick("autobound") == [None, "@0a1b2"]
    assert pick("sport = :3") == []  # under a unix preferred family ":3" is a glob
    flt = parse_filter("sport = :3", FilterContext())  # -A unix: inode "ports"
    assert flt is not None
    assert [r.name for r in recs if flt.matches(r)] == ["@0a1b2"]


def test_other_families() -> None:
    packet = [Rec(family=abi.AF_PACKET, lport=ifindex, rport=0, iface=ifindex,
                  local_data=struct.pack("=I", proto), remote_data=b"")
              for ifindex, proto in ((0, 0), (1, 0x0800), (1, 0x0003), (2, 0x86DD))]  # fmt: skip
    netlink = [Rec(family=abi.AF_NETLINK, lport=port, rport=-1,
                   local_data=struct.pack("=I", proto), remote_data=b"")
               for port, proto in ((0, 0), (123, 0), (-5, 4), (77, 16))]  # fmt: skip

    def pick(text: str, recs: list[Rec]) -> list[int]:
        flt = parse_filter(text)
        assert flt is not None
        return [i for i, r in enumerate(recs) if flt.matches(r)]

    assert pick("src link:ip", packet) == [1]
    assert pick("src link:IPv6", packet) == [3]
    assert pick("src link:*:1", packet) == [1, 2]
    assert pick("src link:0x0003:1", packet) == [2]
    assert pick("autobound", packet) == [0]
    assert pick("src netlink:rtnl", netlink) == [0, 1]
    assert pick("src netlink:tcpdiag", netlink) == [2]
    assert pick("src netlink:*:kernel", netlink) == [0]
    assert pick("sport = :0", netlink) == [0]  # kernel sockets
    assert pick("dport = :0", netlink) == []
    assert pick("autobound", netlink) == [2]
    vsock = [Rec(family=abi.AF_VSOCK, lport=p, rport=0, local_data=struct.pack("=I", 3),
                 remote_data=struct.pack("=I", 2)) for p in (5, 1024)]  # fmt: skip
    assert pick("src vsock:99", vsock) == [0, 1]  # the CID is never compared
    assert pick("src vsock:3:5", vsock) == []  # a vsock port never matches
    assert pick("src vsock:3:4294967295", vsock) == [0, 1]  # ... except -1
    assert pick("autobound", vsock) == [1]


# --- user-space matching against the oracle ---------------------------------------------

MATCH_FILTERS = [
    "src 127.0.0.1",
    "src 127.1",
    "src 0177.0.0.1",
    "src 127/8",
    "src 127.0.0.0/255.0.0.0",
    "dst 10.1.2.3/32",
    "dst 0.0.0.0/0",
    "src any",
    "src 0/1",
    "src 127.0.0.1/16",
    "src inet:127.0.0.1",
    "src [::ffff:127.0.0.1]",
    "src [::1]",
    "src ::1/128",
    "dst [::/0]",
    "src [7f00::/16]",
    "dst [fe80::/10]:993",
    "src 2130706433",
    "src 017700000001",
    "src localhost",
    "dst localhost:22",
    "src *:993",
    "src [127.0.0.1]:993",
    "src 127.0.0.1:0x3e1",
    "dport = :22",
    "dport = 22",
    "sport = :01751",
    "sport = :0x3e9",
    "sport = :-1",
    "sport = *",
    "dport = :ssh",
    "sport = :imaps",
    "dport != :http",
    "sport > :1000",
    "sport < :70000",
    "sport >= *",
    "dport <= :1023",
    "dport ge :32768 and dport le :60999",
    "autobound",
    "! autobound",
    "dev 1",
    "dev = 2",
    "dev != 0",
    "dev lo",
    "fwmark 5",
    "fwmark 0x10/0x10",
    "fwmark != 0",
    "fwmark 0x",
    "fwmark 0x1234/0xff00",
    "sport = :22 or sport = :80 and dport = :993",
    "sport = :22 or ( sport = :80 and dport = :993 )",
    "! sport = :22 or dport = :22",
    "not ( src 127/8 or dst 127/8 ) and ! src [::1]",
    "src 127.0.0.1 src 127/8 dport > :5",
    "src 127.0.0.1 or src inet6:::1/128",
]


@needs_oracle
@pytest.mark.parametrize("text", MATCH_FILTERS)
def test_matches_like_oracle(text: str, dump_env: dict[str, str]) -> None:
    words = split_words(text)
    assert ours(words) == oracle_selection(words, dump_env)


@needs_oracle
def test_recorded_scenario_like_oracle() -> None:
    recs = decode_dump(SCENARIO.read_bytes())
    env = dict(os.environ, TCPDIAG_FILE=str(SCENARIO))
    for text in ["src 127.0.0.1", "dst 127.1/16", "sport < :1024", "dport = :993 or sport = :993",
                 "src 127.0.0.53 and ! dport = :110", "dst [::1]", "cgroup != 0"][:-1]:  # fmt: skip
        words = split_words(text)
        proc = run_oracle(["-tanH", *words], env)
        keys = sorted(
            (line.split()[3], line.split()[4]) for line in proc.stdout.decode().splitlines()
        )
        flt = parse_filter(words, FilterContext(dbs=1 << abi.TCP_DB))
        assert flt is not None
        mine = sorted(
            (f"{socket.inet_ntop(socket.AF_INET, r.local_data)}:{r.lport}",
             f"{socket.inet_ntop(socket.AF_INET, r.remote_data)}:{r.rport or '*'}")
            for r in recs if flt.matches(r)
        )  # fmt: skip
        assert mine == keys, text


@needs_oracle
@pytest.mark.skipif(not Path("/sys/fs/cgroup/unified").is_dir(), reason="no cgroup2 mount")
def test_cgroup_like_oracle(dump_env: dict[str, str]) -> None:
    for text in ["cgroup /sys/fs/cgroup/unified", "cgroup != /sys/fs/cgroup/unified"]:
        words = split_words(text)
        assert ours(words) == oracle_selection(words, dump_env), text


# --- errors against the oracle ----------------------------------------------------------

ERROR_FILTERS = [
    "src 0x7f000001",
    "dst [::]/0",
    "src [7f00::]/16",
    "src ::1",
    "src ::",
    "src [::1]/128",
    "src [::1",
    "(sport = :22",
    "sport=:22",
    "sport = :nosuchservice",
    "sport = [::1]:22",
    "sport = 1:2",
    "src 127.0.0.1:bogus",
    "src 1.2.3.4/33",
    "src 256.0.0.1",
    "dst nonexistent.invalid",
    "dport eq :22 or :23",
    "src != 127.0.0.1",
    "sport",
    "sport =",
    "( sport = :22",
    "sport = :22 )",
    ")",
    "( )",
    "!",
    "and",
    "sport = :22 or",
    "sport = :22 :23",
    "dev nosuchdevice0",
    "dev 4294967296",
    "dev",
    "fwmark x",
    "fwmark 5x/3",
    "fwmark 1/",
    "cgroup /no/such/cgroup",
    "cgroup",
    "autobound 1.2.3.4",
    "autobound =",
    "src link:nosuchproto",
    "src link:ip:nosuchdev0",
    "src netlink:nosuch",
    "src netlink:256",
    "src netlink:rtnl:x",
    "src vsock:x",
    "src vsock:1:",
    "src vsock:1:-1",
    ") sport = :bogus",
    "sport = :bogus )",
    "sport = :22 state listening",
    "dev = lo fwmark",
]


@needs_oracle
@pytest.mark.parametrize("text", ERROR_FILTERS)
def test_errors_like_oracle(text: str) -> None:
    words = split_words(text)
    assert our_error(words) == oracle_error(words)


def test_syntax_error_details() -> None:
    with pytest.raises(FilterError) as info:
        parse_filter("sport = :22 )")
    exc = info.value
    assert exc.message == SYNTAX_ERROR
    assert (exit_status(exc), shows_usage(exc), exc.token, exc.position) == (255, True, ")", 3)
    with pytest.raises(FilterError) as info:
        parse_filter("sport = :22 or")
    assert (info.value.token, info.value.position) == (None, 4)


@needs_oracle
def test_services_follow_selected_tables() -> None:
    # http is only a tcp service: with the udp table alone it is not a port
    ctx = FilterContext(dbs=1 << abi.UDP_DB)
    assert our_error(["sport", "=", ":http"], ctx) == oracle_error_with(["-u"], "sport = :http")
    ctx = FilterContext(dbs=abi.UNIX_DBM)
    assert our_error(["sport", "=", ":ssh"], ctx) == oracle_error_with(["-A", "unix_stream"],
                                                                       "sport = :ssh")  # fmt: skip


def oracle_error_with(options: list[str], text: str) -> tuple[str, int]:
    proc = run_oracle([*options, *split_words(text)], dict(os.environ, PROC_ROOT="/nonexistent"))
    err = proc.stderr.decode()
    usage = err.find("Usage: ss")
    return (err[:usage] if usage >= 0 else err), proc.returncode


# --- -F filter files --------------------------------------------------------------------

FILE_CASES = [
    b"sport = :22\nor dport = :22\n",
    b"# comment\nsport = :22\n",
    b"0 sport = :80\nsport = :22\n",
    b"\n\nsport\t=\t:993\n",
    b"",
    b"#only\n",
    b"sport = :22",
]


@needs_oracle
@pytest.mark.parametrize("content", FILE_CASES)
def test_filter_file_like_oracle(content: bytes, dump_env: dict[str, str]) -> None:
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(content)
        tmp.flush()
        expected = oracle_selection(["-F", tmp.name], dump_env)
        with open(tmp.name, "rb") as fp:
            flt = parse_filter([], FilterContext(), fp=fp)
        with open(tmp.name, "rb") as fp:
            words = read_filter_file(fp)
    got = [r.index for r in RECORDS if flt is None or flt.matches(r)]
    assert got == expected
    again = parse_filter(words)
    assert again == flt


@needs_oracle
@pytest.mark.parametrize(
    "content",
    [b"src 127/8 \\\n", b"x" * 1021 + b"\n", b"x" * 1022 + b"\n", b"x" * 1022, b"x" * 1023,
     b"\0sport\n",
     b"sport = :22\n" + b"y" * 2000 + b"\n"],
)  # fmt: skip
def test_filter_file_errors_like_oracle(content: bytes) -> None:
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(content)
        tmp.flush()
        err, status = oracle_error(["-F", tmp.name])
        try:
            with open(tmp.name, "rb") as fp:
                parse_filter([], FilterContext(dbs=1 << abi.TCP_DB), fp=fp)
        except FilterError as exc:
            assert (exc.message + "\n", exit_status(exc) & 0xFF) == (err, status)
        else:
            assert status == 0


def test_read_filter_file_eager_and_lazy_agree() -> None:
    text = b"# c\nsport = :22\n0 ignored\n\ndport = :80\n"
    assert read_filter_file(io.BytesIO(text)) == ["sport = :22", "", "dport = :80"]
    with pytest.raises(FilterError, match="Too long line in filter") as info:
        read_filter_file(io.BytesIO(b"z" * 1100))
    assert exit_status(info.value) == 255
    # ss reads the file lazily: an argv syntax error is reported before a bad line
    with pytest.raises(FilterError) as info:
        parse_filter([")"], fp=io.BytesIO(b"z" * 1100))
    assert info.value.message == SYNTAX_ERROR


# --- helpers for the other test modules -------------------------------------------------


def have_tools(*names: str) -> bool:
    return all(shutil.which(name) for name in names)


@needs_oracle
@pytest.mark.parametrize(
    ("option", "family", "text"),
    [
        ("-4", abi.AF_INET, "src 127.0.0.1"),
        ("-4", abi.AF_INET, "src [::1]"),
        ("-4", abi.AF_INET, "src localhost"),
        ("-6", abi.AF_INET6, "src 127.0.0.1"),
        ("-6", abi.AF_INET6, "src [::ffff:127.0.0.1]"),
        ("-6", abi.AF_INET6, "src localhost"),
        ("-6", abi.AF_INET6, "src any"),
        ("-6", abi.AF_INET6, "src *:22 or dst inet:10.1.2.3"),
        ("-4", abi.AF_INET, "src inet6:::1/128"),
    ],
)
def test_preferred_family_like_oracle(
    option: str, family: int, text: str, dump_env: dict[str, str]
) -> None:
    words = split_words(text)
    ctx = FilterContext(preferred_family=family, families=1 << family, dbs=1 << abi.TCP_DB)
    try:
        flt = parse_filter(words, ctx)
    except FilterError as exc:
        assert (exc.message + "\n", exit_status(exc)) == oracle_error([option, *words], dump_env)
        return
    proc = run_oracle(["-tanH", option, *words], dump_env)
    assert proc.returncode == 0, proc.stderr
    expected = [int(line.split()[1]) for line in proc.stdout.decode().splitlines()]
    got = [r.index for r in RECORDS if flt is None or flt.matches(r)]
    assert got == expected


# --- service names: ss reads glibc's static servent twice --------------------------------


def _udp_only_service() -> str | None:
    """A name /etc/services lists for udp but not for tcp (ntp on most systems)."""
    tcp: set[str] = set()
    udp: list[str] = []
    try:
        lines = Path("/etc/services").read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and "/" in words[1]:
            proto = words[1].split("/", 1)[1]
            for name in [words[0], *words[2:]]:
                (tcp.add(name) if proto == "tcp" else udp.append(name) if proto == "udp" else None)
    return next((name for name in udp if name not in tcp), None)


@needs_oracle
def test_udp_only_service_takes_the_clobbered_port(tmp_path: Path) -> None:
    # With both tables selected ss looks the name up for udp, then for tcp; both calls
    # return the same static struct servent, so when the tcp lookup fails the udp answer
    # is overwritten by the entry the failed scan stopped at (not the udp port).
    name = _udp_only_service()
    if name is None:
        pytest.skip("no udp-only service name")
    real = socket.getservbyname(name, "udp")
    ctx = FilterContext(dbs=(1 << abi.TCP_DB) | (1 << abi.UDP_DB))
    flt = parse_filter(["sport", "=", name], ctx)
    assert flt is not None and isinstance(flt.root, HostMatch)
    got = flt.root.cond.port
    recs = [Rec(family=abi.AF_INET, index=i, state=10, lport=port, rport=0,
                local_data=bytes(4), remote_data=bytes(4))
            for i, port in enumerate(sorted({real, got, 7}))]  # fmt: skip
    (tmp_path / "dump.bin").write_bytes(encode_dump(recs))
    env = dict(os.environ, TCPDIAG_FILE=str(tmp_path / "dump.bin"), PROC_ROOT=str(tmp_path))
    proc = run_oracle(["-tuanH", "sport", "=", name], env)
    assert proc.returncode == 0, proc.stderr
    shown = [int(line.split()[4].rsplit(":", 1)[1]) for line in proc.stdout.decode().splitlines()]
    assert shown == [got]
    # one table: the plain answer (udp) or an error (tcp)
    udp_only = parse_filter(["sport", "=", name], FilterContext(dbs=1 << abi.UDP_DB))
    assert udp_only is not None and isinstance(udp_only.root, HostMatch)
    assert udp_only.root.cond.port == real
    assert our_error(["sport", "=", name]) == oracle_error(["sport", "=", name])


def test_unix_inet_operand_compares_the_name_pointer() -> None:
    # unix_show_sock copies the name pointer into local.data: an inet operand of all zero
    # bits matches the unbound sockets only; from /proc the peer name pointer is copied too.
    from sockscope.tables.unix import UnixSocket

    socks = [UnixSocket(abi.SOCK_STREAM, 1, 10 + i, name) for i, name in
             enumerate([None, b"/run/x.sock", b"@abstract", None])]  # fmt: skip
    for text in ("src 0.0.0.0", "src [::]", "src ::/128"):
        flt = parse_filter(text)
        assert flt is not None
        assert [s.inode for s in socks if flt.matches(s)] == [10, 13], text
    flt = parse_filter("src 0.0.0.0/0")
    assert flt is not None and all(flt.matches(s) for s in socks)
    dst = parse_filter("dst 0.0.0.0")
    assert dst is not None and all(dst.matches(s) for s in socks)  # netlink: no peer data
    for s, peer in zip(socks, [None, b"*", b"?", b"/run/x.sock"], strict=True):
        s.from_proc = True
        s.peer_name_bytes = peer
    assert [s.inode for s in socks if dst.matches(s)] == [10, 11]


@needs_oracle
def test_filter_file_that_is_a_directory(tmp_path: Path, dump_env: dict[str, str]) -> None:
    # fopen() opens a directory and fgets() then reads nothing: an empty filter, exit 0
    env = dict(dump_env, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    args = ["-tanH", "-F", str(tmp_path)]
    want = run_oracle(args, env)
    got = subprocess.run([sys.executable, "-m", "sockscope", *args], env=env,
                         capture_output=True, timeout=60, check=False)  # fmt: skip
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    assert want.returncode == 0 and len(want.stdout.splitlines()) == len(RECORDS)
