"""The hardening cases (issue 12): damaged dumps, hostile environments, option order.

Shared by ``tests/tools/record_hardening.py`` (which runs upstream ss 7.1 on each case
and writes ``tests/data/hardening.json``) and ``tests/test_hardening.py`` (which runs
sockscope on the same case and compares). Every input is built here, deterministically,
so both sides see the same bytes.

A case is a dict:

* ``id``: its name;
* ``argv``: the arguments; ``{dir}`` is replaced by the case's scratch directory;
* ``env``: extra environment (``{dir}`` replaced too);
* ``files``: path under the scratch directory -> name of a generator in ``GENERATORS``;
* ``links``: path under the scratch directory -> symlink target;
* ``limit``: compare only the first ``limit`` bytes of stdout (as a digest).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthdump as sd

Case = dict[str, object]

_HDR = struct.Struct("=IHHII")


def _msg(length: int, mtype: int, body: bytes) -> bytes:
    return _HDR.pack(length, mtype, sd.NLM_F_MULTI, 123456, 0) + body


def _rows(n: int = 3) -> bytes:
    return b"".join(
        sd.record(socket.AF_INET, 1, "127.0.0.1", 40000 + i, "127.0.0.2", 80, 1000 + i, 7 + i)
        for i in range(n)
    )


def _with_fields(**fields: int) -> bytes:
    """One record with some inet_diag_msg fields overwritten (offsets in the body)."""
    rec = bytearray(sd.record(socket.AF_INET, 1, "127.0.0.1", 5000, "127.0.0.2", 80, 99, 1))
    offsets = {"family": 16, "state": 17, "timer": 18, "retrans": 19}
    for name, value in fields.items():
        rec[offsets[name]] = value
    return bytes(rec)


#: states 14..255 for which ss 7.1 prints a row (it crashes on the others: 35, 39, ...)
_STATES_NO_CRASH = [st for st in range(14, 256)
                    if st not in (35, 39, 43, 47, 51, 55, 59, 63, 67, 71, 75, 79, 83, 87, 91,
                                  95, 99, 103, 107, 111, 115, 119, 123, 127, 129, 131, 133, 135,
                                  137, 139, 143, 145, 147, 149, 151, 155, 159, 163, 167, 169, 171,
                                  175, 179, 183, 187, 191, 195, 199, 203, 207, 211, 215, 217, 219,
                                  248, 250, 252, 254)]  # fmt: skip


def _error(code: int, length: int = 36) -> bytes:
    return _msg(length, 2, struct.pack("=i", code) + _HDR.pack(20, 20, 0, 0, 0))[:length]


def _with_attrs(attrs: bytes, msg_len: int | None = None, v6: bool = False) -> bytes:
    rec = (sd.record(socket.AF_INET6, 10, "::1", 5001, "::", 0, 98, 2) if v6 else
           sd.record(socket.AF_INET, 1, "127.0.0.1", 5000, "127.0.0.2", 80, 99, 1))  # fmt: skip
    body = rec[16:] + attrs
    length = 16 + len(body) if msg_len is None else msg_len
    return _msg(length, sd.SOCK_DIAG_BY_FAMILY, body)


def _rta(rtype: int, payload: bytes, rta_len: int | None = None) -> bytes:
    n = 4 + len(payload) if rta_len is None else rta_len
    raw = struct.pack("=HH", n, rtype) + payload
    return raw + b"\0" * (-len(raw) % 4)


GENERATORS: dict[str, Callable[[], bytes]] = {
    "rows": lambda: _rows() + sd.done(),
    "two-rows": lambda: _rows(2) + sd.done(),
    "family-0": lambda: _rows(1) + _with_fields(family=0) + sd.done(),
    "family-99": lambda: _with_fields(family=99) + sd.done(),
    "family-1": lambda: _with_fields(family=1) + _rows(1) + sd.done(),
    "family-7": lambda: _with_fields(family=7) + sd.done(),
    "family-17": lambda: _with_fields(family=17) + sd.done(),
    "family-28": lambda: _with_fields(family=28) + sd.done(),
    "state-255": lambda: _rows(1) + _with_fields(state=255) + sd.done(),
    # every state past sstate_name[] where ss 7.1 does not crash (see printer.py)
    "states-past": lambda: b"".join(_with_fields(state=st) for st in _STATES_NO_CRASH) + sd.done(),
    "state-12": lambda: _with_fields(state=12) + sd.done(),
    "state-0": lambda: _with_fields(state=0) + sd.done(),
    "timer-9": lambda: _with_fields(timer=9) + sd.done(),
    "error-intmin": lambda: _rows(1) + _error(-(2**31)),
    "error-enoent": lambda: _error(-2),
    "error-positive": lambda: _error(5),
    "error-zero": lambda: _error(0),
    "error-truncated": lambda: _rows(1) + _error(-2, 24),
    "len-4": lambda: _msg(4, 20, b"\0" * 100),
    "len-beyond": lambda: _rows(1) + _msg(0x100000, 20, b"\0" * 200),
    "len-short": lambda: _msg(40, 20, b"\0" * 24) + sd.done(),
    "header-only": lambda: _HDR.pack(16, 20, 0, 0, 0),
    "odd-bytes": lambda: _rows(1)[:-3],
    "attr-short": lambda: _with_attrs(_rta(2, b"\1")) + sd.done(),  # INFO of 1 byte
    "attr-lying": lambda: _with_attrs(_rta(4, b"cubic\0\0\0", 200)) + sd.done(),
    "attr-zero-len": lambda: _with_attrs(struct.pack("=HH", 0, 4) + b"\0" * 8) + sd.done(),
    "attr-deficit": lambda: _with_attrs(_rta(4, b"reno\0")[:6]) + sd.done(),
    # a 16-byte SKMEMINFO and a CONG without NUL, last in the message: ss reads through
    "attr-skmem-short": lambda: (
        _rows(2)
        + _with_attrs(_rta(4, b"abcdefghijklmnopqrstuvwxyz") + _rta(1, bytes(range(40, 96))))
        + _with_attrs(_rta(4, b"cub") + _rta(7, bytes(range(1, 17))))
        + sd.done()
    ),
    # INET_DIAG_ULP_INFO (NLA_F_NESTED set or not) whose nested attributes lie: one more
    # "!!!Deficit" from tcp_show_info's nested parses (-i, -m), for ULP, TLS and MPTCP
    "attr-ulp-deficit": lambda: (
        _with_attrs(_rta(19, struct.pack("=HH", 0xC12A, 1) + b"\0" * 8))
        + _with_attrs(_rta(0x8013 & 0xFFFF, struct.pack("=HH", 0xE958, 1)))
        + _with_attrs(_rta(19, _rta(2, struct.pack("=HH", 200, 1)) + _rta(3, b"\5\0\1\0\0")))
        + sd.done()
    ),
    # parse_diag_msg reads the mark and cgroup id by their exact type, inet_show_sock
    # masks NLA_F_NESTED: a flagged MARK is no mark; INET_DIAG_PROTOCOL (flagged or not)
    # makes the row SCTP (timer T3_RTX, sctp_show_info) or UDP (no -i block); an empty
    # one reads the byte after it (stale bytes of a longer message before)
    "attr-flags-proto": lambda: (
        _with_attrs(_rta(0x800F, struct.pack("=I", 0x50004)) + _rta(15, struct.pack("=I", 7)))
        + _with_attrs(_rta(0x800F, struct.pack("=I", 0x50004)) + _rta(0x8015, b"\1" * 8))
        + _with_attrs(_rta(10, b"\x84") + _rta(2, b"\0" * 16))
        + _with_attrs(_rta(0x800A, b"\x11") + _rta(1, b"\2" * 16))
        + _with_attrs(_rta(12, struct.pack("=I", 0x1284)) + _rta(2, b"\0" * 232))
        + _with_attrs(_rta(0x800A, b""))
        + sd.done()
    ),
    "msg-len-lies": lambda: _with_attrs(b"", 40) + b"\0" * 48 + sd.done(),
    # any idiag_family with the Netid column shown: sock_state_print switches on the family
    # (u_dgr, nl, p_dgr/p_raw, ti_*, v_*, xdp, unknown), the protocol (6) as the type
    "families-netid": lambda: (
        b"".join(_with_fields(family=f) for f in (0, 1, 16, 17, 30, 40, 44, 99)) + sd.done()
    ),
    # SCTP LOCALS/PEERS shorter than a sockaddr_storage: read through into the bytes after
    "attr-sctp-short-addrs": lambda: (
        _with_attrs(
            _rta(10, b"\x84")
            + _rta(13, b"\2\0")
            + _rta(4, b"cubic\0")
            + _rta(7, struct.pack("=9I", *range(9)))
        )
        + _with_attrs(
            _rta(10, b"\x84")
            + _rta(12, struct.pack("=HH4s", 2, 0, b"\x7f\0\0\1") + b"\0" * 120 + b"\x0a\0")
            + _rta(5, b"\x10")
            + _rta(8, b"\1")
            + _rta(15, b"\x7f\0\0\2")
        )
        + sd.done()
    ),
    # a cgroup id of 0: get_cgroup2_path's "Invalid cgroup2 ID" (with --cgroup only: -e
    # prints no cgroup for id 0)
    "attr-cgroup-zero": lambda: _with_attrs(_rta(21, b"\0" * 8)) + _rows(1) + sd.done(),
    # NLA_F_NET_BYTEORDER (0x4000) is not masked off by inet_show_sock (NLA_F_NESTED only):
    # a flagged attribute is of no known type, and an unflagged one after it is the first
    "attr-byteorder": lambda: (
        _with_attrs(
            _rta(0x400B, b"\1")
            + _rta(0x4005, b"\x10")
            + _rta(5, b"\x20")
            + _rta(0x4011, struct.pack("=I", 9))
            + _rta(0x4008, b"\3"),
            v6=True,
        )
        + _with_attrs(
            _rta(0x4004, b"bbr\0")
            + _rta(4, b"cubic\0")
            + _rta(0x4009, b"\1" * 16)
            + _rta(0x4007, struct.pack("=9I", *range(9, 18)))
            + _rta(7, struct.pack("=9I", *range(9)))
            + _rta(0x4002, b"\xff" * 232)
        )
        + _with_attrs(
            _rta(0x4016, b"\xff\xff")
            + _rta(0x4012, b"\xff" * 100)
            + _rta(0x400A, b"\x84")
            + _rta(0x4013, _rta(1, b"tls\0"))
            + _rta(0x4001, struct.pack("=4I", 1, 2, 3, 4))
        )
        + _with_attrs(_rta(0x400B, b"\xff") + _rta(0x4006, b"\x08"), v6=True)
        + sd.done()
    ),
}


PROC_NET_FILES = ("tcp", "tcp6", "udp", "udp6", "raw", "raw6", "unix", "packet", "netlink",
                  "sockstat", "sockstat6", "snmp")  # fmt: skip


def _nest(n: int, leaf: list[str]) -> list[str]:
    return ["("] * n + leaf + [")"] * n


def _filter_lines(n: int) -> bytes:
    return b"".join(b"sport = :%d or\n" % (i + 1) for i in range(n)) + b"autobound\n"


GENERATORS["filter-1000-lines"] = lambda: _filter_lines(1000)
GENERATORS["filter-nested-9995"] = lambda: "\n".join(_nest(9995, ["dport", ":80"])).encode()
GENERATORS["filter-nested-9996"] = lambda: "\n".join(_nest(9996, ["dport", ":80"])).encode()
_LEAVES = ["sport", "=", ":40001"]
_OR_1000 = " or ".join(f"sport = :{40000 + i}" for i in range(0, 2000, 2)).split()
_AND_OR = " ".join(
    f"{'and' if i % 3 else 'or'} {'!' if i % 5 == 0 else ''} dport != :{i}" for i in range(3000)
).split()[1:]


# /proc trees where sockscope differed from ss 7.1 before tcp_show_line, dgram_show_line
# and the packet/netlink/unix readers were ported over ss's line buffer and glibc's sscanf
# (kept by ``tests/fuzz/campaign.py proc --keep``; see QUIRKS.md)
#: the /proc files of the defect 7 cases, by name (GENERATORS holds the dumps)
PROC_FILES: dict[str, Callable[[], bytes]] = {}
_TREES = json.loads((Path(__file__).resolve().parent.parent / "data/proc_trees.json").read_text())
for _name, _tree in _TREES.items():
    for _rel, _text in _tree["files"].items():
        PROC_FILES[f"{_name}:{_rel}"] = lambda text=_text: text.encode("latin-1")


_TCP_HEAD = (b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
             b"   uid  timeout inode\n")  # fmt: skip
_L4 = (b"   0: 0100007F:0016 0100007F:C350 01 00000002:00000003 02:000000FA 00000001  1000"
       b"        0 4242 1 00000000DEADBEEF 20 4 30 10 -1 some opt\n")  # fmt: skip
_L6 = (b"   0: 00000000000000000000000001000000:0016 00000000000000000000000001000000:C351 0A"
       b" 00000000:00000000 00:00000000 00000000     0        0 4243 1 0 20 4 30 10 -1\n")  # fmt: skip
#: one damaged line after a whole one, per kind of damage (defect 7)
_PROC_LINES = {
    "truncated-after-ports": b"   1: 0100007F:0017 0100007F:0050\n",
    "truncated-in-data": b"   1: 0100007F:0017 0100007F:0050 0A 0000\n",
    "truncated-in-address": b"   1: 0100007F:00\n",
    "blanks-and-tabs": b"   1:  0100007F:0017 0100007F:0050\t0A  00000000:00000000\t00:00000000 00000000"
    b"     0        0 77 1 0 20 4 30 10 -1\n",
    "uid-minus-1": b"   1: 0100007F:0017 0100007F:0050 0A 00000000:00000000 00:00000000 00000000"
    b"    -1        0 77 1 0 20 4 30 10 -1\n",
    "huge-numbers": b"   1: 0100007F:0017 0100007F:0050 01 FFFFFFFFFFFF:99999999999 01:FFFFFFFF"
    b" 7FFFFFFF 99999999999999999999 18446744073709551616 4294967296 -1 FFFFFFFFFFFFFFFFFF"
    b" 2147483648 -2147483649 -3 4294967295 -1\n",
    "negative-numbers": b"   1: 0100007F:0017 0100007F:0050 01 -1:-2 01:-3 -4 -5 -6 -7 -8 -9 -10 -11"
    b" -12 -13 -14\n",
    "missing-fields": b"   1: 0100007F:0017 0100007F:0050 01 00000000:00000000 00:00000000 00000000"
    b"     0        0 77 1 0\n",
    "not-hex": b"   1: 0100007G:0x17 01g0007F:zz50 0x0A 0000000g:00000000 00:00000000 00000000"
    b"     0        0 77 1 0 20 4 30 10 -1\n",
    "extra-fields": b"   1: 0100007F:0017 0100007F:0050 0A 00000000:00000000 00:00000000 00000000"
    b"     0        0 77 1 0 20 4 30 10 -1 extra 1 2 3\n",
    "state-far": b"   1: 0100007F:0017 0100007F:0050 0X865 0:0 0:0 0 0 0 77\n"
    b"   2: 0100007F:0018 0100007F:0050 -8 0:0 0:0 0 0 0 78\n"
    b"   3: 0100007F:0019 0100007F:0050 0X101 0:0 0:0 0 0 0 79\n"
    b"   4: 0100007F:001A 0100007F:0050 0X169 0:0 0:0 0 0 0 80\n",
    "state-second-char": b"   1: 0100007F:0017 0100007F:0050 1x 0:0 0:0 0 0 0 77\n"
    b"   2: 0100007F:0018 0100007F:0050 0\xc1 0:0 0:0 0 0 0 78\n",
    "port-past-16-bits": b"   1: 0100007F:10016 0100007F:0050 0A 0:0 0:0 0 0 0 77\n",
    "v6-33-digits": b"   1: 000000000000000000000000010000001:0016 0100007F:0050 0A 0:0 0:0 0 0 0 77\n",
    "no-colon": b"   1  0100007F 0016\n",
    "empty-line": b"\n",
    "nul": b"   1: 0100007F:0017 0100007F:0050 0A 0:0\x000:0 0 0 0 77\n",
    "no-newline": b"   1: 0100007F:0017 0100007F:0050 0A 0:0 0:0 0 0 0 77",
}  # fmt: skip
for _kind, _line in _PROC_LINES.items():
    PROC_FILES[f"proc-line-{_kind}"] = lambda line=_line: _TCP_HEAD + _L4 + line
PROC_FILES["proc-tcp6"] = lambda: _TCP_HEAD + _L6
PROC_FILES["proc-packet-short"] = lambda: (
    b"sk       RefCnt Type Proto  Iface R Rmem   User   Inode\n"
    b"0000000000000000 3      3    88cc   1     1 4242   1000   1234\n"
    b"FFFF 1\n"
    b"0000000000000000 3      2\n"
)
PROC_FILES["proc-unix-damaged"] = lambda: (
    b"Num       RefCount Protocol Flags    Type St Inode Path\n"
    b"0000000000000000: 00000002 00000000 00010000 0001 01 1000 /tmp/a\n"
    b"0000000000000000: 00000002 00000000 00000000 0002 7F 1001 @x\n"
    b"0000000000000000: 00000002 00000000 00000000 0001 -1 1002\n"
    b"0000000000000000: 00000002\n"
)


def materialize(case: Case, scratch: Path) -> tuple[list[str], dict[str, str]]:
    """Create the case's files under ``scratch``; return its argv and extra environment."""
    for rel, gen in dict(case.get("files", {})).items():  # type: ignore[call-overload]
        path = scratch / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((GENERATORS.get(gen) or PROC_FILES[gen])())
    for rel, target in dict(case.get("links", {})).items():  # type: ignore[call-overload]
        path = scratch / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
    for rel in list(case.get("dirs", [])):  # type: ignore[call-overload]
        (scratch / rel).mkdir(parents=True, exist_ok=True)
    subst = str(scratch)
    argv = [a.replace("{dir}", subst) for a in case["argv"]]  # type: ignore[attr-defined]
    env = {k: v.replace("{dir}", subst) for k, v in dict(case.get("env", {})).items()}  # type: ignore[call-overload]
    return argv, env


