"""Issue 12: bad input, damaged data and hostile environments, compared with ss 7.1.

The expected values in ``tests/data/hardening.json`` were printed by upstream ss 7.1 for
the cases of ``tests/tools/hardening_cases.py`` (``tests/tools/record_hardening.py``
records them). Cases where ss 7.1 crashes, or prints what it read past the end of one of
its arrays, are pinned by direct tests below and listed in QUIRKS.md. Every sockscope
run here is capped by RLIMIT_AS, so reading or building without bound is a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tools"))

from hardening_cases import CASES, case_id, command, materialize  # noqa: E402

from conftest import ORACLE  # noqa: E402

DATA = {c["id"]: c for c in json.loads((ROOT / "tests/data/hardening.json").read_text())["cases"]}
#: the address-space cap of every run: CPython with sockscope imported needs ~60 MiB
AS_LIMIT = 512 * 1024 * 1024


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def run(
    argv: list[str],
    env: dict[str, str] | None = None,
    limit: int | None = None,
    stdin: int | None = subprocess.DEVNULL,
    timeout: float = 120,
    case: dict[str, object] | None = None,
) -> tuple[int, bytes, bytes, str, int]:
    """Run sockscope under the cap: (status, stdout head, stderr, stdout digest, length)."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
            "PYTHONPATH": str(ROOT / "src"), **(env or {})}  # fmt: skip
    if os.environ.get("SOCKSCOPE_PURE"):  # the backend fixture's choice
        full.setdefault("SOCKSCOPE_PURE", os.environ["SOCKSCOPE_PURE"])
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(
            command([sys.executable, "-m", "sockscope"], case or {}, argv), stdout=subprocess.PIPE, stderr=err,
            stdin=stdin, env=full, preexec_fn=_cap,  # noqa: PLW1509 - no threads here
        )  # fmt: skip
        assert p.stdout is not None
        digest = hashlib.sha256()
        size = 0
        head = b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
                p.kill()
                p.wait()
                p.stdout.close()
                raise subprocess.TimeoutExpired(argv, timeout)
            chunk = p.stdout.read1(1 << 20)
            if not chunk:
                break
            if limit is not None and size + len(chunk) > limit:
                chunk = chunk[: limit - size]
            if size < 20000:
                head += chunk[: 20000 - size]
            digest.update(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
        p.stdout.close()  # past the limit the writer dies of SIGPIPE, as under | head -c
        status = p.wait(timeout)
        err.seek(0)
        return status, head, err.read(), digest.hexdigest(), size


RECORDED = [c for c in CASES if DATA.get(str(c["id"]), {}).get("status") is not None]
#: cases recorded from an earlier build of ss 7.1 at a /proc state far past
#: sstate_name[] whose text the current build prints differently (garbage of a build:
#: render/sstate_far.py keeps only the texts both builds print), with the word that
#: build printed; sockscope prints UNKNOWN there (QUIRKS.md)
FAR_STATE_OF_ONE_BUILD = {
    "proc-71-744 -tw -Ha state all": "(null)",
    "proc-72-275 -A unix_dgram -em6a exclude listening": "unknown",
}
#: cases pinned by direct tests below instead
DEVIATIONS: dict[str, str] = dict.fromkeys(
    FAR_STATE_OF_ONE_BUILD, "test_far_state_of_one_build_prints_unknown"
)


@pytest.mark.parametrize(
    "case",
    [c for c in RECORDED if c["id"] not in DEVIATIONS],
    ids=case_id,
)
def test_like_ss(case: dict[str, object], tmp_path: Path, backend: str) -> None:
    want = DATA[str(case["id"])]
    argv, env = materialize(case, tmp_path)
    status, head, stderr, digest, size = run(argv, env, case.get("limit"), case=case)  # type: ignore[arg-type]
    assert b"Traceback" not in stderr, stderr.decode("latin-1")
    got = {"status": status, "stderr": stderr.decode("latin-1").replace(str(tmp_path), "{dir}")}
    if "stdout" in want:
        got["stdout"] = head.decode("latin-1")
    else:
        got["stdout_len"], got["stdout_sha256"] = size, digest
    # where ss 7.1 answered differently from run to run, any of its answers is right
    answers = [want, *want.get("alternatives", [])]
    # glibc's getopt messages start with argv[0]: the oracle's path was recorded as PROG
    answers = [{**a, "stderr": str(a.get("stderr", "")).replace("PROG", "sockscope")}
               for a in answers]  # fmt: skip
    # -h: ss's usage text, then sockscope's documented section on its own options
    from sockscope.cli.usage import SOCKSCOPE_HELP, USAGE

    if argv[:1] in (["-h"], ["--help"]):
        answers = [{**a, "stdout": USAGE + SOCKSCOPE_HELP} if a.get("stdout") == USAGE else a
                   for a in answers]  # fmt: skip
    for answer in answers:
        if all(got[k] == answer.get(k) for k in got):
            return
    assert got == {k: answers[0].get(k) for k in got}


# -- defect 1: COLUMNS ----------------------------------------------------------------------
def test_columns_is_read_as_c_int() -> None:
    from sockscope.render.columns import _atoi

    assert _atoi("99999999") == 99999999
    assert _atoi("2147483648") == -(2**31)
    assert _atoi("4294967376") == 80
    assert _atoi("99999999999999999999") == -1
    assert _atoi("-99999999999999999999") == 0
    assert _atoi("-2147483649") == 2**31 - 1
    assert _atoi("9" * 100000) == -1  # a long value costs no time
    assert _atoi(" +80x") == 80


def test_huge_columns_stream_in_bounded_memory(tmp_path: Path) -> None:
    """COLUMNS=INT_MAX: every line is 2 GiB wide; ss streams it, so must we (the run is
    capped at 512 MiB and cut after 64 MiB)."""
    case = next(c for c in CASES if c["id"] == "columns--2147483649")
    argv, env = materialize(case, tmp_path)
    status, head, stderr, _digest, size = run(argv, env, limit=1 << 26)
    assert status == -13  # killed by SIGPIPE when the reader stops, as ss is
    assert stderr == b""
    assert size == 1 << 26
    assert head.startswith(b"State") and head.strip(b" ") == b"State"


# -- defect 2: files without end --------------------------------------------------------------
def test_summary_of_endless_proc_files_hangs_in_bounded_memory(tmp_path: Path) -> None:
    """``-s`` over a PROC_ROOT whose sockstat is /dev/zero: ss reads it with fgets forever
    (it never returns); so does sockscope, without growing (the run is capped)."""
    (tmp_path / "net").mkdir()
    for name in ("sockstat", "sockstat6", "snmp"):
        os.symlink("/dev/zero", tmp_path / "net" / name)
    with pytest.raises(subprocess.TimeoutExpired):
        run(["-s"], {"PROC_ROOT": str(tmp_path)}, timeout=3)


def test_tcpdiag_file_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    """A message longer than ss's stack can take ends the file with EFAULT's message; a
    shorter one that the file does not hold is a truncated file."""
    dump = tmp_path / "dump"
    for body, message in ((30000, b"Reading $TCPDIAG_FILE: Bad address\n"),
                          (20000, b"Unexpected EOF reading $TCPDIAG_FILE")):  # fmt: skip
        dump.write_bytes(b"\x00\x00\x00\x10\x14\x00\x02\x00" + bytes(8) + bytes(body))
        status, _head, stderr, _d, _n = run(["-tan"], {"TCPDIAG_FILE": str(dump)})
        assert (status, stderr) == (0, message)


# -- defect 3: long and deep filters ----------------------------------------------------------
def _reference_bytecode(node: object) -> bytearray | None:
    """The recursive ssfilter_bytecompile + ssfilter_patch, as the compiler was before it
    became iterative (fine for the small trees it is compared on)."""
    from sockscope.kernel import abi
    from sockscope.query import bytecode as bc
    from sockscope.query.filter import And, Not, Or

    if isinstance(node, (And, Or)):
        left, right = _reference_bytecode(node.left), _reference_bytecode(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, And):
            bc.relocate(left, len(left), len(right))
            return left + right
        return left + bc._op(abi.INET_DIAG_BC_JMP, 4, len(right) + 4) + right
    if isinstance(node, Not):
        child = _reference_bytecode(node.child)
        return None if child is None else child + bc._op(abi.INET_DIAG_BC_JMP, 4, 8)
    return bc._leaf(node)  # type: ignore[arg-type]


def _random_filter(rng: random.Random, size: int) -> list[str]:
    leaves = [["sport", "=", ":22"], ["dport", ">=", ":1024"], ["src", "127.0.0.1"],
              ["dst", "10.0.0.0/8"], ["autobound"], ["fwmark", "0x10/0xff"],
              ["dport", "!=", ":80"], ["sport", "<", ":5000"], ["src", "127.0.0.1:22"]]  # fmt: skip
    words: list[str] = []
    for i in range(size):
        if i:
            words.append(rng.choice(["and", "or", "&", "|", ""]) or "and")
        opened = 0
        while rng.random() < 0.2:
            words.append(rng.choice(["(", "!"]))
            opened += words[-1] == "("
        words += rng.choice(leaves)
        words += [")"] * opened
    return words


def test_iterative_bytecode_is_the_recursive_one() -> None:
    from sockscope.query.bytecode import compile_bytecode
    from sockscope.query.filter import parse_filter

    rng = random.Random(12)
    for _ in range(300):
        flt = parse_filter(_random_filter(rng, rng.randint(1, 40)))
        assert flt is not None
        want = _reference_bytecode(flt.root)
        assert compile_bytecode(flt.root) == (None if want is None else bytes(want))
    # a chain past 64 KiB: the u16 jumps wrap exactly as ssfilter_patch's do
    flt = parse_filter(" and ".join(f"dst ::1/128 or sport = :{i}" for i in range(1, 1800)))
    assert flt is not None
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10000)  # for the recursive reference only
    try:
        want = bytes(_reference_bytecode(flt.root) or b"")
    finally:
        sys.setrecursionlimit(limit)
    assert len(want) > 65536
    assert compile_bytecode(flt.root) == want


