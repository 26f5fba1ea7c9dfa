"""The command's stdout into a pipe, a FIFO or a socket: written in ss's write(2) sizes.

ss prints through glibc's fully buffered stdout, whose buffer is the descriptor's
st_blksize (4096 for a pipe or a socket): its output reaches the reader in writes of
exactly one block, the rest at exit. sockscope's stdout does the same there
(``cli/status.py``'s ``_BlockOut``), and the column engines hand it their text a block
at a time, so that a reader that leaves after the first line (``| head -1``, a FIFO read
by ``head``) meets a later write, and the command dies of SIGPIPE as ss does, where one
big write of the whole listing used to fit the pipe and end with status 0.

The write sizes are seen without tracing: a packet-mode pipe (``pipe2(O_DIRECT)``) keeps
each write of up to a page as a packet of its own, and a SOCK_SEQPACKET socket each
write as a record; one read returns one of them. The expected sizes are a direct
property (blocks of 4096, then the rest) and, with ``$SOCKSCOPE_ORACLE``, ss 7.1's own
packets for the same recorded dump; without it, Debian's ss 6.1 is checked to write
its own output in the same blocks.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import netns
from sockscope.cli.status import _BlockOut, _StdioOut

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "golden" / "scenario-21" / "tcpdiag.bin"  # ~1,000 sockets
BLOCK = 4096  # st_blksize of a pipe and of a socket (a page)


def _blocks(total: int) -> list[int]:
    """The sizes of ss's writes of ``total`` bytes: full blocks, then the rest."""
    return [BLOCK] * (total // BLOCK) + ([total % BLOCK] if total % BLOCK else [])


def _packet_pipe() -> tuple[int, int]:
    try:
        return os.pipe2(os.O_DIRECT)
    except OSError as e:  # (kernels before 3.4)
        pytest.skip(f"no packet-mode pipes here: {e}")


def _read_packets(read: int) -> tuple[bytes, list[int]]:
    """Everything from a packet-mode pipe (or a SOCK_SEQPACKET socket), and the size of
    each write that put it there."""
    chunks = []
    while True:
        chunk = os.read(read, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks), [len(c) for c in chunks]


def _writes(cmd: list[str], argv: list[str], into: str) -> tuple[int, bytes, list[int]]:
    """Run ``cmd argv`` over the recorded dump with stdout a packet-mode pipe
    (``into="pipe"``) or a SOCK_SEQPACKET socket; (status, output, write sizes)."""
    env = netns.tool_env(TCPDIAG_FILE=str(RECORDED))
    if into == "pipe":
        read, write = _packet_pipe()
    else:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        read, write = ours.detach(), theirs.detach()
    try:
        proc = subprocess.Popen([*cmd, *argv], stdout=write, stdin=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)  # fmt: skip
        os.close(write)
        out, sizes = _read_packets(read)
        status = proc.wait(timeout=120)
    finally:
        os.close(read)
    return status, out, sizes


@pytest.mark.parametrize("into", ["pipe", "socket"])
@pytest.mark.parametrize("argv", [["-tan"], ["-tani"], ["-tane"], ["-tanoH"]])
def test_text_is_written_in_ss_blocks(backend: str, argv: list[str], into: str) -> None:
    """Before, a listing left in batches of the column engine (one write of the whole
    -tan, 256 KiB pieces of -tani), and into a SOCK_SEQPACKET socket -tani failed with
    ``sockscope: Message too long``, status 1, where ss writes its blocks."""
    status, out, sizes = _writes(netns.sockscope_cmd(), argv, into)
    assert status == 0
    assert len(out) > 8 * BLOCK
    assert sizes == _blocks(len(out))
    ss, is_71 = netns.oracle()
    ss_status, ss_out, ss_sizes = _writes([ss], argv, into)
    assert ss_status == 0
    assert ss_sizes == _blocks(len(ss_out))  # the property is ss's, 6.1 and 7.1 alike
    if is_71:
        assert (out, sizes) == (ss_out, ss_sizes)


@pytest.mark.parametrize("argv", [["--json", "-tan"], ["--json", "-tani"]])
def test_json_is_written_in_blocks(backend: str, argv: list[str]) -> None:
    """--json (no ss counterpart) leaves the same way: it used to flush a buffer just
    short of a block before each socket that did not fit (writes of 3,950 to 4,069)."""
    status, out, sizes = _writes(netns.sockscope_cmd(), argv, "pipe")
    assert status == 0
    assert out.endswith(b"]}\n")
    assert sizes == _blocks(len(out))


def test_block_writer_property(tmp_path: Path) -> None:
    """Pieces of any size, and flushes between them: every write is a block but a
    flush's, and the bytes arrive in order, unchanged (a seeded draw of 300 pieces)."""
    rng = random.Random(12)
    read, write = _packet_pipe()
    got: list[tuple[bytes, list[int]]] = []
    reader = threading.Thread(target=lambda: got.append(_read_packets(read)))
    reader.start()
    expected_sizes: list[int] = []
    sent = bytearray()
    pending = 0
    raw = _StdioOut(write, "w", closefd=True)
    out = _BlockOut(raw, BLOCK)
    try:
        for _ in range(300):
            piece = rng.randbytes(rng.choice((1, 7, 100, 4095, 4096, 4097, 9000, 70000)))
            assert out.write(piece) == len(piece)
            sent += piece
            pending += len(piece)
            while pending > BLOCK:  # a full block waits for the next byte, as glibc's
                expected_sizes.append(BLOCK)
                pending -= BLOCK
            if rng.random() < 0.1:
                out.flush()
                if pending:
                    expected_sizes.append(pending)
                pending = 0
        out.close()
        if pending:
            expected_sizes.append(pending)
    finally:
        raw.close()
        reader.join(timeout=60)
        os.close(read)
    data, sizes = got[0]
    assert data == bytes(sent)
    assert sizes == expected_sizes


def test_only_pipes_and_sockets_get_blocks(tmp_path: Path) -> None:
    """Only a pipe, a FIFO or a socket gets the block writer: a regular file (ss writes
    it in blocks too, with no reader to leave: QUIRKS.md) keeps Python's buffer."""
    code = textwrap.dedent(
        """
        import sys
        from sockscope.cli.status import ensure_std_streams
        ensure_std_streams(program=True)
        print(type(sys.stdout.buffer).__name__, file=sys.stderr)
        """
    )
    env = netns.tool_env()
    with (tmp_path / "out").open("wb") as f:
        r = subprocess.run([sys.executable, "-c", code], stdout=f, stderr=subprocess.PIPE,
                           env=env, check=True)  # fmt: skip
    assert r.stderr.strip() == b"BufferedWriter"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=True)
    assert r.stderr.strip() == b"_BlockOut"


