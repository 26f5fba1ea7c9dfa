"""``-s``: sockstat/snmp parsing (ss's C quirks included) and the exact text.

Recorded trees with ss 7.1 outputs live in ``tests/golden/summary-*`` (run by
test_golden.py). Here: synthetic ``/proc`` trees that exercise the parser's corners,
each checked against pinned values and, when the 7.1 oracle is installed, against its
output byte for byte (stdout, stderr and status).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sockscope
from conftest import ORACLE
from sockscope.errors import SockscopeError
from sockscope.ops.sockstat import Summary, read, render, snmp_int

REPO = Path(__file__).resolve().parent.parent

SOCKSTAT = (
    b"sockets: used 48\n"
    b"TCP: inuse 19 orphan 0 tw 0 alloc 291 mem 3\n"
    b"UDP: inuse 4 mem 2\n"
    b"UDPLITE: inuse 0\n"
    b"RAW: inuse 1\n"
    b"FRAG: inuse 0 memory 0\n"
)
SOCKSTAT6 = (
    b"TCP6: inuse 5\nUDP6: inuse 1\nUDPLITE6: inuse 0\nRAW6: inuse 1\nFRAG6: inuse 0 memory 0\n"
)
SNMP_TCP = (
    b"Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails"
    b" EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
    b"Tcp: 1 200 120000 -1 10 10 0 0 13 100 100 0 0 0 0\n"
)
SNMP = b"Ip: Forwarding DefaultTTL\nIp: 1 64\n" + SNMP_TCP + b"Udp: InDatagrams\nUdp: 5\n"

EXAMPLE = (
    "Total: 48\n"
    "TCP:   291 (estab 13, closed 267, orphaned 0, timewait 0)\n"
    "\n"
    "Transport Total     IP        IPv6\n"
    "RAW\t  2         1         1        \n"
    "UDP\t  5         4         1        \n"
    "TCP\t  24        19        5        \n"
    "INET\t  31        24        7        \n"
    "FRAG\t  0         0         0        \n"
    "\n"
)


def tree(tmp: Path, **files: bytes | None) -> Path:
    """A PROC_ROOT with net/sockstat, sockstat6 and snmp (None = leave a file out)."""
    base = {"sockstat": SOCKSTAT, "sockstat6": SOCKSTAT6, "snmp": SNMP}
    base.update(files)
    net = tmp / "proc" / "net"
    net.mkdir(parents=True)
    for name, data in base.items():
        if data is not None:
            (net / name).write_bytes(data)
    return tmp / "proc"


def collect(env: dict[str, str]) -> tuple[Summary, list[str]]:
    msgs: list[str] = []
    return read(env, msgs.append), msgs


def run(cmd: list[str], env: dict[str, str]) -> tuple[bytes, bytes, int]:
    full = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PYTHONPATH": str(REPO / "src"), **env}
    r = subprocess.run(cmd, env=full, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    return r.stdout, r.stderr, r.returncode


def ours(argv: list[str], env: dict[str, str]) -> tuple[bytes, bytes, int]:
    return run([sys.executable, "-m", "sockscope", *argv], env)


def same_as_oracle(argv: list[str], env: dict[str, str]) -> None:
    mine = ours(argv, env)
    if ORACLE is None:
        return
    assert mine == run([ORACLE, *argv], env)


# --- the documented example ------------------------------------------------------------
def test_example_text(tmp_path: Path) -> None:
    env = {"PROC_ROOT": str(tree(tmp_path))}
    s, msgs = collect(env)
    assert msgs == []
    assert render(s) == EXAMPLE
    assert (s.tcp_all, s.tcp_closed, s.tcp_estab) == (291, 267, 13)
    same_as_oracle(["-s"], env)


def test_summary_then_table(tmp_path: Path) -> None:
    """``-s -t`` prints the summary, then the TCP list (here from /proc)."""
    root = tree(tmp_path, tcp=b"  sl  local_address rem_address   st\n", tcp6=b"")
    env = {"PROC_ROOT": str(root)}
    out, err, status = ours(["-s", "-t"], env)
    assert out.startswith(EXAMPLE.encode())
    assert out[len(EXAMPLE) :] == b"State Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
    assert (err, status) == (b"", 0)
    same_as_oracle(["-s", "-t"], env)


# --- errors: perror text, zeros --------------------------------------------------------
def test_missing_files(tmp_path: Path) -> None:
    env = {"PROC_ROOT": str(tmp_path / "nowhere")}
    s, msgs = collect(env)
    assert s == Summary()
    assert msgs == [
        "ss: get_sockstat: No such file or directory",
        "ss: get_snmpstat: No such file or directory",
    ]
    assert ours(["-s"], env)[1:] == (
        b"ss: get_sockstat: No such file or directory\n"
        b"ss: get_snmpstat: No such file or directory\n",
        0,
    )
    same_as_oracle(["-s"], env)


def test_sockstat6_is_optional(tmp_path: Path) -> None:
    env = {"PROC_ROOT": str(tree(tmp_path, sockstat6=None))}
    s, msgs = collect(env)
    assert msgs == [] and s.tcp6_hashed == 0 and s.tcp4_hashed == 19
    same_as_oracle(["-s"], env)


def test_snmp_without_tcp_lines(tmp_path: Path) -> None:
    """No ``Tcp:`` pair: ESRCH, so ``No such process``."""
    env = {"PROC_ROOT": str(tree(tmp_path, snmp=b"Ip: Forwarding\nIp: 1\n"))}
    s, msgs = collect(env)
    assert msgs == ["ss: get_snmpstat: No such process"] and s.tcp_estab == 0
    same_as_oracle(["-s"], env)


def test_env_overrides(tmp_path: Path) -> None:
    """PROC_NET_SOCKSTAT/SOCKSTAT6/SNMP beat PROC_ROOT."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "ss").write_bytes(b"sockets: used 7\n")
    (other / "s6").write_bytes(b"UDP6: inuse 3\n")
    (other / "snmp").write_bytes(b"Tcp: CurrEstab\nTcp: 42\n")
    env = {
        "PROC_ROOT": str(tree(tmp_path)),
        "PROC_NET_SOCKSTAT": str(other / "ss"),
        "PROC_NET_SOCKSTAT6": str(other / "s6"),
        "PROC_NET_SNMP": str(other / "snmp"),
    }
    s, msgs = collect(env)
    assert (s.socks, s.udp6, s.tcp_estab, s.tcp4_hashed, msgs) == (7, 3, 42, 0, [])
    same_as_oracle(["-s"], env)