def test_deep_filters_in_the_library() -> None:
    """No RecursionError anywhere: parse, str, ==, hash, matches, bytecode."""
    from sockscope.errors import FilterError
    from sockscope.query.filter import parse_filter

    with pytest.raises(FilterError, match="memory exhausted"):
        parse_filter(["("] * 20000 + ["autobound"] + [")"] * 20000)
    for words in (
        " or ".join(f"sport = :{i}" for i in range(1, 30001)),
        "! " * 9990 + "sport = :1",
        " and ".join(f"( sport = :{i} or ! dport = :{i} )" for i in range(1, 5001)),
    ):
        flt = parse_filter(words)
        again = parse_filter(str(flt))
        assert flt == again and hash(flt) == hash(again)
        assert isinstance(flt.matches(_Sock()), bool)  # type: ignore[union-attr]
        flt.bytecode()  # type: ignore[union-attr]


class _Sock:
    family = 2
    lport = 1
    rport = 2
    iface = 0
    mark = 0
    cgroup_id = 0
    local_data = b"\x7f\0\0\x01"
    remote_data = b"\x7f\0\0\x01"
    name = None


# -- defect 4: damaged records ----------------------------------------------------------------
def test_states_where_ss_crashes_print_unknown(tmp_path: Path) -> None:
    """idiag_state 14..255: ss 7.1 prints what lies past sstate_name[] (recorded by the
    states-past case); where that is a small integer it crashes, and sockscope prints
    UNKNOWN (QUIRKS.md)."""
    from hardening_cases import _STATES_NO_CRASH

    crashing = [st for st in range(14, 256) if st not in _STATES_NO_CRASH]
    assert DATA["tcpdiag-states-past"]["status"] == 0
    for state in crashing[:5] + crashing[-3:]:
        dump = tmp_path / "dump"
        dump.write_bytes(_state_dump(state))
        for argv in (["-tan"], ["-tano"], ["-tan", "--json"]):
            status, head, stderr, _d, _n = run(argv, {"TCPDIAG_FILE": str(dump)})
            assert (status, stderr) == (0, b"")
            assert b"UNKNOWN" in head


