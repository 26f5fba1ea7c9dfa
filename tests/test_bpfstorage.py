"""BPF socket-local storage (``--bpf-maps``, ``--bpf-map-id``): the values ss 7.1 prints.

ss 7.1 (built with libbpf 1.1.2) prints each socket's storage with libbpf's
``btf_dump__dump_type_data``; sockscope's port is :mod:`sockscope.kernel.btf` and
:mod:`sockscope.tables.inet.bpfstorage`. The value types are built by hand in
``tests/bpfstore.py`` (BTF blobs from linux/btf.h's layout: ints, chars, bitfields,
enums, enum64, unions, typedefs, modifiers, pointers, function pointers, arrays of
structs and unions, 2-D and pointer arrays, anonymous and same-named structs, 128-bit
ints, floats). :data:`EXPECTED` is what ss 7.1 printed for each of them, recorded by
``tests/tools/record_bpfstorage.py`` (``ss -tln --bpf-maps`` and ``-tlnO`` per socket),
including libbpf 1.1's sticky character-array flags (case
``chars``). The live test creates the maps with bpf(2) (skipped where that is not
permitted) and compares with ss 7.1 byte for byte when SOCKSCOPE_ORACLE is set, else
with :data:`EXPECTED`.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import netns
from bpfstore import CASES
from conftest import needs_live
from sockscope.kernel import abi, bpf, btf, netlink
from sockscope.tables.inet import bpfstorage, plan

TESTS = Path(__file__).resolve().parent

EXPECTED = {
    "int": (
        "\t\t(int)-42",
        "(int)-42",
    ),
    "chars": (
        "\t\t(struct task){\n\t\t\t.comm = (char[8])[\n\t\t\t\t's',\n\t\t\t\t's',\n\t\t\t\t1,\n\t\t\t\t127,\n\t\t\t\t\t\t\t],\n\t\t\t.pid = (int)7,\n\t\t\t.nums = (int[3])[\n\t\t\t],\n\t\t\t.flag = (unsigned char)\t\t\t.s = (short int)-3,\n\t\t}",
        "(struct task){.comm = (char[8])['s','s',1,127,],.pid = (int)7,.nums = (int[3])[],.flag = (unsigned char).s = (short int)-3,}",
    ),
    "bytes": (
        "\t\t(struct raw){\n\t\t\t.b = (signed char[4])[\n\t\t\t\t'A',\n\t\t\t\t-128,\n\t\t\t\t-1,\n\t\t\t\t9,\n\t\t\t],\n\t\t}",
        "(struct raw){.b = (signed char[4])['A',-128,-1,9,],}",
    ),
    "bits": (
        "\t\t(struct flags){\n\t\t\t.a = (unsigned int)0x5,\n\t\t\t.b = (unsigned int)0x16,\n\t\t\t.m = (enum mode)ON,\n\t\t\t.neg = (enum mode)NEG,\n\t\t\t.u = (union u){\n\t\t\t\t.as_int = (int)-1,\n\t\t\t\t.as_uint = (unsigned int)4294967295,\n\t\t\t},\n\t\t\t.rest = (unsigned int)9,\n\t\t}",
        "(struct flags){.a = (unsigned int)0x5,.b = (unsigned int)0x16,.m = (enum mode)ON,.neg = (enum mode)NEG,.u = (union u){.as_int = (int)-1,.as_uint = (unsigned int)4294967295,},.rest = (unsigned int)9,}",
    ),
    "decl": (
        "\t\t(struct decl){\n\t\t\t.vp = (int *)(nil),\n\t\t\t.pp = (int **)0x1000,\n\t\t\t.grid = (int[2][3])[\n\t\t\t\t[\n\t\t\t\t\t1,\n\t\t\t\t\t2,\n\t\t\t\t\t3,\n\t\t\t\t],\n\t\t\t\t[\n\t\t\t\t\t4,\n\t\t\t\t\t5,\n\t\t\t\t\t6,\n\t\t\t\t],\n\t\t\t],\n\t\t\t.ptrs = (int *[2])[\n\t\t\t\t0xab,\n\t\t\t\t(nil),\n\t\t\t],\n\t\t\t.h = (handle_t)77,\n\t\t\t.anon = (struct){\n\t\t\t\t.z = (int)3,\n\t\t\t},\n\t\t\t.ae = (enum )B,\n\t\t\t.d1 = (struct dup){\n\t\t\t\t.x = (int)8,\n\t\t\t},\n\t\t\t.d2 = (struct dup___2){\n\t\t\t\t.y = (int)9,\n\t\t\t},\n\t\t\t.e = (enum big)HUGE,\n\t\t\t.e2 = (enum big)3ULL,\n\t\t}",
        "(struct decl){.vp = (int *)(nil),.pp = (int **)0x1000,.grid = (int[2][3])[[1,2,3,],[4,5,6,],],.ptrs = (int *[2])[0xab,(nil),],.h = (handle_t)77,.anon = (struct){.z = (int)3,},.ae = (enum )B,.d1 = (struct dup){.x = (int)8,},.d2 = (struct dup___2){.y = (int)9,},.e = (enum big)HUGE,.e2 = (enum big)3ULL,}",
    ),
    "wide": (
        "\t\t(struct wide){\n\t\t\t.small = (unsigned __int128)0x5,\n\t\t\t.large = (unsigned __int128)0x20000000000000001,\n\t\t\t.f = (float)1.500000,\n\t\t\t.d = (double)-0.100000,\n\t\t\t.ld = (long double)7.000000,\n\t\t\t.ok = (_Bool)1,\n\t\t\t.neg = (long long int)-1099511627776,\n\t\t\t.nan = (double)-nan,\n\t\t}",
        "(struct wide){.small = (unsigned __int128)0x5,.large = (unsigned __int128)0x20000000000000001,.f = (float)1.500000,.d = (double)-0.100000,.ld = (long double)7.000000,.ok = (_Bool)1,.neg = (long long int)-1099511627776,.nan = (double)-nan,}",
    ),
    "more": (
        "\t\t(struct more){\n\t\t\t.fn = (int (*)(int a, char *b))0x1234,\n\t\t\t.t = (anon_t){\n\t\t\t\t.x = (int)5,\n\t\t\t},\n\t\t\t.pts = (struct pt[2])[\n\t\t\t\t{\n\t\t\t\t\t.a = 1,\n\t\t\t\t\t.b = 2,\n\t\t\t\t},\n\t\t\t\t{\n\t\t\t\t\t.a = 3,\n\t\t\t\t\t.b = 4,\n\t\t\t\t},\n\t\t\t],\n\t\t\t.ue = (enum ue)4294967295,\n\t\t\t.se = (enum s64e)MINUS,\n\t\t\t.va = (int[2])[\n\t\t\t\t7,\n\t\t\t\t8,\n\t\t\t],\n\t\t\t.pf = (struct opaque *)(nil),\n\t\t\t.ua = (union uu[2])[\n\t\t\t\t{\n\t\t\t\t\t.i = 65,\n\t\t\t\t\t.c = 65,\n\t\t\t\t},\n\t\t\t\t{\n\t\t\t\t\t.i = 66,\n\t\t\t\t\t.c = 66,\n\t\t\t\t},\n\t\t\t],\n\t\t}",
        "(struct more){.fn = (int (*)(int a, char *b))0x1234,.t = (anon_t){.x = (int)5,},.pts = (struct pt[2])[{.a = 1,.b = 2,},{.a = 3,.b = 4,},],.ue = (enum ue)4294967295,.se = (enum s64e)MINUS,.va = (int[2])[7,8,],.pf = (struct opaque *)(nil),.ua = (union uu[2])[{.i = 65,.c = 65,},{.i = 66,.c = 66,},],}",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_value_dump_like_ss71(case: str) -> None:
    blob, tid, value = CASES[case]()
    dump = btf.TypeDump(btf.Btf(blob.blob()))
    # the kernel puts the value 8-aligned in its datagram (nla_reserve_64bit)
    assert dump.dump(tid, value, False, 2, 8) == (EXPECTED[case][0], size_of(dump, tid))
    assert dump.dump(tid, value, True, 0, 8)[0] == EXPECTED[case][1]


def size_of(dump: btf.TypeDump, tid: int) -> int:
    return dump.btf.resolve_size(tid)


def test_unaligned_pointer_is_hex_not_nil() -> None:
    """libbpf prints a pointer it cannot read aligned with 0x%llx (0x0), an aligned
    one with %p ((nil)): btf_dump_ptr_data."""
    b = CASES["int"]()[0]
    p = b.ptr(1)
    dump = btf.TypeDump(btf.Btf(b.blob()))
    assert dump.dump(p, bytes(8), True, 0, 0)[0] == "(int *)(nil)"
    assert dump.dump(p, bytes(8), True, 0, 4)[0] == "(int *)0x0"


def test_unaligned_enum_reads_as_zero() -> None:
    """An enum libbpf cannot read aligned goes through btf_dump_get_bitfield_value with
    a size of 0, whose shifts by 64 the build folds to 0: ss 7.1 printed ``(enum
    big)0ULL`` for case ``decl``'s enum64 members in a whole listing, where that value
    sat 4 bytes off 8 in the datagram."""
    b, tid, value = CASES["decl"]()
    dump = btf.TypeDump(btf.Btf(b.blob()))
    text = dump.dump(tid, value, True, 0, 4)[0]
    assert text.endswith(".e = (enum big)0ULL,.e2 = (enum big)0ULL,}")
    assert ".vp = (int *)0x0," in text


#: case ``more`` as ss 7.1 printed it in a whole listing (tests/bpfstore.py's holder, all
#: maps), where its value sat 4 bytes off 8 in the datagram: the unaligned enum64 reads
#: as 0, and a signed enum value that names no enumerator is printed without its
#: delimiter and newline (libbpf's btf_dump_type_values pastes them onto the unsigned
#: format only)
MORE_UNALIGNED = "\t\t(struct more){\n\t\t\t.fn = (int (*)(int a, char *b))0x1234,\n\t\t\t.t = (anon_t){\n\t\t\t\t.x = (int)5,\n\t\t\t},\n\t\t\t.pts = (struct pt[2])[\n\t\t\t\t{\n\t\t\t\t\t.a = 1,\n\t\t\t\t\t.b = 2,\n\t\t\t\t},\n\t\t\t\t{\n\t\t\t\t\t.a = 3,\n\t\t\t\t\t.b = 4,\n\t\t\t\t},\n\t\t\t],\n\t\t\t.ue = (enum ue)4294967295,\n\t\t\t.se = (enum s64e)0LL\t\t\t.va = (int[2])[\n\t\t\t\t7,\n\t\t\t\t8,\n\t\t\t],\n\t\t\t.pf = (struct opaque *)0x0,\n\t\t\t.ua = (union uu[2])[\n\t\t\t\t{\n\t\t\t\t\t.i = 65,\n\t\t\t\t\t.c = 65,\n\t\t\t\t},\n\t\t\t\t{\n\t\t\t\t\t.i = 66,\n\t\t\t\t\t.c = 66,\n\t\t\t\t},\n\t\t\t],\n\t\t}"


def test_signed_enum_without_a_name_loses_its_delimiter() -> None:
    b, tid, value = CASES["more"]()
    dump = btf.TypeDump(btf.Btf(b.blob()))
    assert dump.dump(tid, value, False, 2, 4)[0] == MORE_UNALIGNED


def test_short_data_is_e2big() -> None:
    """A base type past the end of the data: -E2BIG, after the cast (ss then appends
    ``failed to dump data: -7``)."""
    b, tid, value = CASES["int"]()
    dump = btf.TypeDump(btf.Btf(b.blob()))
    assert dump.dump(tid, value[:2], True, 0, 0) == ("", -7)


def _nest(map_id: int, value: bytes) -> bytes:
    """An INET_DIAG_SK_BPF_STORAGES payload as the kernel builds it (bpf_sk_storage.c:
    SK_DIAG_BPF_STORAGE nest: MAP_ID, then PAD and the 8-aligned MAP_VALUE)."""
    inner = netlink.attr(2, struct.pack("=I", map_id)) + netlink.attr(1, b"")
    inner += netlink.attr(3, value)
    return netlink.attr(1 | abi.NLA_F_NESTED, inner)


def _storages(case: str, map_id: int) -> bpfstorage.Storages:
    b, tid, value = CASES[case]()
    info = bpf.MapInfo(bytes(80))
    info.type, info.id, info.value_size = bpf.MAP_TYPE_SK_STORAGE, map_id, len(value)
    info.btf_value_type_id = tid
    s = bpfstorage.Storages(show_all=True)
    s.maps.append(bpfstorage._Map(map_id, -1, info, btf.TypeDump(btf.Btf(b.blob()))))
    return s


def test_storage_text_multiline_and_oneline() -> None:
    """out_bpf_sk_storage_multiline / _oneline around the value."""
    s = _storages("bits", 12)
    value = CASES["bits"]()[2]
    buf = bytes(8) + _nest(12, value)
    said: list[str] = []
    text = s.text(buf, 8, len(buf), False, said.append)
    assert text == "\n\tmap_id:12 [\n" + EXPECTED["bits"][0] + "\n\t]"
    assert s.text(buf, 8, len(buf), True, said.append) == " map_id:12" + EXPECTED["bits"][1]
    assert said == []


def test_storage_of_wrong_size_is_a_warning() -> None:
    """ss.c out_bpf_sk_storage: ``map_id: %d: invalid value size, expecting %u, got
    %lu`` on stderr, nothing in the row."""
    s = _storages("int", 5)
    buf = _nest(5, b"\1\0\0\0\0\0\0\0")
    said: list[str] = []
    assert s.text(buf, 0, len(buf), False, said.append) == ""
    assert said == ["map_id: 5: invalid value size, expecting 4, got 8"]


def test_storage_of_a_map_that_cannot_be_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """ss.c bpf_map_opts_load_info's message on stderr, then (out_bpf_sk_storage) a
    ``failed to fetch info, skipping`` line in the row; tried again at the next socket."""

    def refuse(_map_id: int) -> int:
        raise OSError(2, "No such file or directory")

    monkeypatch.setattr(bpf, "map_fd_by_id", refuse)
    s = bpfstorage.Storages(show_all=True)
    buf = _nest(9, b"\0\0\0\0")
    said: list[str] = []
    for _ in range(2):
        assert s.text(buf, 0, len(buf), False, said.append) == (
            "\n\tmap_id: 9 failed to fetch info, skipping\n"
        )
    assert said == ["ss: cannot get fd for BPF map ID 9"] * 2


def test_request_nest_follows_the_protocol_attribute() -> None:
    """sockdiag_send: bytecode, INET_DIAG_REQ_PROTOCOL, then the storage nest (empty
    for --bpf-maps, one SK_DIAG_BPF_STORAGE_REQ_MAP_FD per --bpf-map-id map)."""
    req = plan.inet_request(abi.AF_INET, abi.IPPROTO_MPTCP, 1, 0, None, b"")
    tail = netlink.attr(abi.INET_DIAG_REQ_PROTOCOL, abi.IPPROTO_MPTCP.to_bytes(4, "little"))
    tail += netlink.attr(abi.INET_DIAG_REQ_SK_BPF_STORAGES | abi.NLA_F_NESTED, b"")
    assert req.endswith(tail)
    s = _storages("int", 3)
    s.show_all = False
    assert s.nest() == netlink.attr(1, struct.pack("=i", -1))


# --- live ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def held() -> object:
    yield from _holding()


def _holding(*args: str) -> object:
    """A namespace and a holder of sockets with storage (bpfstore.hold)."""
    ns = netns.Netns(f"sockscope-bpf-{__import__('os').getpid()}")
    holder = subprocess.Popen(
        [*ns.enter(), sys.executable, str(TESTS / "bpfstore.py"), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        info = json.loads(holder.stdout.readline() or b'{"error": "holder died"}')
        if "error" in info:
            pytest.skip(f"cannot make socket storage here: {info['error']}")
        yield ns, info
    finally:
        netns.end_holder(holder)
        ns.close()


@needs_live
@pytest.mark.live
@pytest.mark.parametrize("oneline", [False, True], ids=["multiline", "oneline"])
@pytest.mark.parametrize("which", ["all", "one"])
def test_live_storages(held: tuple[netns.Netns, dict[str, list[int]]], backend: str,
                       oneline: bool, which: str) -> None:  # fmt: skip
    ns, info = held
    argv = ["-tlnO" if oneline else "-tln"]
    only = None
    if which == "all":
        argv.append("--bpf-maps")
    else:
        only = "decl"
        argv.append(f"--bpf-map-id={info[only][1]}")
    env = netns.tool_env()
    got = ns.run([*netns.sockscope_cmd(), *argv], env=env)
    assert got.stderr == b""
    assert got.returncode == 0
    from conftest import ORACLE

    if ORACLE is not None:
        want = ns.run([ORACLE, *argv], env=env)
        assert (got.stdout, got.stderr, got.returncode) == (want.stdout, want.stderr, 0)
        return
    # without ss 7.1: each socket alone, as EXPECTED was recorded (alone, the value sits
    # at the offset it had then: pointers and enums are read as they were)
    for case, (port, map_id) in info.items():
        if only is not None and case != only:
            continue
        alone = ns.run([*netns.sockscope_cmd(), *argv, f"sport = :{port}"], env=env)
        text = alone.stdout.decode()
        if oneline:
            assert text.endswith(f" map_id:{map_id}{EXPECTED[case][1]}\n")
        else:
            assert text.endswith(f"\n\tmap_id:{map_id} [\n{EXPECTED[case][0]}\n\t]\n")
    if only is not None:
        assert got.stdout.count(b"map_id:") == 1


@needs_live
@pytest.mark.live
def test_live_large_value(backend: str) -> None:
    """A 40,000-byte value: its message needs a receive buffer larger than 32 KiB (the
    peek of rtnl_recvmsg sizes it), and its text is cut where ss's output field ends
    (65,535 bytes, ss.c buf_update)."""
    for ns, info in _holding("large"):  # type: ignore[attr-defined]
        env = netns.tool_env()
        got = ns.run([*netns.sockscope_cmd(), "-tln", "--bpf-maps"], env=env)
        assert (got.stderr, got.returncode) == (b"", 0)
        from conftest import ORACLE

        if ORACLE is not None:
            assert got.stdout == ns.run([ORACLE, "-tln", "--bpf-maps"], env=env).stdout
        _, _, rest = got.stdout.partition(b"0.0.0.0:*")
        assert rest.startswith(b"\n\tmap_id:%d [\n\t\t(struct big){" % info["large"][1])
        assert len(rest) == 0xFFFF + 1  # the field, then the row's newline