def _dump_case(name: str, argv: list[str] | None = None, **extra: object) -> Case:
    return {
        "id": f"tcpdiag-{name}" + (" " + " ".join(argv) if argv else ""),
        "argv": argv or ["-tan"],
        "env": {"TCPDIAG_FILE": "{dir}/dump"},
        "files": {"dump": name},
        **extra,
    }  # extra may replace the id (long argv) and the files


CASES: list[Case] = [
    # defect 1: COLUMNS with C int semantics, streamed
    *(
        {
            "id": f"columns-{value}",
            "argv": ["-tan"],
            "env": {"COLUMNS": value, "TCPDIAG_FILE": "{dir}/dump"},
            "files": {"dump": "two-rows"},
            "limit": 1 << 26,
        }
        for value in (
            "99999999", "2147483648", "99999999999999999999", "-2147483649", "4294967376",
            "1000000", "-1", " 90x", "0x50", "1", "+00000000000000000000000000080",
        )
    ),
    # defect 2 and 13: TCPDIAG_FILE that is not a dump
    {"id": "tcpdiag-dev-zero", "argv": ["-tan"], "env": {"TCPDIAG_FILE": "/dev/zero"}},
    {"id": "tcpdiag-directory", "argv": ["-tan"], "env": {"TCPDIAG_FILE": "{dir}"}},
    {"id": "tcpdiag-missing", "argv": ["-tan"], "env": {"TCPDIAG_FILE": "{dir}/none"}},
    {"id": "tcpdiag-dev-null", "argv": ["-tan"], "env": {"TCPDIAG_FILE": "/dev/null"}},
    # defect 2: a PROC_ROOT whose files never end
    *(
        {
            "id": f"proc-dev-zero {' '.join(argv)}",
            "argv": argv,
            "env": {"PROC_ROOT": "{dir}/proc"},
            "links": {f"proc/net/{name}": "/dev/zero" for name in PROC_NET_FILES},
            "limit": 100000,
        }
        for argv in (["-tan"], ["-uan"], ["-wan"], ["-0a"], ["-A", "netlink"], ["-xa"])
    ),
    # defect 3: long and deep filters (evaluated in user space over a recorded dump)
    *(
        _dump_case("rows", ["-tan", *words], id=f"filter-{name}")
        for name, words in (
            ("nested-9995", _nest(9995, _LEAVES)),
            ("nested-9996", _nest(9996, _LEAVES)),
            ("not-9995", ["!"] * 9995 + _LEAVES),
            ("not-9996", ["!"] * 9996 + _LEAVES),
            ("not-9997-autobound", ["!"] * 9997 + ["autobound"]),
            ("not-1000", ["!"] * 1000 + _LEAVES),
            ("or-then-nested-9993", ["autobound", "or", *_nest(9993, _LEAVES)]),
            ("or-then-nested-9994", ["autobound", "or", *_nest(9994, _LEAVES)]),
            ("or-1000", _OR_1000),
            ("and-or-3000", _AND_OR),
            ("nested-500-bad", _nest(500, ["sport", "=", ":bogus"])),
            ("nested-9999-bad", ["("] * 9999 + ["sport", "=", ":bogus"]),
            ("nested-500-unclosed", ["("] * 500 + _LEAVES),
        )
    ),
    _dump_case("rows", ["-tan", "-F", "{dir}/filter"], id="filter-file-1000-lines",
               files={"dump": "rows", "filter": "filter-1000-lines"}),
    _dump_case("rows", ["-tan", "-F", "{dir}/filter"], id="filter-file-nested-9995",
               files={"dump": "rows", "filter": "filter-nested-9995"}),
    _dump_case("rows", ["-tan", "-F", "{dir}/filter"], id="filter-file-nested-9996",
               files={"dump": "rows", "filter": "filter-nested-9996"}),
    # defect 12: options act in getopt order, so a bad option after -V/-h/... is not seen
    *(
        {"id": "options " + " ".join(argv), "argv": argv}
        for argv in (
            ["-V", "-1"], ["-h", "--bogus"], ["-f", "help", "-1"], ["-Z", "-1"],
            ["-F", "/nonexistent", "-1"], ["-N", "nosuchns", "-1"], ["--bpf-map-id=x", "-1"],
            ["-A", "foo", "--bogus"], ["-tn", "fwmark", "-1"], ["-tn", "sport", "=", "-1"],
            ["-V", "--fam"], ["-v", "--bogus=1"], ["-f", "bogus", "-V"], ["-1", "-V"],
            ["-F", "/dev/null", "-F", "/dev/null", "-q"], ["-tV", "-q"], ["-Vq"], ["-qV"],
            ["--bpf-maps", "--bpf-map-id=3", "-q"], ["-f", "help", "--bogus"],
            ["-N", "nosuchns", "--fam"], ["-A", "tcp,bogus", "-x", "-1"], ["-z", "-q"],
            ["-h", "-D"], ["-D"], ["-V", "-f"], ["state", "bogus", "-1"], ["-t", "-Q", "-?"],
            # defect 9: bytes that are not UTF-8, and multibyte characters, echoed as bytes
            ["-é"], ["-t\udcff"], ["-f", "\udcffx"], ["-A", "tcp,\udcfe"], ["state", "bogus\n"],
            ["-tn", "src", "\udcff"], ["-tn", "dev", "\udcffé"], ["-tn", "sport", ":é"],
            ["--\udcff"], ["--fam=\udcff"], ["-N", "\udcff"], ["-F", "/\udcff"],
            ["exclude", "\udcff"], ["-tn", "fwmark", "\udcff"],
            # an empty -D name is fopen(""), not stdout (attack4)
            ["-tan", "-D", ""],
        )
    ),
    # defects 5 and 6: stdout closed or full (ss never checks its writes: exit 0)
    *(
        {
            "id": f"stdout{redirect} {' '.join(argv)}",
            "argv": argv,
            "env": {"TCPDIAG_FILE": "{dir}/dump"},
            "files": {"dump": "rows"},
            "redirect": redirect,
        }
        for redirect in (">&-", ">/dev/full")
        for argv in (["-tan"], ["-V"], ["-h"], ["-tan", "-q"], ["-f", "bogus"], ["-tane"])
    ),
    # stderr closed or full: ss never checks its fprintf()s either (same output, status)
    *(
        {
            "id": f"stderr{redirect} {' '.join(argv)}",
            "argv": argv,
            "env": {"TCPDIAG_FILE": "{dir}/dump"},
            "files": {"dump": "attr-ulp-deficit"},
            "redirect": redirect,
        }
        for redirect in ("2>&-", "2>/dev/full")
        for argv in (["--bogus"], ["-F", "/nonexistent"], ["-N", "nosuchns"], ["state", "bogus"],
                     ["-tani"], ["-A", "foo"], ["-Z", "-1"])
    ),
    # a full stdout before a later error (attack7): ss's printf()s fail silently and it
    # goes on to the error's message and status (sockscope ended at the failed flush: 0)
    *(
        {
            "id": f"stdout{redirect} {' '.join(argv)}",
            "argv": argv,
            "env": {"TCPDIAG_FILE": "{dir}/dump"},
            "files": {"dump": "rows"},
            "redirect": redirect,
        }
        for redirect in (">/dev/full", ">/dev/full 2>&1")
        for argv in (["-s", "-tan", "bogus"], ["-s", "-t", "state", "bogus"],
                     ["-s", "-t", "sport", "=", ":bogus"], ["-s", "-t", "-D", "/nonexistent/x"],
                     ["-s", "-tn", "dev", "nosuchdev"], ["-s", "-x", "-D", "-"])
    ),
    # stdin closed (attack7): -F - reads the closed descriptor, which fgets() takes for
    # the end of the filter (Python leaves sys.stdin None: it was an AttributeError)
    *(
        {
            "id": f"stdin{redirect} {' '.join(argv)}",
            "argv": argv,
            "env": {"TCPDIAG_FILE": "{dir}/dump"},
            "files": {"dump": "rows"},
            "redirect": redirect,
        }
        for redirect in ("<&-", "<&- >&- 2>&-", "<&- 2>&-")
        for argv in (["-F", "-", "-tan"], ["-tan", "-F", "-x"], ["-F", "-", "-tan", "-F", "-"])
    ),
    # defect 4 and 13: damaged records
    *(_dump_case(name) for name in GENERATORS if name not in ("rows", "two-rows")),
    _dump_case("rows", ["-tane"]),
    _dump_case("family-0", ["-tan", "src", "127.0.0.1"]),
    _dump_case("family-0", ["-tan", "dport", "=", ":80"]),
    _dump_case("state-255", ["-tan", "-o"]),
    _dump_case("timer-9", ["-tano"]),
    _dump_case("attr-short", ["-tani"]),
    _dump_case("attr-lying", ["-tani"]),
    _dump_case("attr-deficit", ["-tani"]),
    _dump_case("rows", ["-tan", "-F", "/proc/self/mem"]),  # fgets: EIO is the end
    _dump_case("attr-skmem-short", ["-tanm"]),
    _dump_case("attr-ulp-deficit", ["-tani"]),
    *(_dump_case("attr-flags-proto", [a]) for a in ("-tanieom", "-tano", "-tani", "-tanm", "-tane")),
    *(_dump_case("attr-byteorder", a) for a in (["-tane"], ["-tanieom"], ["-tanOie"],
                                                ["-tan", "--tos"], ["-tan", "--inet-sockopt"],
                                                ["-tanm"], ["-tani"], ["-tano"])),
    _dump_case("families-netid", ["-tanS"]),
    _dump_case("families-netid", ["-tanSe"]),
    _dump_case("attr-sctp-short-addrs", ["-tanieom"]),
    _dump_case("attr-sctp-short-addrs", ["-tanm"]),
    _dump_case("attr-cgroup-zero", ["-tan", "--cgroup"]),
    _dump_case("attr-cgroup-zero", ["-tane", "--cgroup"]),
    _dump_case("attr-ulp-deficit", ["-tanm"]),
    _dump_case("attr-ulp-deficit", ["-tane"]),
    _dump_case("attr-skmem-short", ["-tani"]),
    _dump_case("attr-skmem-short", ["-tanmiO"]),
    # defect 13: a device name too long for ll_link_get's request (addattr_l's warning)
    *(
        {"id": f"dev-{name}", "argv": argv}
        for name, argv in (
            ("1011", ["-tn", "dev", "x" * 1011]),
            ("1012", ["-tn", "dev", "x" * 1012]),
            ("3000", ["-tn", "dev", "x" * 3000]),
            ("1012-utf8", ["-tn", "dev", "é" * 506]),
            ("lo-or-1500", ["-tn", "dev", "lo", "or", "dev", "y" * 1500]),
            ("link-port-1500", ["-0", "src", "link:*:" + "y" * 1500]),
            ("link-proto-port-1500", ["-0", "dst", "link:ip:" + "y" * 1500]),
            ("if-form-1013", ["-tan", "dev", "if" + "0" * 1010 + "1"]),  # parses, warns
        )
    ),
    # defect 7: one damaged /proc line of each kind (tcp, then as udp and raw lines)
    *(
        {
            "id": f"proc-line-{kind} {' '.join(argv)}",
            "argv": argv,
            "env": {"PROC_ROOT": "{dir}/proc"},
            "files": {"proc/net/tcp": f"proc-line-{kind}", "proc/net/tcp6": "proc-tcp6",
                      "proc/net/udp": f"proc-line-{kind}", "proc/net/udp6": "proc-tcp6",
                      "proc/net/raw": f"proc-line-{kind}"},
        }
        for kind in _PROC_LINES
        for argv in (["-tanoei"], ["-uane"], ["-wa"], ["-ta", "sport", "=", ":23"])
    ),
    *(
        {
            "id": f"proc-{name} {' '.join(argv)}",
            "argv": argv,
            "env": {"PROC_ROOT": "{dir}/proc"},
            "files": {f"proc/net/{table}": f"proc-{name}"},
        }
        for name, table, argvs in (("packet-short", "packet", (["-0ae"], ["-A", "packet_dgram"])),
                                   ("unix-damaged", "unix", (["-xae"], ["-A", "unix_dgram"])))
        for argv in argvs
    ),
    # defect 7: damaged /proc trees (the campaign's cases where sockscope differed)
    *(
        {
            "id": f"{name} {' '.join(tree['argv'])}",
            "argv": tree["argv"],
            "env": tree["env"],
            "files": {rel: f"{name}:{rel}" for rel in tree["files"]},
        }
        for name, tree in _TREES.items()
    ),
]  # fmt: skip


def command(program: list[str], case: Case, argv: list[str]) -> list[str]:
    """The command line of a case: with ``redirect`` (``>/dev/full``, ``>&-``,
    ``2>/dev/full``...) the program runs under sh with its stdout or stderr redirected so."""
    redirect = case.get("redirect")
    if not redirect:
        return [*program, *argv]
    return ["/bin/sh", "-c", f'exec "$0" "$@" {redirect}', *program, *argv]


def case_id(case: Case) -> str:
    return str(case["id"])
