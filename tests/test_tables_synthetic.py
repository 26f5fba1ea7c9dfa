"""The non-inet tables fed with sock_diag replies built from the uapi layouts.

The test kernel has no ``vsock_diag``, ``tipc`` or ``xsk_diag``, so those tables are
exercised here with messages assembled field by field from the kernel headers
(``include/uapi/linux/vm_sockets_diag.h``, ``tipc_sockets_diag.h`` + ``tipc_netlink.h``,
``xdp_diag.h``; and ``unix_diag.h``, ``packet_diag.h``, ``netlink_diag.h`` for the
quirks a live kernel does not produce). Expected texts follow ss.c 7.1's printers.
The CLI runs in-process with the module's ``diag_dump`` replaced.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pytest

from sockscope.cli import command as cli
from sockscope.kernel import abi, netlink
from sockscope.tables import common as tables
from sockscope.tables import netlink as nlsock
from sockscope.tables import packet as packetsock
from sockscope.tables import tipc as tipcsock
from sockscope.tables import unix as unixsock
from sockscope.tables import vsock
from sockscope.tables import xdp as xdpsock


def attr(kind: int, data: bytes) -> bytes:
    return netlink.attr(kind, data)


def replies(*payloads: bytes):
    """A fake diag_dump yielding one message per payload (all in one buffer)."""
    buf = b"".join(netlink.message(abi.SOCK_DIAG_BY_FAMILY, abi.NLM_F_MULTI, p) for p in payloads)

    def fake(ctx, request):
        off = 0
        while off < len(buf):
            length = struct.unpack_from("=I", buf, off)[0]
            yield abi.SOCK_DIAG_BY_FAMILY, buf, off, length
            off += (length + 3) & ~3

    return fake


def fold(text: str) -> list[str]:
    """The rows with runs of blanks folded (layout is the column engine's business)."""
    return [" ".join(line.split()) for line in text.splitlines()]


def failing(ctx, request):
    raise tables.DumpFailed
    yield  # pragma: no cover


def run(capsysbinary, monkeypatch, argv, env=None):
    monkeypatch.delenv("PROC_ROOT", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    status = cli.main(argv)
    out, err = capsysbinary.readouterr()
    return status, out.decode("latin-1"), err.decode("latin-1")


# --- vsock ----------------------------------------------------------------------------------
def vsock_msg(stype, state, scid, sport, dcid, dport, ino):
    return abi.VSOCK_DIAG_MSG.pack(
        abi.AF_VSOCK, stype, state, 0, scid, sport, dcid, dport, ino, 1, 0
    )


def test_vsock_rows(capsysbinary, monkeypatch):
    fake = replies(
        vsock_msg(1, abi.SS_LISTEN, 0xFFFFFFFF, 1234, 0xFFFFFFFF, 0xFFFFFFFF, 11),
        vsock_msg(1, abi.SS_ESTABLISHED, 3, 1234, 2, 50000, 12),
        vsock_msg(2, abi.SS_CLOSE, 2, 99, 0, 0, 13),
        vsock_msg(5, abi.SS_CLOSE, 2, 98, 0, 0, 14),
    )
    monkeypatch.setattr(vsock, "diag_dump", fake)
    _, out, _ = run(capsysbinary, monkeypatch, ["--vsock", "-a"])
    assert out == (
        "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
        "v_str LISTEN 0      0                  *:1234            *:*\n"
        "v_str ESTAB  0      0                  3:1234            2:50000\n"
        "v_dgr UNCONN 0      0                  2:99              0:0\n"
        "???   UNCONN 0      0                  2:98              0:0\n"
    )


def test_vsock_type_skip_and_filter(capsysbinary, monkeypatch):
    """-A vsock_dgram drops streams in user space; unknown types are never skipped."""
    fake = replies(vsock_msg(1, 1, 3, 1, 2, 2, 1), vsock_msg(2, 7, 3, 5000, 2, 0, 2))
    monkeypatch.setattr(vsock, "diag_dump", fake)
    _, out, _ = run(capsysbinary, monkeypatch, ["-A", "vsock_dgram", "-a"])
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["UNCONN"]
    monkeypatch.setattr(vsock, "diag_dump", fake)
    _, out, _ = run(capsysbinary, monkeypatch, ["--vsock", "-a", "autobound"])
    assert out.splitlines()[1:] == ["v_dgr UNCONN 0      0                  3:5000            2:0"]


def test_vsock_missing_module_is_silent(capsysbinary, monkeypatch):
    monkeypatch.setattr(vsock, "diag_dump", failing)
    status, out, err = run(capsysbinary, monkeypatch, ["--vsock", "-a"])
    assert (status, out, err) == (
        0,
        "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\n",
        "",
    )


# --- tipc -----------------------------------------------------------------------------------
def tipc_msg(stype=abi.SOCK_RDM, state=abi.SS_CLOSE, con=None, publ=False, cong=None, drop=0):
    u32 = lambda v: struct.pack("=I", v)  # noqa: E731
    stat = attr(abi.TIPC_NLA_SOCK_STAT_RCVQ, u32(3)) + attr(abi.TIPC_NLA_SOCK_STAT_SENDQ, u32(4))
    if cong == "link":
        stat += attr(abi.TIPC_NLA_SOCK_STAT_LINK_CONG, b"")
    if cong == "conn":
        stat += attr(abi.TIPC_NLA_SOCK_STAT_CONN_CONG, b"")
    stat += attr(abi.TIPC_NLA_SOCK_STAT_DROP, u32(drop))
    sock = (
        attr(abi.TIPC_NLA_SOCK_ADDR, u32(16781313))
        + attr(abi.TIPC_NLA_SOCK_REF, u32(2456))
        + attr(abi.TIPC_NLA_SOCK_TYPE, u32(stype))
        + attr(abi.TIPC_NLA_SOCK_TIPC_STATE, u32(state))
        + attr(abi.TIPC_NLA_SOCK_UID, u32(1000))
        + attr(abi.TIPC_NLA_SOCK_INO, u32(777))
        + attr(abi.TIPC_NLA_SOCK_COOKIE, struct.pack("=Q", 0xABC))
        + attr(abi.TIPC_NLA_SOCK_STAT, stat)
    )
    if publ:
        sock += attr(abi.TIPC_NLA_SOCK_HAS_PUBL, b"")
    if con is not None:
        c = attr(abi.TIPC_NLA_CON_NODE, u32(con[0])) + attr(abi.TIPC_NLA_CON_SOCK, u32(con[1]))
        if len(con) > 2:
            c += attr(abi.TIPC_NLA_CON_FLAG, b"")
            c += attr(abi.TIPC_NLA_CON_TYPE, u32(con[2])) + attr(abi.TIPC_NLA_CON_INST, u32(con[3]))
        sock += attr(abi.TIPC_NLA_SOCK_CON, c)
    return attr(abi.TIPC_NLA_SOCK, sock)


def test_tipc_rows_and_tipcinfo(capsysbinary, monkeypatch):
    fake = replies(
        tipc_msg(),
        tipc_msg(
            abi.SOCK_STREAM, abi.SS_ESTABLISHED, con=(16781314, 99, 1000, 7), publ=True, cong="link"
        ),
        tipc_msg(abi.SOCK_SEQPACKET, abi.SS_LISTEN, cong="conn", drop=0xFFFFFFFF),
    )
    monkeypatch.setattr(tipcsock, "diag_dump", fake)
    _, out, _ = run(capsysbinary, monkeypatch, ["--tipc", "--tipcinfo", "-e"])
    # -e details land in the (disabled) Process column: lost without -p
    assert fold(out) == [
        "State Recv-Q Send-Q Local Address:Port Peer Address:Port",
        "UNCONN 3 4 16781313:2456 -",
        "type:RDM cong:none drop:0",
        "ESTAB 3 4 16781313:2456 16781314:99",
        "type:STREAM cong:link drop:0 publ via {1000,7}",
        "LISTEN 3 4 16781313:2456 -",
        "type:SEQPACKET cong:conn drop:-1",
    ]
    # "\n type:" (newline and one blank), blanks after cong: and drop:, " via {t,i} "
    assert "-\n type:RDM cong:none  drop:0 " in out
    assert "\n type:STREAM cong:link  drop:0  publ via {1000,7} \n" in out


def test_tipc_details_before_users_and_no_filter(capsysbinary, monkeypatch):
    monkeypatch.setattr(tipcsock, "diag_dump", replies(tipc_msg()))
    _, out, _ = run(capsysbinary, monkeypatch, ["--tipc", "-epO", "--tipcinfo", "sport", "=", ":1"])
    # the filter would reject the socket (its "port" is not 1): tipc ignores it
    assert out.splitlines()[1].endswith("-     uid:1000 ino:777 sk:abc type:RDM cong:none  drop:0 ")


# --- xdp ------------------------------------------------------------------------------------
def xdp_msg(ifindex=1, qid=3, full=True):
    body = abi.XDP_DIAG_MSG.pack(abi.AF_XDP, abi.SOCK_RAW, 4242, 0x10, 0)
    body += attr(abi.XDP_DIAG_INFO, abi.XDP_DIAG_INFO_S.pack(ifindex, qid))
    body += attr(abi.XDP_DIAG_UID, struct.pack("=I", 0))
    if full:
        body += attr(abi.XDP_DIAG_RX_RING, struct.pack("=I", 2048))
        body += attr(abi.XDP_DIAG_TX_RING, struct.pack("=I", 1024))
        body += attr(
            abi.XDP_DIAG_UMEM, abi.XDP_DIAG_UMEM_S.pack(1 << 20, 5, 256, 4096, 0, 1, 3, 1, 2)
        )
        body += attr(abi.XDP_DIAG_UMEM_FILL_RING, struct.pack("=I", 4096))
        body += attr(abi.XDP_DIAG_UMEM_COMPLETION_RING, struct.pack("=I", 512))
        body += attr(abi.XDP_DIAG_STATS, abi.XDP_DIAG_STATS_S.pack(1, 2, 3, 4, 5, 6))
    body += attr(abi.XDP_DIAG_MEMINFO, struct.pack("=9I", 77, 2, 3, 4, 5, 6, 7, 8, 9))
    return body


def test_xdp_rows(capsysbinary, monkeypatch):
    monkeypatch.setattr(xdpsock, "diag_dump", replies(xdp_msg(), xdp_msg(0, 0, False)))
    _, out, _ = run(capsysbinary, monkeypatch, ["--xdp", "-em"])
    lines = out.splitlines()
    assert fold(out)[1] == "77 0 lo:q3 * ino:4242 sk:10"
    assert lines[2:7] == [
        "\trx(entries:2048)",
        "\ttx(entries:1024)",
        "\tumem(id:5,size:1048576,num_pages:256,chunk_size:4096,headroom:0,ifindex:1,qid:3,zc:1,refs:2)",
        "\tfr(entries:4096)",
        "\tcr(entries:512)",
    ]
    assert lines[7].startswith(
        "\tstats(rx dropped:1,rx invalid:2,rx queue full:3,rx fill ring empty:4,"
        "tx invalid:5,tx ring empty:6) skmem:(r77,rb2,t3,tb4,f5,w6,o7,bl8,d9)"
    )
    assert fold(out)[8].startswith("77 0 * * ino:4242 sk:10 skmem:(")


def test_xdp_oneline_tumem(capsysbinary, monkeypatch):
    """With -O the umem block reads `` tumem(`` (ss's stray ``t``)."""
    monkeypatch.setattr(xdpsock, "diag_dump", replies(xdp_msg()))
    _, out, _ = run(capsysbinary, monkeypatch, ["--xdp", "-eO"])
    assert " rx(entries:2048) tx(entries:1024) tumem(id:5," in out
    assert "refs:2) fr(entries:4096) cr(entries:512) stats(rx dropped:1," in out


def test_xdp_filter_dev_and_queue(capsysbinary, monkeypatch):
    monkeypatch.setattr(xdpsock, "diag_dump", replies(xdp_msg(1, 3), xdp_msg(0, 0)))
    _, out, _ = run(capsysbinary, monkeypatch, ["--xdp", "sport", "=", ":3"])
    assert len(out.splitlines()) == 2 and "lo:q3" in out


# --- quirks of the dumps a live kernel does not show ------------------------------------------
def packet_msg(stype, num, ino, ifindex=0, meminfo=True):
    body = abi.PACKET_DIAG_MSG.pack(abi.AF_PACKET, stype, num, ino, 1, 0)
    body += attr(abi.PACKET_DIAG_INFO, abi.PACKET_DIAG_INFO_S.pack(ifindex, 2, 0, 5, 0, 0x1F))
    if meminfo:
        body += attr(abi.PACKET_DIAG_MEMINFO, struct.pack("=7I", 100, 2, 3, 4, 5, 6, 7))
    body += attr(abi.PACKET_DIAG_FANOUT, struct.pack("=I", 9 | (0x77 << 16)))
    body += attr(abi.PACKET_DIAG_TX_RING, abi.PACKET_DIAG_RING_S.pack(1, 2, 3, 4, 5, 6, 0x1F))
    return body


def test_packet_missing_meminfo_falls_back_to_proc(capsysbinary, monkeypatch, tmp_path):
    """A reply without PACKET_DIAG_MEMINFO abandons the dump for /proc/net/packet; the
    rows already printed stay (so a socket can be listed twice)."""
    monkeypatch.setattr(
        packetsock,
        "diag_dump",
        replies(packet_msg(3, 3, 10), packet_msg(2, 0x800, 11, meminfo=False)),
    )
    proc = tmp_path / "packet"
    proc.write_text(
        "sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n"
        "00000000833e74c8 3      3    0003   1     1 19992  0      20\n"
        "00000000833e74c9 3      2    0806   1     1 0      1000   21\n"
    )
    monkeypatch.setattr(packetsock, "proc_path", lambda name, var=None, env=None: str(proc))
    _, out, _ = run(capsysbinary, monkeypatch, ["-0", "-eO"])
    assert fold(out)[1:] == [
        "p_raw 100 0 *:* * ino:10 sk:1 ver:2 cpy_thresh:5"
        " flags( running auxdata origdev vnethdr loss ) ring_tx(blk_size:1,blk_nr:2,frm_size:3,"
        "frm_nr:4,tmo:5,features:0x1f) fanout(id:9,type:0x77)",
        "p_raw 19992 0 *:lo * ino:20 sk:0",
        "p_dgr 0 0 arp:lo * uid:1000 ino:21 sk:0",
    ]


def test_packet_details_flags_rings_fanout_short_meminfo(capsysbinary, monkeypatch):
    monkeypatch.setattr(packetsock, "diag_dump", replies(packet_msg(2, 0x88CC, 10)))
    _, out, _ = run(capsysbinary, monkeypatch, ["-0", "-emn"])
    assert fold(out)[1] == "p_dgr 100 0 [35020]:* * ino:10 sk:1"
    assert out.splitlines()[2:] == [
        "\tver:2 cpy_thresh:5 flags( running auxdata origdev vnethdr loss )",
        "\tring_tx(blk_size:1,blk_nr:2,frm_size:3,frm_nr:4,tmo:5,features:0x1f)",
        "\tfanout(id:9,type:0x77) skmem:(r100,rb2,t3,tb4,f5,w6,o7)",
    ]
    monkeypatch.setattr(packetsock, "diag_dump", replies(packet_msg(2, 0x88CC, 10)))
    _, out, _ = run(capsysbinary, monkeypatch, ["-0"])
    assert "LLDP:*" in out


def test_packet_netlink_path_ignores_type(capsysbinary, monkeypatch):
    """-A packet_raw still lists dgram sockets when they come from sock_diag."""
    monkeypatch.setattr(packetsock, "diag_dump", replies(packet_msg(2, 0x800, 10)))
    _, out, _ = run(capsysbinary, monkeypatch, ["-A", "packet_raw", "-a"])
    assert "ip:*" in out


def test_unix_abstract_nuls_and_first_attribute_wins(capsysbinary, monkeypatch):
    name = b"\0ab\0c\0"
    body = abi.UNIX_DIAG_MSG.pack(abi.AF_UNIX, 2, 7, 55, 0, 0)
    body += attr(abi.UNIX_DIAG_NAME, name) + attr(abi.UNIX_DIAG_NAME, b"/second")
    body += attr(abi.UNIX_DIAG_PEER, struct.pack("=I", 0xFFFFFFFE))
    path = abi.UNIX_DIAG_MSG.pack(abi.AF_UNIX, 1, 1, 56, 0, 0) + attr(
        abi.UNIX_DIAG_NAME, b"/p\0junk"
    )
    monkeypatch.setattr(unixsock, "diag_dump", replies(body, path))
    _, out, _ = run(capsysbinary, monkeypatch, ["-xa"])
    assert fold(out)[1:] == [
        "u_dgr UNCONN 0 0 @ab@c@ 55 * 4294967294",
        "u_str ESTAB 0 0 /p 56 * 0",
    ]


def test_netlink_details_need_process_column(capsysbinary, monkeypatch):
    body = abi.NETLINK_DIAG_MSG.pack(abi.AF_NETLINK, 3, 0, 1, 0, 77, 5, 99, 0, 0)
    body += attr(abi.NETLINK_DIAG_GROUPS, struct.pack("=Q", 0x100000011))
    msgs = replies(body)
    monkeypatch.setattr(nlsock, "diag_dump", msgs)
    _, out, _ = run(capsysbinary, monkeypatch, ["-A", "netlink", "-aem"])
    assert fold(out)[1] == "UNCONN 0 0 rtnl:kernel 5:77"
    assert out.splitlines()[1].endswith("5:77")
    monkeypatch.setattr(nlsock, "diag_dump", msgs)
    _, out, _ = run(capsysbinary, monkeypatch, ["-A", "netlink", "-aemp"])
    # connected: dst_group:dst_portid; -m without meminfo still writes its TAB
    assert out.splitlines()[1].endswith("5:77   sk=0 cb=0 groups=0x00000011\t")


def test_netlink_proto_names_file(monkeypatch, tmp_path):
    f = tmp_path / "nl_protos"
    f.write_bytes(b"# c\n  0x10 generic\n4 diag # trailing\n300 big\n\n")
    monkeypatch.setattr(nlsock, "NL_PROTOS_FILES", (str(f), "/nonexistent"))
    names = nlsock._Names(lambda m: None)
    assert (names.get(16), names.get(4), names.get(0), names.get(17)) == (
        "generic",
        "diag",
        "rtnl",
        "17",
    )
    bad = tmp_path / "bad"
    bad.write_bytes(b"1 one\nxx yy\n2 two\n")
    msgs: list[str] = []
    monkeypatch.setattr(nlsock, "NL_PROTOS_FILES", (str(bad), str(f)))
    names = nlsock._Names(msgs.append)
    assert (names.get(1), names.get(2), names.get(16)) == ("one", "usersock", "genl")
    assert msgs == [f"Database {bad} is corrupted at xx yy\n"]
    monkeypatch.setattr(nlsock, "NL_PROTOS_FILES", (str(tmp_path / "none"), str(f)))
    assert nlsock._Names(msgs.append).get(16) == "generic"


@pytest.mark.parametrize(
    ("stat", "want"),
    [
        (b"123 (bash) S 1", "bash/123"),
        (b"123 (a b)c) S", "a b/123"),
        (b"  123\n(x)", "x/123"),
        (b"123 () S", None),
        (b"x (bash)", None),
    ],
)
def test_netlink_comm(stat, want):
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        (Path(d) / "123").mkdir()
        (Path(d) / "123" / "stat").write_bytes(stat)
        assert nlsock.comm_of(123, {"PROC_ROOT": d}) == want


def test_netlink_comm_path_truncated_to_63_bytes(tmp_path):
    """netlink_show_one builds the path in a 64-byte buffer: a long PROC_ROOT loses it."""
    root = tmp_path / ("d" * (60 - len(str(tmp_path))))
    (root / "123").mkdir(parents=True)
    (root / "123" / "stat").write_bytes(b"123 (bash) S")
    assert nlsock.comm_of(123, {"PROC_ROOT": str(root)}) is None