def test_far_states_that_differ_between_builds_print_unknown(tmp_path: Path, backend: str) -> None:
    """A /proc state far past sstate_name[] prints what lies there in ss's binary, and that
    moves with the build: the ss 7.1 built with libbpf prints ``(null)`` at 1736 where an
    earlier build printed ``unknown`` (its string tables shifted by 8 entries). Texts the
    recorded builds do not agree on are garbage, so sockscope prints UNKNOWN there
    (QUIRKS.md); the texts they agree on (``x25`` at 257) are pinned by the recorded
    case ``proc-line-state-far``."""
    from sockscope.render import sstate_far

    assert sstate_far.BUILDS >= 2
    net = tmp_path / "net"
    net.mkdir()
    head = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
    rows = b"".join(
        b"   %d: 0100007F:%04X 0100007F:0050 0X%X 0:0 0:0 0 0 0 %d\n" % (i, 100 + i, st, 70 + i)
        for i, st in enumerate([1736, 600, 2253, 257])
    )
    (net / "tcp").write_bytes(head + rows)
    (net / "tcp6").write_bytes(head)
    status, out, err, _d, _n = run(["-tan"], {"PROC_ROOT": str(tmp_path)})
    assert (status, err) == (0, b"")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [b"UNKNOWN"] * 3 + [b"x25"]


