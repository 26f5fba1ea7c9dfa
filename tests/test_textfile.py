"""``--textfile DIR``: ``DIR/sockscope.prom`` is replaced atomically, under concurrent readers.

A writer replaces the file 200 times (the command's own writer,
``cli.answers._write_textfile``) with exposition texts of very different sizes (one
series to 3,000), while four reader threads read it in a loop: every read must be
exactly one of the texts written (never empty, never a mix, never a prefix), and pass
the checks node_exporter's parser would make without promtool: the last line is
complete, every ``# HELP`` is followed by its ``# TYPE``, every sample line is
``name{labels} value``. Then the command itself rewrites the file 20 times under the
same readers (structure checked; the values are the host's). No temporary file is left.
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import netns
from sockscope.cli.answers import _write_textfile
from sockscope.render import prom

SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? \S+$'
)


def check_exposition(text: bytes) -> None:
    """What a reader must be able to rely on in every version of the file."""
    assert text, "empty file"
    assert text.endswith(b"\n"), "last line incomplete"
    lines = text.decode().split("\n")[:-1]
    for i, line in enumerate(lines):
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert i + 1 < len(lines), "HELP without TYPE at the end"
            assert lines[i + 1].startswith(f"# TYPE {name} "), (i, line)
        elif not line.startswith("#"):
            assert SAMPLE.match(line), line


def _text(n: int, tag: int) -> bytes:
    samples = [
        ("sockscope_group_sockets", {"local_port": str(p), "v": str(tag)}, p, "gauge", "G.")
        for p in range(n)
    ]
    samples.append(("sockscope_version", {}, tag, "gauge", "V."))
    return prom.exposition(samples).encode()


class Readers:
    def __init__(self, path: Path, allowed: set[bytes] | None, count: int = 4) -> None:
        self.path = path
        self.allowed = allowed
        self.stop = threading.Event()
        self.reads = 0
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._loop) for _ in range(count)]
        for t in self.threads:
            t.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            data = self.path.read_bytes()
            try:
                check_exposition(data)
                if self.allowed is not None:
                    assert data in self.allowed, f"a text never written ({len(data)} bytes)"
            except AssertionError as e:
                self.errors.append(str(e))
                return
            self.reads += 1

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_atomic_under_concurrent_readers(tmp_path: Path) -> None:
    texts = [_text(n, i) for i, n in enumerate((1, 3000, 20, 700, 0))]
    sizes = sorted(len(t) for t in texts)
    assert sizes[0] < 200 and sizes[-1] > 100_000
    _write_textfile(str(tmp_path), texts[0])
    readers = Readers(tmp_path / "sockscope.prom", set(texts))
    try:
        for i in range(200):
            _write_textfile(str(tmp_path), texts[i % len(texts)])
    finally:
        readers.finish()
    assert readers.errors == []
    assert readers.reads > 200  # the readers really ran alongside the writer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sockscope.prom"]
    assert (tmp_path / "sockscope.prom").stat().st_mode & 0o777 == 0o644


def test_command_rewrites_under_readers(tmp_path: Path) -> None:
    cmd = [*netns.sockscope_cmd(), "-ta", "--textfile", str(tmp_path)]
    first = subprocess.run(cmd, env=netns.tool_env(), capture_output=True, check=False)
    assert first.returncode == 0, first.stderr
    readers = Readers(tmp_path / "sockscope.prom", None)
    try:
        for _ in range(20):
            run = subprocess.run(cmd, env=netns.tool_env(), capture_output=True, check=False)
            assert run.returncode == 0, run.stderr
    finally:
        readers.finish()
    assert readers.errors == []
    assert readers.reads > 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sockscope.prom"]


def test_check_exposition_catches() -> None:
    """The checks fail on what a non-atomic writer would expose."""
    good = _text(5, 1)
    check_exposition(good)
    for bad in (b"", good[:-1], good[: good.index(b"# TYPE")], good[:40]):
        try:
            check_exposition(bad)
        except AssertionError:
            continue
        raise AssertionError(f"not caught: {bad!r}")
