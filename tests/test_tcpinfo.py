"""sockscope.tcpinfo: UAPI decoders on real kernel bytes, C printf helpers, printers."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import netns
from sockscope.kernel import abi, netlink, structs
from sockscope.tables.inet import protoinfo, tcpinfo
from sockscope.tables.inet import record as records

TESTS = Path(__file__).resolve().parent
DUMP = TESTS / "golden" / "scenario-extinfo" / "tcpdiag.bin"


def _libc_format(fmt: bytes, value: float) -> str:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    buf = ctypes.create_string_buffer(128)
    libc.snprintf(buf, 128, fmt, ctypes.c_double(value))
    return buf.value.decode()


# ---------------------------------------------------------------- %g and sprint_bw


def _doubles() -> list[float]:
    rnd = random.Random(4)
    vals = [0.0, -0.0, 1.0, 0.5, 0.016, 0.0001, 0.00001, 123456.0, 1234567.0, 999999.5,
            9999995.0, 1e16, 2.88671875, 1.5e-7, 204.0, 0.008, 32768000000.0,
            2**53 + 1.0]  # fmt: skip
    vals += [rnd.uniform(0, 10) ** rnd.randint(-8, 30) for _ in range(3000)]
    vals += [rnd.randint(0, 2**32) / 1000 for _ in range(2000)]
    vals += [rnd.randint(0, 2**32) / 256 for _ in range(500)]
    return vals


def test_c_g_matches_glibc() -> None:
    for v in _doubles():
        assert tcpinfo.c_g(v) == _libc_format(b"%g", v), v


@pytest.mark.parametrize("fmt", [b"%.3g", b"%.0f", b"%.1f"])
def test_python_percent_matches_glibc(fmt: bytes) -> None:
    for v in _doubles():
        assert fmt.decode() % v == _libc_format(fmt, v), v


def test_g_matches_printf_command() -> None:
    """The same against coreutils printf(1) (a separate glibc formatting path)."""
    vals = ["0.016", "1234.567", "204", "0.0001", "1e-05", "2.88671875", "123456789"]
    out = subprocess.run(["printf", "%g\\n", *vals], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [tcpinfo.c_g(float(v)) for v in vals]


@pytest.mark.parametrize(
    ("bw", "human", "numeric"),
    [
        (0.0, "0", "0"),
        (999.0, "999", "999"),
        (1000.0, "1k", "1000"),
        (999999.0, "1e+03k", "999999"),
        (19e6, "19M", "19000000"),
        (32768000000.0, "32.8G", "32768000000"),
        (137313523810.0, "137G", "137313523810"),
        (3.2e12, "3.2T", "3200000000000"),
        (2.5, "2.5", "2"),  # %.0f rounds half to even, like glibc
    ],
)
def test_sprint_bw(bw: float, human: str, numeric: str) -> None:
    assert tcpinfo.sprint_bw(bw, False) == human
    assert tcpinfo.sprint_bw(bw, True) == numeric


# ---------------------------------------------------------------- decoders


def _recorded() -> list[records.InetSocket]:
    return list(records.decode_inet(netlink.replay(DUMP.read_bytes()), abi.IPPROTO_TCP))


def test_decode_real_tcp_info() -> None:
    """struct tcp_info as this kernel sent it (scenario-extinfo's dump)."""
    socks = _recorded()
    assert socks
    for s in socks:
        info = s.tcp_info
        assert info is not None
        assert info.tcpi_state == s.state
        assert info.tcpi_reordering == 3 or s.state != 1
        if s.state == 1:  # ESTABLISHED on loopback: timestamps, sack, wscale 10 both ways
            assert info.tcpi_options & 7 == 7
            assert (info.tcpi_snd_wscale, info.tcpi_rcv_wscale) == (10, 10)
            assert info.tcpi_pmtu == 65535
            assert info.tcpi_snd_mss > 0
            assert info.tcpi_advmss == 65483
        if s.state == 10:
            assert info.tcpi_pacing_rate == 2**64 - 1
        assert s.cong in ("bbr", "cubic", "reno")
        mem = s.skmem
        assert mem is not None
        assert mem.rcvbuf > 0
        assert mem.drops is not None


def test_decode_real_md5_and_ulp() -> None:
    socks = _recorded()
    md5 = [s.md5sig for s in socks if s.md5sig]
    assert md5 == [[structs.Md5Sig(2, 32, 11, socket.inet_aton("127.0.0.1"), b"sec ret,\\k\x01")]]
    ulps = [s.ulp for s in socks if s.ulp]
    assert {"name": "mptcp"} in ulps
    assert any("mptcp" in u and u["mptcp"].get("token_loc") for u in ulps)  # type: ignore[union-attr]
    bbr = [s.cc_info for s in socks if isinstance(s.cc_info, structs.BbrInfo)]
    assert bbr


def test_short_tcp_info_is_zero_filled() -> None:
    full = structs.TCP_INFO.pack(
        1, 0, 0, 0, 2, 7, 0xA7, 1, *range(1, 25), *(2**40 + i for i in range(4)),
        *range(100, 106), 7, 8, 9, 10, 11, 12, 13, 14, *range(200, 206), 1, 2, *range(300, 309),
    )  # fmt: skip
    whole = structs.decode_tcp_info(full)
    assert (whole.tcpi_snd_wscale, whole.tcpi_rcv_wscale) == (7, 10)
    assert whole.tcpi_delivery_rate_app_limited == 1
    assert whole.tcpi_rto == 1
    assert whole.tcpi_total_retrans == 24
    assert whole.tcpi_pacing_rate == 2**40
    for size in (0, 8, 92, 104, 136, 160, 168, 192, 200, 216, 240, 248, 276):
        part = structs.decode_tcp_info(full[:size])
        for i, (a, b) in enumerate(zip(whole, part, strict=True)):
            assert b in (a, 0), (size, structs.TcpInfo._fields[i])
        assert sum(1 for a, b in zip(whole, part, strict=True) if a != b) >= (size < 280)
    longer = structs.decode_tcp_info(full + b"\xff" * 40)
    assert longer == whole


def test_decode_small_structs() -> None:
    assert structs.decode_skmeminfo(struct.pack("=7I", *range(7))).backlog is None
    assert structs.decode_skmeminfo(struct.pack("=8I", *range(8))) == structs.SkMemInfo(
        0, 1, 2, 3, 4, 5, 6, 7, None
    )
    assert structs.decode_meminfo(struct.pack("=4I", 1, 2, 3, 4)).idiag_tmem == 4
    assert structs.decode_bbr(struct.pack("=3I", 1, 2, 3)).bbr_cwnd_gain == 0
    assert structs.decode_dctcp(struct.pack("=HHIII", 1, 2, 3, 4, 5)).dctcp_ab_tot == 5
    assert structs.decode_vegas(struct.pack("=4I", 1, 2, 3, 4)).tcpv_rtt == 3
    m = structs.decode_mptcp_info(bytes(8))
    assert m.mptcpi_token == 0 and m.mptcpi_last_ack_recv == 0
    assert structs.MPTCP_INFO.size == 96
    assert structs.SCTP_INFO.size == 368
    assert structs.TCP_INFO.size == 280


# ---------------------------------------------------------------- MPTCP / SCTP printers


def test_mptcp_stats_7_1_decimal() -> None:
    """ss-output.md S22 (7.1): write_seq/snd_una/rcv_nxt in decimal, new counters."""
    info = structs.MPTCP_INFO.pack(
        0, 0, 0, 2, 0, 0, 2, 0x3A7F370B, 3027487605628560099, 3027487605628560099,
        7422479008493297541, 0, 0, 0, 0, 0, 10, 0, 10, 1, 0, 0, 0, 597304, 597304, 597304,
    )  # fmt: skip
    assert protoinfo.mptcp_stats(info, 0, len(info)) == (
        " subflows_max:2 remote_key token:3a7f370b write_seq:3027487605628560099"
        " snd_una:3027487605628560099 rcv_nxt:7422479008493297541 bytes_sent:10"
        " bytes_acked:10 subflows_total:1 last_data_sent:597304 last_data_recv:597304"
        " last_ack_recv:597304"
    )
    assert protoinfo.mptcp_stats(b"\x01\0\0\0\0\0\0\0\x01\0\0\0", 0, 12) == " subflows:1 fallback"


def test_sctp_stats_order_and_formats() -> None:
    vals = [0] * 55
    vals[32] = bytes(128)
    vals[0], vals[1], vals[2], vals[14], vals[12] = 0xABC, 3, 0xFFFFFFFF, 0x1F, 1400
    vals[46], vals[52] = 5, 1
    data = structs.SCTP_INFO.pack(*vals)
    assert protoinfo.sctp_stats(data, 0, len(data)) == (
        " tag:abc state:ESTAB rwnd:-1 maxseg:1400 ptag:1f autoclose:5 fraginl:1"
    )


# ---------------------------------------------------------------- live kernel bytes


@pytest.mark.live
def test_live_getsockopt_matches_diag() -> None:
    """getsockopt(TCP_INFO) and the sock_diag INFO attribute agree on stable fields."""
    if netns.live_reason():
        pytest.skip(netns.live_reason() or "")
    ns = netns.Netns(f"sockscope-ti-{os.getpid()}")
    code = r"""
import socket, sys, struct
sys.path.insert(0, sys.argv[1])
from sockscope.kernel import netlink
from sockscope.tables.inet import record as records
from sockscope.kernel import abi
from sockscope.query import selection as query
from sockscope.kernel import structs
from sockscope.tables.inet import tcpinfo
l = socket.socket(); l.bind(("127.0.0.1", 7301)); l.listen()
c = socket.socket(); c.connect(("127.0.0.1", 7301)); s, _ = l.accept()
c.sendall(b"x" * 1000); s.recv(1000)
mine = structs.decode_tcp_info(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512))
print(len(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)))
print(mine.tcpi_state, mine.tcpi_options, mine.tcpi_snd_wscale, mine.tcpi_snd_mss,
      mine.tcpi_advmss, mine.tcpi_bytes_acked, mine.tcpi_data_segs_out)
"""
    try:
        p = ns.run([sys.executable, "-c", code, str(TESTS.parent / "src")], check=True)
    finally:
        ns.close()
    size, fields = p.stdout.decode().splitlines()
    assert int(size) >= 232  # this kernel's struct is at least 6.x-sized
    state, options, wscale, mss, advmss, acked, dsegs = map(int, fields.split())
    assert (state, options & 7, wscale, advmss, acked, dsegs) == (1, 7, 10, 65483, 1001, 1)
    assert mss > 0


def test_memo_tables_belong_to_a_run() -> None:
    """The -i text's memo tables live on a TcpText per run (style: no module-level
    mutable state), so two runs (an exporter's threads) share nothing; same text."""
    hot = list(tcpinfo.TCP_HOT.unpack(bytes(tcpinfo.TCP_HOT_SIZE)))
    hot[4] = 204000  # tcpi_rto in microseconds
    first, second = tcpinfo.TcpText(), tcpinfo.TcpText()
    text = first.text(1, tuple(hot), "cubic", None, 0, "", False, False)
    assert " rto:204 " in text  # %g of 204000 us in ms
    assert first.ms == {204000: "204"} and second.ms == {}
    assert second.text(1, tuple(hot), "cubic", None, 0, "", False, False) == text