def _state_dump(state: int) -> bytes:
    from hardening_cases import GENERATORS, _with_fields

    return _with_fields(state=state) + GENERATORS["rows"]()[-20:]


def test_any_family_prints_without_traceback(tmp_path: Path) -> None:
    """idiag_family of any value: rt_addr_n2a's text (AF_MPLS, where ss 7.1 crashes
    reading labels past the address, prints the labels of the 16 bytes)."""
    from hardening_cases import GENERATORS, _with_fields

    dump = tmp_path / "dump"
    for family in (0, 1, 7, 17, 28, 99, 255):
        dump.write_bytes(_with_fields(family=family) + GENERATORS["rows"]())
        for argv in (["-tan"], ["-tane", "src", "127.0.0.1"], ["-tan", "--json"], ["-tanr"]):
            status, head, stderr, _d, _n = run(argv, {"TCPDIAG_FILE": str(dump)})
            assert (status, stderr) == (0, b""), (family, argv)
            assert b":40000" in head or b'"local_port":40000' in head
    dump.write_bytes(_with_fields(family=28) + GENERATORS["rows"]())
    _s, head, _e, _d, _n = run(["-tan"], {"TCPDIAG_FILE": str(dump)})
    assert b"520192/0/0/0:5000" in head


# -- defect 6: a dump written nowhere ---------------------------------------------------------
@pytest.mark.parametrize("redirect", [">/dev/full", ""])
def test_dump_to_a_full_device_is_reported(redirect: str, tmp_path: Path) -> None:
    """ss 7.1 ignores its fwrite() errors (exit 0, nothing said); sockscope reports a dump
    that went nowhere (QUIRKS.md), and still exits 0 silently for a listing."""
    argv = ["-D", "-" if redirect else "/dev/full", "-ta"]
    status, _h, stderr, _d, _n = run(argv, case={"redirect": redirect})
    assert status == 1
    assert stderr == b"sockscope: writing the dump: No space left on device\n"


# -- defect 11: names that are not UTF-8 in JSON ----------------------------------------------
def test_json_names_that_are_not_utf8_are_latin1_with_a_flag(tmp_path: Path) -> None:
    import jsonschema

    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "unix").write_bytes(
        b"Num       RefCount Protocol Flags    Type St Inode Path\n"
        b"0000000000000000: 00000002 00000000 00010000 0001 01 12345 /tmp/a\xffb\xc3\xa9\n"
        b"0000000000000000: 00000002 00000000 00010000 0001 01 12346 /tmp/caf\xc3\xa9\n"
    )
    schema = json.loads((ROOT / "src/sockscope/schema/sockscope.schema.json").read_text())
    for mode in ("--json", "--json-lines"):
        status, head, stderr, _d, _n = run(["-xa", mode], {"PROC_ROOT": str(tmp_path)})
        assert (status, stderr) == (0, b"")
        text = head.decode("utf-8")  # valid UTF-8: no lone surrogates
        docs = (
            [json.loads(x) for x in text.splitlines()]
            if mode == "--json-lines"
            else [json.loads(text)]
        )
        socks = [d for doc in docs for d in doc.get("sockets", [doc])]
        odd, plain = socks
        assert odd["local_address"].encode("latin-1") == b"/tmp/a\xffb\xc3\xa9"
        assert odd["local_address_encoding"] == "latin-1"
        assert plain["local_address"] == "/tmp/café" and "local_address_encoding" not in plain
        if mode == "--json":
            jsonschema.validate(docs[0], schema)


