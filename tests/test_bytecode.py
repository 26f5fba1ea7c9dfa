"""inet_diag bytecode (sockscope.bytecode) against upstream ss 7.1 and the kernel.

* The bytes ss 7.1 sends are captured with ``strace -e write=`` inside a private network
  (and mount) namespace and compared with ``Filter.bytecode()`` for the same words.
* A live property test runs random filters through the kernel: the sockets a dump with
  our bytecode returns must be exactly those ``Filter.matches`` accepts in user space.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import ORACLE
from sockscope.kernel import abi
from sockscope.query import hostcond
from sockscope.query.bytecode import compile_bytecode, relocate
from sockscope.query.filter import parse_filter, split_words
from sockscope.query.hostcond import FilterContext
from test_filter import have_tools

SRC = Path(__file__).resolve().parent.parent / "src"
IS_ROOT = os.geteuid() == 0
live = pytest.mark.live
needs_netns = pytest.mark.skipif(
    not (IS_ROOT and have_tools("unshare", "mount")), reason="needs root and unshare"
)
needs_strace = pytest.mark.skipif(
    not (IS_ROOT and have_tools("strace", "unshare") and ORACLE is not None),
    reason="needs root, strace, unshare and the ss 7.1 oracle",
)


def bc(text: str, ctx: FilterContext | None = None) -> bytes | None:
    flt = parse_filter(text, ctx)
    assert flt is not None
    return flt.bytecode()


# --- fixed programs ---------------------------------------------------------------------


def test_captured_example() -> None:
    # ss-internals 2.8: strace of ss 7.1 for `sport = :1001 or dport >= :1000`
    assert bc("sport = :1001 or dport >= :1000") == bytes.fromhex(
        "07101400 00000000 e9030000 00000000 01040c00 04080c00 0000e803"
    )


def test_dev_drops_the_whole_program() -> None:
    assert bc("dev 1") is None
    assert bc("sport = :1 and ! dev 99") is None
    assert bc("( dev 1 ) or sport = :1") is None
    assert bc("sport = :1") is not None


def test_leaf_shapes() -> None:
    assert bc("autobound") == bytes.fromhex("06040800")
    assert bc("fwmark 0x10/0xff") == bytes.fromhex("0a0c1000 10000000 ff000000")
    # 16-bit truncation of range ports; -1 ("*") becomes 65535
    assert bc("sport >= :70000")[4:8] == bytes.fromhex("00007011")
    assert bc("sport >= *")[4:8] == bytes.fromhex("0000ffff")


def test_relocate_only_touches_reject_jumps() -> None:
    code = bytearray(bc("sport = :1 or sport = :2") or b"")
    before = bytes(code)
    relocate(code, len(code), 8)
    # the last condition's "no" (end + 4) moves by 8; the first one (lands on JMP+4) stays
    assert code[:-16] == before[:-16]
    assert code[-16:-12] != before[-16:-12]


def test_compile_rejects_unknown_nodes() -> None:
    with pytest.raises(TypeError):
        compile_bytecode(object())  # type: ignore[arg-type]


# --- ss 7.1 oracle ----------------------------------------------------------------------

_BUFFER = re.compile(r"^ \* (\d+) bytes in buffer (\d+)$")
_HEXLINE = re.compile(r"^ \| [0-9a-f]{5}  ((?:[0-9a-f]{2} {1,2}){1,16})")

_HOSTS = """127.0.0.1 localhost
127.0.0.9 two
127.0.0.1 two
127.0.0.1 mix
::1 mix
::1 six
"""


def _strace_buffers(log: str) -> list[list[bytes]]:
    """The iovecs of every sendmsg in an ``strace -e write=`` log."""
    calls: list[list[bytes]] = []
    current: bytearray | None = None
    for line in log.splitlines():
        if line.startswith("sendmsg("):
            calls.append([])
            current = None
        elif (m := _BUFFER.match(line)) and calls:
            current = bytearray()
            calls[-1].append(current)  # type: ignore[arg-type]
        elif (m := _HEXLINE.match(line)) and current is not None:
            current += bytes.fromhex(m.group(1).replace(" ", ""))
    return [[bytes(b) for b in call] for call in calls]


def _run_in_private_ns(script: str, tmp_path: Path) -> str:
    """Run a shell script with a fresh netns + mount ns whose /etc/hosts is ``_HOSTS``."""
    hosts = tmp_path / "hosts"
    hosts.write_text(_HOSTS)
    body = f"mount --bind {hosts} /etc/hosts && ip link set lo up 2>/dev/null; {script}"
    proc = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", body],
        capture_output=True, text=True, timeout=120, check=False,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


BYTECODE_FILTERS = [
    "sport = :1001 or dport >= :1000",
    "src 127.0.0.1",
    "src 127.1",
    "src 0177.0.0.1/8",
    "dst 10.0.0.0/255.255.0.0",
    "src 127.0.0.1/any",
    "src any",
    "src *",
    "dst [::1]:22",
    "src ::1/128:1003",
    "src [::ffff:127.0.0.1]",
    "src inet:127.0.0.1",
    "dst inet6:::/0",
    "src localhost",
    "dst two",
    "dst mix",
    "src six",
    "sport = :01751",
    "sport = :0x3e9",
    "sport = :-1",
    "sport = :ssh",
    "dport = :4294967297",
    "sport < :70000",
    "sport >= *",
    "sport > :5 and dport < :6",
    "sport != :22",
    "! ( sport = :22 or dport = :22 ) and src 127/8",
    "sport = :1 or sport = :2 and sport = :3",
    "sport = :1 or ( sport = :2 and sport = :3 )",
    "( src 127.0.0.1 or src [::1] ) and ( dport = :80 or dport = :443 ) or autobound",
    "not not sport = :7",
    "autobound",
    "fwmark 5",
    "fwmark 0x10/0xf0",
    "fwmark != 1",
    "dev 1",
    "sport = :1 and ! dev 99",
]


@live
@needs_strace
def test_bytecode_like_oracle(tmp_path: Path) -> None:
    script = []
    for index, text in enumerate(BYTECODE_FILTERS):
        words = " ".join(f"'{w}'" for w in split_words(text))
        log = tmp_path / f"st{index}"
        script.append(
            f"strace -qq -e trace=sendmsg -e write=all -o {log} {ORACLE} -tn {words} >/dev/null"
        )
    ours_py = textwrap.dedent(f"""
        import json
        from sockscope.kernel import abi
        from sockscope.query.filter import parse_filter
        from sockscope.query.hostcond import FilterContext
        out = []
        for text in {BYTECODE_FILTERS!r}:
            flt = parse_filter(text, FilterContext(dbs=1 << abi.TCP_DB))
            code = flt.bytecode()
            out.append(None if code is None else code.hex())
        print(json.dumps(out))
    """)
    script.append(f"{sys.executable} -c {_shell_quote(ours_py)}")
    mine = json.loads(_run_in_private_ns(" && ".join(script), tmp_path))
    for index, text in enumerate(BYTECODE_FILTERS):
        calls = _strace_buffers((tmp_path / f"st{index}").read_text())
        sent = [call[2].hex() for call in calls if len(call) >= 3 and call[1][2:4] == b"\x01\x00"]
        expected = _clear_padding(sent[-1]) if sent else None
        assert mine[index] == expected, text


def _clear_padding(hexcode: str) -> str:
    """Zero the two padding bytes of every hostcond (ss leaves malloc garbage there)."""
    code = bytearray.fromhex(hexcode)
    pos = 0
    while pos < len(code):
        if code[pos] in (abi.INET_DIAG_BC_S_COND, abi.INET_DIAG_BC_D_COND):
            code[pos + 6 : pos + 8] = b"\0\0"
        pos += code[pos + 1]
    return code.hex()


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# --- the kernel agrees with user space ----------------------------------------------------

_NS_HELPER = r"""
import json, os, socket, struct, sys
from sockscope.kernel import abi
from sockscope.query.filter import parse_filter
from sockscope.query.hostcond import FilterContext