# --- C parsing quirks -------------------------------------------------------------------
def test_snmp_missing_key_reads_last_column() -> None:
    """get_snmp_int counts blanks; a header without the key yields the last value."""
    assert snmp_int(b"Tcp: A B C\nTcp: 1 2 3\n", b"Tcp:", b"CurrEstab") == 3
    assert snmp_int(b"Tcp: A CurrEstab C\nTcp: 1 2 3\n", b"Tcp:", b"CurrEstab") == 2
    # the key must be followed by a blank or the newline
    assert snmp_int(b"Tcp: CurrEstabX CurrEstab\nTcp: 1 2\n", b"Tcp:", b"CurrEstab") == 2
    # value line not starting with the prefix: not found
    assert snmp_int(b"Tcp: CurrEstab\nUdp: 5\n", b"Tcp:", b"CurrEstab") is None
    # a short value line: keep looking for the next header
    data = b"Tcp: A B CurrEstab\nTcp: 1\nTcp: CurrEstab\nTcp: 9\n"
    assert snmp_int(data, b"Tcp:", b"CurrEstab") == 9
    # a non-numeric value is 0, and found
    assert snmp_int(b"Tcp: CurrEstab\nTcp: x\n", b"Tcp:", b"CurrEstab") == 0


def test_snmp_missing_key_cli(tmp_path: Path) -> None:
    env = {"PROC_ROOT": str(tree(tmp_path, snmp=b"Tcp: RtoMin MaxConn\nTcp: 200 -1\n"))}
    s, _msgs = collect(env)
    assert s.tcp_estab == -1
    same_as_oracle(["-s"], env)