def test_json_names_do_not_depend_on_the_locale(tmp_path: Path) -> None:
    """Under a latin-1 locale Python's file-system encoding is latin-1: unix names went
    through os.fsdecode, so a UTF-8 name came out as mojibake and a name that is not
    UTF-8 lost its ``_encoding`` flag (found by attack7). The JSON is now the same
    bytes under every locale. The locale is compiled into ``tmp_path`` by localedef."""
    import shutil

    if shutil.which("localedef") is None or not Path("/usr/share/i18n/locales/en_US").exists():
        pytest.skip("needs localedef and the en_US locale source")
    locales = tmp_path / "locales"
    locales.mkdir()
    made = subprocess.run(["localedef", "-i", "en_US", "-f", "ISO-8859-1",
                           str(locales / "en_US.ISO-8859-1")], capture_output=True, check=False)  # fmt: skip
    if not (locales / "en_US.ISO-8859-1").exists():
        pytest.skip(f"localedef failed: {made.stderr[-200:]!r}")
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "unix").write_bytes(
        b"Num       RefCount Protocol Flags    Type St Inode Path\n"
        b"0000000000000000: 00000002 00000000 00010000 0001 01 12345 /tmp/a\xffb\xc3\xa9\n"
        b"0000000000000000: 00000002 00000000 00010000 0001 01 12346 /tmp/caf\xc3\xa9\n"
    )
    check = [sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"]
    latin = {"LOCPATH": str(locales), "LC_ALL": "en_US.ISO-8859-1"}
    probe = subprocess.run(check, env={**os.environ, **latin}, capture_output=True, text=True)
    assert probe.stdout.strip() == "iso8859-1"  # the locale is in effect
    for mode in ("--json", "--json-lines"):
        want = run(["-xa", mode], {"PROC_ROOT": str(tmp_path)})
        got = run(["-xa", mode], {"PROC_ROOT": str(tmp_path), **latin})
        assert got == want
        assert b'"local_address":"/tmp/caf\\u00e9"' in got[1]
        assert got[1].count(b'"local_address_encoding":"latin-1"') == 1


# -- defect 10: SIGINT ------------------------------------------------------------------------
#: a Ctrl-C while runpy imports the package (``python -m sockscope``: argv[0] is "-m"
#: then) or another program imports it, made deterministic: the import of
#: sockscope.errors raises KeyboardInterrupt as Python's SIGINT handler would there
_INTERRUPTED_IMPORT = """
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "sockscope.errors":
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
sys.argv[0] = sys.argv[1]
try:
    import sockscope
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


@pytest.mark.parametrize(
    ("argv0", "status", "out"), [("-m", -2, b""), ("-c", 0, b"KeyboardInterrupt\n")]
)
def test_sigint_while_the_package_loads(argv0: str, status: int, out: bytes) -> None:
    """Under ``python -m sockscope`` (before __main__'s own handler exists) the process
    dies by SIGINT as ss does, without a traceback; a program that imports the library
    gets its KeyboardInterrupt (found by the signal-startup campaign: 5 runs in 360)."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src")}
    got = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_IMPORT, argv0],
        env=env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert (got.returncode, got.stdout, got.stderr) == (status, out, b"")


#: ``python -m sockscope -V`` (through runpy) where a Ctrl-C comes while an exception
#: cannot propagate (importlib's weakref callbacks: "Exception ignored"), made
#: deterministic: a finalizer sends SIGINT while sockscope.cli.command is being found
_SWALLOWED = """
import os, runpy, signal, sys
class Bomb:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100000):
            pass
class Hook:
    def find_spec(self, name, path=None, target=None):
        if name == "sockscope.cli.command":
            Bomb()
sys.meta_path.insert(0, Hook())
sys.argv[1:] = ["-V"]
runpy.run_module("sockscope", run_name="__main__", alter_sys=True)
"""