HDR = struct.Struct("=IHHII")
REQ = struct.Struct("=BBBBI 2s2s16s16sI8s")
MSG = struct.Struct("=BBBB2s2s16s16sIIIIIIII")

def dump(family, proto, code):
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
    body = REQ.pack(family, proto, 0, 0, 0xFFFFFFFF & ~(1 << 13), b"", b"", b"", b"", 0, b"")
    if code is not None:
        body += struct.pack("=HH", 4 + len(code), abi.INET_DIAG_REQ_BYTECODE) + code
    nl.sendto(HDR.pack(16 + len(body), 20, 0x301, 1, 0) + body, (0, 0))
    out = []
    while True:
        data = nl.recv(65536)
        off = 0
        while off < len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if kind == abi.NLMSG_DONE:
                nl.close()
                return out
            if kind == abi.NLMSG_ERROR:
                raise OSError(-struct.unpack_from("=i", data, off + 16)[0], "dump")
            out.append(record(data, off, length, proto))
            off += (length + 3) & ~3

class Rec:
    __slots__ = ("family", "lport", "rport", "iface", "mark", "cgroup_id", "local_data",
                 "remote_data", "name", "key")

def record(data, off, length, proto):
    f = MSG.unpack_from(data, off + 16)
    r = Rec()
    r.family = f[0]
    alen = 4 if r.family == socket.AF_INET else 16
    r.lport, r.rport = struct.unpack(">H", f[4])[0], struct.unpack(">H", f[5])[0]
    r.local_data, r.remote_data = f[6][:alen], f[7][:alen]
    r.iface, r.mark, r.cgroup_id, r.name = f[8], 0, 0, None
    r.key = (proto, r.family, f[9], f[10])
    a = off + 16 + MSG.size
    while a + 4 <= off + length:
        alen2, atype = struct.unpack_from("=HH", data, a)
        if atype == abi.INET_DIAG_MARK:
            r.mark = struct.unpack_from("=I", data, a + 4)[0]
        elif atype == abi.INET_DIAG_CGROUP_ID:
            r.cgroup_id = struct.unpack_from("=Q", data, a + 4)[0]
        a += (alen2 + 3) & ~3
    return r