QUIRKY = [
    # a failed %d leaves the earlier value (the counters are not reset per line)
    (b"UDP: inuse 4\nUDP: inuse x\n", {"udp4": 4}),
    # later lines win
    (b"UDP: inuse 4\nUDP: inuse 9\n", {"udp4": 9}),
    # TCP: stops at the first bad number, keeps the ones before
    (b"TCP: inuse 3 orphan 2 tw ? alloc 9 mem 1\n", {"tcp4_hashed": 3, "tcp_orphans": 2}),
    # the first word must end at a blank: a tab glues it to the next word
    (b"UDP:\tinuse 4\n", {}),
    # several blanks after the first word are skipped, "%*s" skips any word
    (b"RAW:    whatever   12\n", {"raw4": 12}),
    # signs are accepted by %d
    (b"RAW: inuse -5\nFRAG: inuse +2 memory 7\n", {"raw4": -5, "frag4": 2, "frag4_mem": 7}),
    # numbers are C ints: strtol saturates at LONG_MAX, then the store truncates
    (b"sockets: used 4294967297\n", {"socks": 1}),
    (b"sockets: used 99999999999999999999999\n", {"socks": -1}),
    # fgets(256): a long line is read in pieces; the piece after 255 bytes is a line
    (b"UDP: inuse 1 " + b"x" * 242 + b"RAW: inuse 6\n", {"udp4": 1, "raw4": 6}),
    (b"UDP: inuse 1 " + b"x" * 243 + b"RAW: inuse 6\n", {"udp4": 1}),
    # a line without its newline still counts
    (b"UDP: inuse 8", {"udp4": 8}),
    # nothing after the first word
    (b"UDP:\n", {}),
    # a NUL ends the text sscanf sees
    (b"UDP: inuse 5\0 7\n", {"udp4": 5}),
    # v6 words in sockstat and v4 words in sockstat6 are read all the same
    (b"UDP6: inuse 2\n", {"udp6": 2}),
]


@pytest.mark.parametrize(("text", "expected"), QUIRKY, ids=[str(i) for i in range(len(QUIRKY))])
def test_sockstat_quirks(tmp_path: Path, text: bytes, expected: dict[str, int]) -> None:
    env = {"PROC_ROOT": str(tree(tmp_path, sockstat=text, sockstat6=b""))}
    s, msgs = collect(env)
    values = {k: v for k, v in s.as_dict().items() if v and k != "tcp_estab"}
    assert (values, msgs) == (expected, [])
    same_as_oracle(["-s"], env)


def test_int_wraparound(tmp_path: Path) -> None:
    """Sums are C int arithmetic: they wrap."""
    text = b"TCP: inuse 2147483647 orphan 0 tw 2147483647 alloc 2147483647 mem 0\n"
    env = {"PROC_ROOT": str(tree(tmp_path, sockstat=text))}
    s, _ = collect(env)
    assert s.tcp_all == -2 and s.rows()[2][1] == -2147483644
    same_as_oracle(["-s"], env)


def test_long_proc_root_is_cut(tmp_path: Path) -> None:
    """generic_proc_open builds "$PROC_ROOT/net/x" in a 127-byte snprintf: longer is cut.

    Here the cut leaves "$PROC_ROOT/net/", a directory: fopen succeeds, fgets reads
    nothing, so sockstat gives zeros silently and snmp says ESRCH.
    """
    deep = tmp_path / ("d" * (121 - len(str(tmp_path / "x" / "proc")) + 1))
    root = tree(deep)
    assert len(os.fsencode(f"{root}/net/")) == 126
    env = {"PROC_ROOT": str(root)}
    s, msgs = collect(env)
    assert s == Summary()
    assert msgs == ["ss: get_snmpstat: No such process"]
    same_as_oracle(["-s"], env)


# --- the library ------------------------------------------------------------------------
def test_library_summary_raises_with_ss_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROC_ROOT", str(tree(tmp_path)))
    s = sockscope.summary()
    assert isinstance(s, Summary) and s.socks == 48
    monkeypatch.setenv("PROC_ROOT", str(tmp_path / "none"))
    with pytest.raises(SockscopeError, match="ss: get_sockstat: No such file or directory"):
        sockscope.summary()


def test_summary_object() -> None:
    s = Summary(socks=1, udp4=2)
    assert s.as_dict()["udp4"] == 2 and s == Summary(udp4=2, socks=1) and "udp4=2" in repr(s)
    with pytest.raises(TypeError):
        Summary(bogus=1)