def test_sigint_while_the_modules_load_cannot_be_swallowed() -> None:
    """While __main__ loads the modules, SIGINT's handler ends the process at once: a
    KeyboardInterrupt there could be reported as ignored and the command run on (status
    0; found by the signal-startup campaign, 3 runs in 1,400)."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src")}
    got = subprocess.run(
        [sys.executable, "-c", _SWALLOWED], env=env, capture_output=True, timeout=60, check=False
    )
    assert (got.returncode, got.stdout, got.stderr) == (-2, b"", b"")


#: ``python -m sockscope -V`` as runpy runs it (argv[0] "-m" while the package is
#: imported), where a Ctrl-C comes after the package's import and before __main__'s
#: try, made deterministic: SIGINT is sent while runpy looks for sockscope.__main__
_BEFORE_MAIN = """
import os, runpy, signal, sys
class Hook:
    def find_spec(self, name, path=None, target=None):
        if name == "sockscope.__main__":
            os.kill(os.getpid(), signal.SIGINT)
sys.meta_path.insert(0, Hook())
sys.argv[:] = ["-m", "-V"]
sys.orig_argv = [sys.executable, "-m", "sockscope", "-V"]
runpy._run_module_as_main("sockscope")
"""


def test_sigint_between_the_package_and_main_kills_like_ss() -> None:
    """From the package's first statements on, Ctrl-C kills the process by SIGINT: before,
    between the package's import and __main__'s try (runpy finding and reading __main__,
    __main__'s first instruction, "line 0") it was a KeyboardInterrupt traceback, status 1
    (the signal-startup campaign, about 1 run in 1,400)."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src")}
    got = subprocess.run(
        [sys.executable, "-c", _BEFORE_MAIN], env=env, capture_output=True, timeout=60, check=False
    )
    assert (got.returncode, got.stdout, got.stderr) == (-2, b"", b"")


def test_sigint_after_main_returned_kills_like_ss() -> None:
    """A Ctrl-C while the interpreter finalizes after the command (threading imported, an
    atexit function: the slow exit) ends it by SIGINT, not with "Exception ignored in
    threading._shutdown" and the status main() returned."""
    code = (
        "import atexit, os, signal, threading, time\n"
        "from sockscope.cli.command import leave\n"
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(5)))\n"
        "leave(0)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src")}
    got = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, timeout=60, check=False
    )
    assert (got.returncode, got.stderr) == (-2, b"")


