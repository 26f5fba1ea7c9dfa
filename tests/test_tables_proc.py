"""The /proc/net/{unix,packet,netlink} parsers on crafted files, and the C helpers.

ss reads these files with ``fgets`` into 256-byte buffers and ``sscanf``; the crafted
files poke at what that implies (unsorted input, odd states, long and unterminated
lines, short lines, the old "Peer" format, more than MAX_UNIX_REMEMBER sockets). Each
case is compared byte for byte with the upstream ss 7.1 oracle when it is present
(``$SOCKSCOPE_ORACLE``, see conftest.py); the expected text of the key quirks is
also pinned inline so that they stay tested without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ORACLE
from sockscope.kernel import libc
from sockscope.tables import common as tables
from sockscope.tables import unix as unixsock

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
HAVE_ORACLE = ORACLE is not None

UNIX_HEADER = b"Num       RefCount Protocol Flags    Type St Inode Path\n"


def line(num: int, flags: int, stype: int, st: int, ino: int, path: bytes = b"") -> bytes:
    text = b"%016x: 00000002 00000000 %08x %04x %02x %5d" % (num, flags, stype, st, ino)
    return text + (b" " + path if path else b"") + b"\n"


def ours(env: dict[str, str], *args: str) -> tuple[int, bytes, bytes]:
    full = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(SRC), "LC_ALL": "C", **env}
    p = subprocess.run(
        [sys.executable, "-m", "sockscope", *args], env=full, capture_output=True, check=False
    )
    return p.returncode, p.stdout, p.stderr


def oracle(env: dict[str, str], *args: str) -> tuple[int, bytes, bytes]:
    full = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", **env}
    p = subprocess.run([ORACLE, *args], env=full, capture_output=True, check=False)
    return p.returncode, p.stdout, p.stderr


def check(env: dict[str, str], *args: str, want: bytes | None = None) -> bytes:
    got = ours(env, *args)
    assert got[0] == 0, got[2]
    if HAVE_ORACLE:
        assert got == oracle(env, *args)
    if want is not None:
        assert got[1] == want
    return got[1]


# --- unix ------------------------------------------------------------------------------------
def test_unix_states_sorting_and_dgram_estab(tmp_path):
    f = tmp_path / "unix"
    f.write_bytes(
        UNIX_HEADER
        + line(0xFFFF1, 0, 5, 1, 40, b"/s/seq")
        + line(0xFFFF2, 0x10000, 1, 1, 30, b"/s/listen")
        + line(0xFFFF3, 0, 2, 1, 20, b"@abstract")  # kernel address != 0: ESTAB
        + line(0, 0, 2, 1, 10, b"/s/dgram")  # address hidden (non-root view): UNCONN
        + line(0xFFFF4, 0, 1, 3, 25)
        + line(0xFFFF5, 0, 1, 5, 26)  # St 5 is not mapped: raw state 5 (FIN-WAIT-2)
        + line(0xFFFF6, 0, 3, 1, 5, b"/s/raw")  # type 3: never skipped, netid u_dgr
    )
    env = {"PROC_NET_UNIX": str(f)}
    check(
        env,
        "-xa",
        want=(
            b"Netid State      Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
            b"u_str ESTAB      0      0                  * 25              * 0\n"
            b"u_str FIN-WAIT-2 0      0                  * 26              * 0\n"
            b"u_str LISTEN     0      0          /s/listen 30              * 0\n"
            b"u_dgr UNCONN     0      0           /s/dgram 10              * 0\n"
            b"u_dgr ESTAB      0      0          @abstract 20              * 0\n"
            b"u_dgr UNCONN     0      0             /s/raw 5               * 0\n"
            b"u_seq UNCONN     0      0             /s/seq 40              * 0\n"
        ),
    )
    check(env, "-x")
    check(env, "-xl")
    check(env, "-A", "unix_dgram")
    check(env, "-A", "unix_dgram", "-a")
    check(env, "-xa", "src", "/s/*")
    check(env, "-xa", "sport", "=", ":25")  # /proc records carry no inode for the filter
    check(env, "-xae")  # -e and -m print nothing for /proc records
    check(env, "-xam")


def test_unix_long_and_broken_lines(tmp_path):
    """A line longer than 255 bytes is read in pieces; the pieces are parsed as lines."""
    f = tmp_path / "unix"
    f.write_bytes(
        UNIX_HEADER
        + line(0xA, 0x10000, 1, 1, 7, b"/x/" + b"p" * 240)
        + line(0xB, 0, 2, 1, 8, b"/with space")
        + b"garbage\n"
        + b"0000000000000001: 00000002\n"
        + line(0xC, 0, 1, 3, 9).rstrip(b"\n")  # last line without a newline: still read
    )
    out = check({"PROC_NET_UNIX": str(f)}, "-xa")
    assert b"/with" in out and b"space" not in out


def test_unix_old_peer_format(tmp_path):
    """Old kernels had a "Peer" column: peers are looked up among the sockets read so far.

    Not compared with the oracle: ss frees a peer's name when it prints that peer, and a
    later row that refers to it prints freed memory (use after free). We print the name.
    """
    f = tmp_path / "unix"
    f.write_bytes(
        b"Peer     RefCount Protocol Flags    Type St Inode Path\n"
        b"00000000: 00000000 00000000 00010000 0001 01    64 /a/listen\n"
        b"00000040: 00000003 00000004 00000000 0001 03    65\n"
        b"00000063: 00000001 00000002 00000000 0001 03    66 /a/x\n"
    )
    _, out, _ = ours({"PROC_NET_UNIX": str(f)}, "-xa")
    assert out == (
        b"Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
        b"u_str LISTEN 0      0          /a/listen 64              * 0\n"
        b"u_str ESTAB  3      4                  * 65      /a/listen 64\n"
        b"u_str ESTAB  1      2               /a/x 66              ? 99\n"
    )


def test_unix_batches_of_max_remember(tmp_path):
    """ss sorts at most MAX_UNIX_REMEMBER + 1 sockets at a time."""
    n = unixsock.MAX_UNIX_REMEMBER + 20
    f = tmp_path / "unix"
    f.write_bytes(UNIX_HEADER + b"".join(line(0, 0, 1, 3, 100000 - i) for i in range(n)))
    out = check({"PROC_NET_UNIX": str(f)}, "-xH")
    inodes = [int(x.split()[5]) for x in out.splitlines()]
    first = unixsock.MAX_UNIX_REMEMBER + 1
    assert inodes[:first] == sorted(inodes[:first]) and inodes[first:] == sorted(inodes[first:])
    assert inodes != sorted(inodes)


def test_unix_proc_root_missing_file_prints_nothing(tmp_path):
    check(
        {"PROC_ROOT": str(tmp_path)},
        "-xa",
        want=b"Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\n",
    )


# --- packet ----------------------------------------------------------------------------------
PACKET_HEADER = b"sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n"


def test_packet_proc_types_and_names(tmp_path):
    f = tmp_path / "packet"
    f.write_bytes(
        PACKET_HEADER
        + b"0000000000000001 3      3    0003   0     1 5      0      11\n"
        + b"0000000000000002 3      2    0800   1     1 0      1000   12\n"
        + b"0000000000000003 3      3    8902   99    1 0      0      13\n"
        + b"0000000000000004 3      3    1234   1     1 0      0      14\n"
        + b"0000000000000005 3      3    88cc   1     1 0      0      15\n"
    )
    env = {"PROC_NET_PACKET": str(f)}
    out = check(env, "-0a")
    assert b"cfm:if99" in out and b"[4660]:lo" in out and b"LLDP:lo" in out
    check(env, "-0an")
    check(env, "-0ae")  # /proc: uid, ino and sk:0 only
    check(env, "-A", "packet_raw", "-a")  # the /proc path does filter by type (7.1)
    check(env, "-A", "packet_dgram", "-a")
    check(env, "-0a", "dev", "lo")
    check(env, "-0a", "autobound")


def test_packet_proc_stops_at_unterminated_line(tmp_path):
    f = tmp_path / "packet"
    f.write_bytes(
        PACKET_HEADER
        + b"0000000000000001 3      3    0003   0     1 5      0      11\n"
        + b"0000000000000002 3      2    0800   1     1 0      1000   12"
    )
    out = check({"PROC_NET_PACKET": str(f)}, "-0a")
    assert b" 12" not in out


# --- netlink ---------------------------------------------------------------------------------
NL_HEADER = (
    b"sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n"
)


def test_netlink_proc(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "stat").write_bytes(b"4242 (my (prog)) S 1")
    (tmp_path / "net" / "netlink").write_bytes(
        NL_HEADER
        + b"00000000d492182d 0   4242       00000051 0        0        0     2        0        1\n"
        + b"00000000ba340bfa 0   0          00000000 0        0        0     2        0        2\n"
        + b"000000006fba3312 4   3000000000 00000000 10       20       1     2        0        3\n"
        + b"000000006fba3313 31  -1         00000000 0        0        0     2        0        4\n"
        + b"000000006fba3314 16  77\n"
    )
    env = {"PROC_ROOT": str(tmp_path)}
    out = check(env, "-A", "netlink", "-a")
    assert b"rtnl:my (prog/4242" in out
    check(env, "-A", "netlink", "-an")
    out = check(env, "-A", "netlink", "-aep")  # /proc fills sk and cb
    assert b"sk=d492182d cb=0 groups=0x00000051" in out
    check(env, "-A", "netlink", "-ae")
    check(env, "-A", "netlink", "-am")  # no -m text from /proc
    check(env, "-A", "netlink", "-a", "sport", "=", ":0")
    check(env, "-A", "netlink", "-a", "autobound")


# --- C library helpers -----------------------------------------------------------------------
def test_fgets_pieces():
    data = b"a" * 300 + b"\nshort\nend"
    assert [len(x) for x in libc.fgets(data)] == [255, 46, 6, 3]


@pytest.mark.parametrize(
    ("text", "fmt", "want"),
    [
        (b"00000000e427086a: 00000003 0 0 0001 03 2589856 /x", "%x: %x %x %x %x %x %d %s",
         [0xE427086A, 3, 0, 0, 1, 3, 2589856, b"/x"]),
        (b"0: 1 2", "%x: %x %x %x", [0, 1, 2]),
        (b"zz", "%x:", []),
        (b"0x1f name", "0x%x %s", [0x1F, b"name"]),
        (b"4294967295 -1", "%d %d", [-1, -1]),
        (b"99999999999999999999", "%d", [-1]),
        (b"ffffffffffffffff", "%llx", [0xFFFFFFFFFFFFFFFF]),
        (b"a\0b 1", "%s %d", [b"a"]),
    ],
)  # fmt: skip
def test_scanf(text, fmt, want):
    assert libc.scanf(text, fmt) == want


def test_skmem_text_lengths():
    assert tables.skmem_text(None) == ""
    assert tables.skmem_text((1, 2, 3, 4, 5, 6, 7)) == " skmem:(r1,rb2,t3,tb4,f5,w6,o7)"
    assert tables.skmem_text(tuple(range(9))) == " skmem:(r0,rb1,t2,tb3,f4,w5,o6,bl7,d8)"