keep = []
def tcp(fam, addr, port, mark=0):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if mark:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    if addr is not None:
        s.bind((addr, port))
    keep.append(s)
    return s

for fam, addr, port in ((socket.AF_INET, "127.0.0.1", 1001), (socket.AF_INET6, "::1", 1002),
                        (socket.AF_INET6, "::", 1003), (socket.AF_INET, "127.0.0.2", 1004),
                        (socket.AF_INET, "0.0.0.0", 1005)):
    tcp(fam, addr, port, mark=port - 1000).listen(16)
conns = [(socket.AF_INET, None, 0, ("127.0.0.1", 1001)),
         (socket.AF_INET, "127.0.0.3", 2001, ("127.0.0.1", 1001)),
         (socket.AF_INET6, None, 0, ("::1", 1002)),
         (socket.AF_INET, None, 0, ("127.0.0.1", 1003)),
         (socket.AF_INET6, None, 0, ("::1", 1003)),
         (socket.AF_INET6, "::1", 2002, ("::1", 1002)),
         (socket.AF_INET, "127.0.0.5", 2003, ("127.0.0.2", 1004))]
for i, (fam, addr, port, peer) in enumerate(conns):
    c = tcp(fam, addr, port, mark=0x10 * i)
    c.connect(peer)
for fam, addr, peer in ((socket.AF_INET, ("127.0.0.1", 1006), None),
                        (socket.AF_INET, None, ("127.0.0.1", 1006)),
                        (socket.AF_INET6, ("::1", 1007), ("::1", 1006 + 1))):
    u = socket.socket(fam, socket.SOCK_DGRAM)
    if addr:
        u.bind(addr)
    if peer:
        u.connect(peer)
    keep.append(u)

tables = [(socket.AF_INET, 6), (socket.AF_INET6, 6), (socket.AF_INET, 17), (socket.AF_INET6, 17)]
print("ready", flush=True)
for line in sys.stdin:
    text = json.loads(line)
    try:
        flt = parse_filter(text, FilterContext())
    except Exception as exc:  # e.g. inet: earlier makes a later IPv6 operand invalid
        print(json.dumps({"error": str(exc)}), flush=True)
        continue
    code = flt.bytecode()
    kernel, user = [], []
    for fam, proto in tables:
        kernel += [r.key for r in dump(fam, proto, code)]
        user += [r.key for r in dump(fam, proto, None) if flt.matches(r)]
    print(json.dumps({"code": code and code.hex(), "kernel": sorted(kernel),
                      "user": sorted(user)}), flush=True)