@pytest.mark.parametrize("signum", [2, 15, 1, 3], ids=["INT", "TERM", "HUP", "QUIT"])
@pytest.mark.parametrize("mode", ["", "--json", "--json-lines"])
def test_sigint_kills_like_ss_and_closes_json(mode: str, signum: int, tmp_path: Path) -> None:
    """ss dies of SIGINT (status -2 here, 130 only in a shell), and of SIGTERM, SIGHUP
    and SIGQUIT; an interrupted --json listing is still one complete document."""
    from hardening_cases import _rows

    fifo = tmp_path / "dump"
    os.mkfifo(fifo)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src"),
           "TCPDIAG_FILE": str(fifo)}  # fmt: skip
    p = subprocess.Popen(
        [sys.executable, "-m", "sockscope", "-tan", *([mode] if mode else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        preexec_fn=_no_core,  # noqa: PLW1509 - SIGQUIT's default action dumps core
    )  # fmt: skip
    with open(fifo, "wb") as w:
        w.write(_rows(3))
        w.flush()
        time.sleep(1.0)  # the records are read; sockscope waits for more
        p.send_signal(signum)
        out, err = p.communicate(timeout=30)
    assert p.returncode == -signum
    assert b"Traceback" not in err
    if mode == "--json":
        assert len(json.loads(out)["sockets"]) == 3
    elif mode == "--json-lines":
        assert [json.loads(x)["local_port"] for x in out.splitlines()] == [40000, 40001, 40002]


def _no_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _output_limits(argv: list[str], dump: Path, how: str) -> tuple[int, bytes]:
    """(status, stderr) of ``argv`` reading ``dump`` as TCPDIAG_FILE, with stdout a
    non-blocking pipe of 4 KiB that nobody reads (``nonblock``) or a file under an
    RLIMIT_FSIZE of 1,000 bytes (``fsize``)."""
    import fcntl

    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src"),
           "TCPDIAG_FILE": str(dump), **({"SOCKSCOPE_PURE": "1"} if os.environ.get("SOCKSCOPE_PURE") else {})}  # fmt: skip
    if how == "nonblock":
        r, w = os.pipe()
        fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
        fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
        try:
            p = subprocess.run(argv, stdout=w, stderr=subprocess.PIPE, env=env, timeout=60)
        finally:
            os.close(r)
            os.close(w)
        return p.returncode, p.stderr

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    with tempfile.TemporaryFile() as out:
        p = subprocess.run(
            argv, stdout=out, stderr=subprocess.PIPE, env=env, timeout=60, preexec_fn=limit
        )
    return p.returncode, p.stderr


@pytest.mark.parametrize("how", ["nonblock", "fsize"])
@pytest.mark.parametrize("mode", ["", "--json", "--json-lines", "-s"])
def test_output_limits_as_ss(how: str, mode: str, tmp_path: Path) -> None:
    """A non-blocking stdout that fills (ss's printf()s fail: exit 0, no message) and a
    stdout past RLIMIT_FSIZE (ss dies by SIGXFSZ, which Python ignores unless told)."""
    import synthdump
    from hardening_cases import _rows

    dump = tmp_path / "dump"
    dump.write_bytes(_rows(200) + synthdump.done())  # ~20 KiB of rows
    argv = ["-tan", *([mode] if mode else [])]
    status, err = _output_limits([sys.executable, "-m", "sockscope", *argv], dump, how)
    assert b"Traceback" not in err
    assert (status, err) == ((0, b"") if how == "nonblock" else (-25, b""))
    if ORACLE is not None and mode in ("", "-s"):  # ss 7.1 has no JSON
        assert _output_limits([ORACLE, *argv], dump, how) == (status, err)


def test_sigterm_before_a_long_mode_takes_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while --watch --all-netns still discovers the namespaces (before its loop
    catches Terminated) gives the loop's status, 143, with no traceback; the handler the
    caller had is back when main() returns."""
    import signal

    from sockscope.cli import command
    from sockscope.ops import namespaces

    real = namespaces.discover
    fired: list[bool] = []

    def discover(*args: object, **kwargs: object) -> object:
        # once only: a module imported during the call may keep this function by name
        if not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    def mine(_signum: int, _frame: object) -> None:
        raise AssertionError("the caller's handler ran")

    monkeypatch.setattr(namespaces, "discover", discover)
    before = signal.signal(signal.SIGTERM, mine)
    try:
        assert command.main(["--all-netns", "--watch", "-t"]) == 143
        assert fired and signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


# -- defect 7: a damaged /proc line gives up the table ------------------------------------------
@pytest.mark.parametrize(
    "damage",
    [b"x" * 300 + b"\n", b"   1: 0100007F:0001 0100007F:0050 01 0\0:0 00:0 0 0 0 9 1\n", b"tail"],
)
def test_damaged_proc_line_skips_the_rest_of_the_table(damage: bytes, tmp_path: Path) -> None:
    """generic_record_read fails on a line without its newline in 255 bytes (or cut by a
    NUL): tcp_show then gives up, tcp6 included (checked against ss 7.1)."""
    head = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    line4 = b"   0: 0100007F:03E8 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 100 1 0 20 4 30 10 -1\n"
    line6 = b"   0: 00000000000000000000000001000000:03E9 00000000000000000000000001000000:0050 01 00000000:00000000 00:00000000 00000000     0        0 101 1 0 20 4 30 10 -1\n"
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_bytes(head + line4 + damage)
    (tmp_path / "net" / "tcp6").write_bytes(head + line6)
    status, out, err, _d, _n = run(["-tan"], {"PROC_ROOT": str(tmp_path)})
    assert (status, err) == (0, b"")
    assert b":1000" in out and b":1001" not in out


# -- defect 13: warnings of the filter parse reach the CLI through the context ------------------
def test_filter_warnings_are_returned_and_called_back() -> None:
    """ll_link_get's addattr_l warning (a device name of 1,012 bytes or more) is kept in
    FilterContext.warnings and on the Filter, and passed to the ``warn`` callback as it
    comes; the library prints nothing (case dev-if-form-1013 checks the CLI's stderr)."""
    from sockscope.errors import FilterError
    from sockscope.query.filter import parse_filter
    from sockscope.query.hostcond import FilterContext

    warning = "addattr_l ERROR: message exceeded bound of 1056\n"
    heard: list[str] = []
    ctx = FilterContext(warn=heard.append)
    flt = parse_filter(["dev", "if" + "0" * 1010 + "1"], ctx)
    assert flt is not None and flt.warnings == (warning,)
    assert ctx.warnings == heard == [warning]
    ctx = FilterContext()
    with pytest.raises(FilterError, match="Cannot parse device"):
        parse_filter(["dev", "x" * 1012], ctx)
    assert ctx.warnings == [warning]
    ctx = FilterContext()
    with pytest.raises(FilterError):
        parse_filter(["dev", "x" * 1011], ctx)
    assert ctx.warnings == []
    flt = parse_filter("dev lo")
    assert flt is not None and flt.warnings == ()


_UDP_HOLDER = r"""
import socket, sys
keep = []
for i in range(600):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    keep.append(u)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.live
@pytest.mark.parametrize("signum", [2, 15, 1], ids=["INT", "TERM", "HUP"])
def test_json_lines_stay_whole_when_a_blocked_write_is_interrupted(
    signum: int, backend: str
) -> None:
    """--json-lines into a pipe nobody reads yet, in a namespace of 600 UDP sockets (the
    compiled core writes a datagram's lines at once, well over a pipe page): the signal
    interrupts a blocked write in the middle of a line; the rest of that line still goes
    out before the death by the signal, so every line the reader gets is a whole object."""
    import fcntl

    import netns

    if os.geteuid() != 0:
        pytest.skip("needs root for a private namespace")
    ns = netns.Netns(f"sockscope-jlw-{os.getpid()}")
    holder = subprocess.Popen([*ns.enter(), sys.executable, "-c", _UDP_HOLDER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"ready\n"
        r, w = os.pipe()
        fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: the writer blocks after one page
        p = subprocess.Popen([*ns.enter(), *netns.sockscope_cmd(), "-uan", "--json-lines"],
                             stdout=w, stderr=subprocess.PIPE, env=netns.tool_env())  # fmt: skip
        os.close(w)
        time.sleep(1.5)  # started, and blocked on the full pipe
        p.send_signal(signum)
        with os.fdopen(r, "rb") as reader:
            out = reader.read()
        err = p.communicate(timeout=30)[1]
    finally:
        netns.end_holder(holder)
        ns.close()
    assert p.returncode == -signum and b"Traceback" not in err, err
    assert out.endswith(b"\n") and 0 < out.count(b"\n") < 600
    for line in out.splitlines():
        json.loads(line)


@pytest.mark.parametrize(
    "case", [c for c in RECORDED if c["id"] in FAR_STATE_OF_ONE_BUILD], ids=case_id
)
def test_far_state_of_one_build_prints_unknown(
    case: dict[str, object], tmp_path: Path, backend: str
) -> None:
    """The recorded answer, with the one state word that only that build of ss 7.1
    printed replaced by UNKNOWN in the same column (the row's other cells as recorded)."""
    want = DATA[str(case["id"])]
    word = FAR_STATE_OF_ONE_BUILD[str(case["id"])]
    recorded = str(want["stdout"])
    assert recorded.count(f" {word} ") == 1
    expected = recorded.replace(f" {word} ", " " + "UNKNOWN".ljust(len(word) + 1))
    argv, env = materialize(case, tmp_path)
    status, head, stderr, _digest, _size = run(argv, env, case.get("limit"), case=case)  # type: ignore[arg-type]
    assert (status, stderr.decode("latin-1"), head.decode("latin-1")) == (
        want["status"],
        want["stderr"],
        expected,
    )