# ------------------------------------------------------------------ a reader that leaves

#: socket pairs held in the namespace: ~36 KiB of -tan, nine blocks, less than a pipe holds
PAIRS = 300
RUNS = 12

_HOLD = textwrap.dedent(
    """
    import socket, sys
    keep = []
    for k, (family, addr) in enumerate([(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]):
        srv = socket.socket(family); srv.bind((addr, 7200 + k)); srv.listen(4096)
        keep.append(srv)
        for _ in range(int(sys.argv[1]) // 2):
            c = socket.socket(family); c.connect((addr, 7200 + k)); a, _ = srv.accept()
            keep += [c, a]
    print("ready", flush=True)
    sys.stdin.read()
    """
)


def _into_fifo(fifo: Path, cmd: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """``cmd > FIFO`` while ``head -n 1 FIFO`` reads the first line and exits: the
    command's status (negative: the signal that killed it) and its stderr."""
    reader = subprocess.Popen(["head", "-n", "1", str(fifo)], stdout=subprocess.DEVNULL)
    try:
        with fifo.open("wb") as out:  # (waits for head to open its end)
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, env=env, timeout=60, check=False)  # fmt: skip
    finally:
        reader.wait(timeout=60)
    return proc.returncode, proc.stderr


@pytest.mark.live
@pytest.mark.skipif(netns.live_reason() is not None, reason=netns.live_reason() or "")
def test_reader_leaving_after_a_line_kills_as_it_kills_ss(tmp_path: Path, backend: str) -> None:
    """A listing of nine blocks into a FIFO whose reader leaves after the first line:
    ss dies of SIGPIPE in most runs (its later blocks meet the closed pipe); so must
    sockscope. Before, the whole listing went in one write, which the pipe took before
    the reader left: status 0 in every run. The timing is the host's, so the counts are
    compared, not each run: every run ends by SIGPIPE or with 0, silently, and sockscope
    dies in at least a third as many runs as ss."""
    ns = netns.Netns(f"sockscope-pipes-{os.getpid()}")
    holder = subprocess.Popen([*ns.enter(), sys.executable, "-c", _HOLD, str(PAIRS)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"ready"
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        env = netns.tool_env()
        ss, _is_71 = netns.oracle()
        size = len(ns.run([ss, "-tan"], check=True).stdout)
        assert 8 * BLOCK < size < 16 * BLOCK  # several blocks, all of which the pipe holds
        deaths = {}
        for who, cmd in (("ss", [ss]), ("sockscope", netns.sockscope_cmd())):
            results = [_into_fifo(fifo, [*ns.enter(), *cmd, "-tan"], env) for _ in range(RUNS)]
            assert {err for _status, err in results} == {b""}, who
            assert {status for status, _err in results} <= {0, -signal.SIGPIPE}, who
            deaths[who] = sum(status == -signal.SIGPIPE for status, _err in results)
        assert deaths["sockscope"] >= deaths["ss"] // 3, deaths
    finally:
        holder.kill()
        holder.communicate()
        ns.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_json_interrupted_on_a_full_pipe_stays_whole(backend: str, signum: int) -> None:
    """--json into a pipe of one page nobody reads yet, then a signal while a block waits,
    then the reader: one whole document. A block whose write(2) succeeded as the signal
    came was written again when its result was lost in Python code (a block twice in
    about half the runs: the hostile campaign's signal-json-listing)."""
    import fcntl
    import json
    import time

    env = netns.tool_env(TCPDIAG_FILE=str(RECORDED))
    for _ in range(4):
        read, write = os.pipe()
        fcntl.fcntl(write, 1031, BLOCK)  # F_SETPIPE_SZ: one page
        proc = subprocess.Popen([*netns.sockscope_cmd(), "-tan", "--json"], stdout=write,
                                stdin=subprocess.DEVNULL, env=env)  # fmt: skip
        os.close(write)
        try:
            time.sleep(0.8)  # the first block fills the pipe; the next one waits
            proc.send_signal(signum)
            out, _sizes = _read_packets(read)
        finally:
            os.close(read)
        assert proc.wait(timeout=60) == -signum
        assert json.loads(out)["sockets"]