"""

_HOSTS_LIVE = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.5", "127/8", "127.0.0.0/24",
               "127.0.0.0/255.255.255.252", "[::1]", "::1/128", "[::ffff:127.0.0.1]",
               "[::ffff:127.0.0.0/104]", "*", "127.0.0.1:1001", "[::1]:1002", "*:1003",
               "localhost", "inet:127.0.0.1", "0177.0.0.1", "127.1", "[::1/127]:2002"]  # fmt: skip
_PORTS_EQ = [":1001", ":1002", "1003", ":2001", ":2002", ":0", ":65535", ":-1", "*", ":0x3e9",
             ":01751", ":1006", ":1007"]  # fmt: skip
_PORTS_RANGE = [":1001", ":1002", ":1004", ":2000", ":0", ":65535", ":32768", ":1006"]


def _leaf() -> st.SearchStrategy[str]:
    side = st.sampled_from(["src", "dst"])
    port = st.sampled_from(["sport", "dport"])
    return st.one_of(
        st.builds(lambda s, eq, h: f"{s} {eq}{h}", side, st.sampled_from(["", "= "]),
                  st.sampled_from(_HOSTS_LIVE)),
        st.builds(lambda p, op, v: f"{p} {op} {v}", port,
                  st.sampled_from(["=", "!=", "eq", "neq", ""]), st.sampled_from(_PORTS_EQ)),
        st.builds(lambda p, op, v: f"{p} {op} {v}", port,
                  st.sampled_from([">=", "<=", ">", "<", "gt", "le"]),
                  st.sampled_from(_PORTS_RANGE)),
        st.builds(lambda m: f"fwmark {m}", st.sampled_from(["0", "1", "0x10", "0x20/0x30",
                                                          "2/2", "0/0"])),
    )  # fmt: skip


def live_filters() -> st.SearchStrategy[str]:
    return st.recursive(
        _leaf(),
        lambda inner: st.one_of(
            st.builds(lambda a, op, b: f"{a} {op} {b}", inner,
                      st.sampled_from(["and", "or", "&&", "|", ""]), inner),
            st.builds(lambda a: f"! {a}", inner),
            st.builds(lambda a: f"( {a} )", inner),
        ),
        max_leaves=6,
    )  # fmt: skip


@pytest.fixture(scope="module")
def netns_helper(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if not (IS_ROOT and have_tools("unshare", "ip")):
        pytest.skip("needs root, unshare and ip")
    tmp = tmp_path_factory.mktemp("live")
    (tmp / "helper.py").write_text(_NS_HELPER)
    proc = subprocess.Popen(
        ["unshare", "--net", "sh", "-c", f"ip link set lo up && exec {sys.executable} -u "
         f"{tmp / 'helper.py'}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "ready"

    def ask(text: str) -> dict[str, object]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(text) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())  # type: ignore[no-any-return]

    yield ask
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stdout.close()


@live
@needs_netns
@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI must not depend on luck
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=live_filters())
def test_kernel_agrees_with_user_space(netns_helper, text: str) -> None:  # type: ignore[no-untyped-def]
    # An explicit `inet:` operand makes the operands after it AF_INET (ss's family side
    # effect); their port-only conditions then carry AF_INET into the bytecode, and the
    # kernel drops IPv6 sockets that user space keeps: a documented disagreement,
    # pinned in test_documented_disagreements, not a property of the rest.
    assume("inet:" not in text or len(text.split()) <= 3)
    answer = netns_helper(text)
    assume("error" not in answer)
    assert answer["code"] is not None
    assert answer["kernel"] == answer["user"], text


@live
@needs_netns
@pytest.mark.parametrize(
    "text",
    [
        "sport < :70000",  # kernel: < 4464 (16 bits), so the ephemeral ports drop out
        "sport >= *",  # kernel: >= 65535, i.e. nothing
        "src 0.0.0.0/8",  # IPv6 sockets: the raw bits match, the families do not
        # the port condition after `inet:` is AF_INET in the bytecode: IPv6 sockets drop
        "src inet:127.0.0.1 or sport = :1002",
    ],
)
def test_documented_disagreements(netns_helper, text: str) -> None:  # type: ignore[no-untyped-def]
    answer = netns_helper(text)
    kernel = {tuple(k) for k in answer["kernel"]}
    user = {tuple(k) for k in answer["user"]}
    assert kernel < user


@live
@needs_netns
def test_autobound_kernel_also_takes_accepted_sockets(netns_helper) -> None:  # type: ignore[no-untyped-def]
    """Kernel AUTO = "no SOCK_BINDPORT_LOCK": accepted children of a listener have none,
    while user space (port in the ephemeral range) rejects their fixed local port."""
    answer = netns_helper("autobound")
    kernel = {tuple(k) for k in answer["kernel"]}
    user = {tuple(k) for k in answer["user"]}
    assert user < kernel


def test_abi_sizes() -> None:
    assert abi.INET_DIAG_HOSTCOND.size == 8
    assert abi.INET_DIAG_BC_OP.size == 4


def test_multi_address_host_uses_first_address_only() -> None:
    addrs = {abi.AF_INET: [bytes([127, 0, 0, n]) for n in (9, 1, 2)], abi.AF_INET6: []}
    with mock.patch.object(hostcond, "_gethostbyname2", lambda name, fam: addrs[fam]):
        flt = parse_filter("dst two")
    assert flt is not None
    # ss's list: the first answer, then the others in reverse order (remember_he)
    assert [p.data[:4] for p in flt.root.cond.addrs] == [  # type: ignore[attr-defined]
        bytes([127, 0, 0, n]) for n in (9, 2, 1)
    ]
    one = bytes.fromhex("08 10 14 00 02 20 00 00 ff ff ff ff 7f 00 00 09")
    jump = bytes.fromhex("01 04")
    assert flt.bytecode() == (
        one + jump + (56 - 16).to_bytes(2, "little") + one + jump + (56 - 36).to_bytes(2, "little")
        + one
    )  # fmt: skip

    class Sock:
        family, rport = abi.AF_INET, 5
        remote_data = bytes([127, 0, 0, 1])

    assert flt.matches(Sock())  # user space tries every address
