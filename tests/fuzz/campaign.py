"""The attack campaign of issue 12, kept: fuzzed filters, damaged dumps and /proc trees,
hostile environments.

    python3 tests/fuzz/campaign.py KIND [--seed N] [--count N] [--oracle PATH] [--keep DIR]

KIND is ``filters``, ``dumps``, ``proc`` or ``env``. ``--count 0`` runs until interrupted
(by hand); the tests under ``tests/fuzz/`` run each kind with a fixed seed and a small
count. Every case is run through ``sockscope.cli.main`` in this process (one import for
thousands of cases; ``env`` cases run as subprocesses, since they change the process's
stdout), under the RLIMIT_AS cap the caller sets. A case fails when it raises anything
but SystemExit (a traceback), or its status is not one ss can give. With ``--oracle``
(upstream ss 7.1) each case is also run by ss and stdout, stderr and status are
compared; cases where ss dies of a signal are skipped (see QUIRKS.md).

The last line of output is a JSON summary: ``{"cases": N, "failures": [...],
"mismatches": [...], "ss_crashes": N}``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))
sys.path.insert(0, str(HERE.parent.parent / "src"))

import synthdump as sd  # noqa: E402

Case = tuple[list[str], dict[str, str]]

# --- grammar-based filters -------------------------------------------------------------------
_KEYWORDS = ["and", "or", "not", "!", "&", "|", "&&", "||", "(", ")", "(", ")"]
_OPS = ["=", "==", "eq", "!=", "ne", ">=", "ge", "<=", "le", ">", "<", "gt", "lt", ""]
_HOSTS = ["127.0.0.1", "127.0.0.0/8", "::1/128", "[::1]:22", "*", "*:22", ":22", ":http",
          "10.0.0.1/33", "256.1.1.1", "0x7f.1", "inet:127.0.0.1", "inet6:*", "unix:/tmp/x*",
          "link:*", "nl:1", "::ffff:127.0.0.1/128", "127.0.0.1:-1", ":65536", ":bogus",
          "", "\\", "localhost", "[::1]", "1.2.3.4/-1", "\xff", "é"]  # fmt: skip
_PORTS = [":22", ":0", ":-1", ":65535", ":70000", ":0x16", ":026", ":ssh", ":bogus", "22",
          "*", ":*", ""]  # fmt: skip
_MARKS = ["0x10", "0x10/0xff", "-1", "16/", "abc", "0x", "4294967296", "1/2/3", ""]
_DEVS = ["lo", "eth0", "nonexist", "1", "x" * 20, ""]
_CGROUPS = ["/", "/sys", "/nonexist", "unified", ""]


def random_filter(rng: random.Random) -> list[str]:
    """Words of a filter drawn from ss's grammar, with damage now and then."""
    shape = rng.random()
    if shape < 0.03:
        n = rng.choice([500, 5000, 9990, 9996, 12000])
        return ["("] * n + ["sport", "=", ":1"] + [")"] * n
    if shape < 0.06:
        return ["!"] * rng.choice([1000, 9995, 9996, 20000]) + ["autobound"]
    if shape < 0.09:
        op = rng.choice(["or", "and", ""])
        return " ".join(f"sport = :{i} {op}" for i in range(rng.randint(500, 3000))).split()[:-1]
    words: list[str] = []
    depth = 0
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.15:
            words.append(rng.choice(_KEYWORDS))
            depth += {"(": 1, ")": -1}.get(words[-1], 0)
            continue
        kw = rng.choice(["src", "dst", "sport", "dport", "dev", "fwmark", "cgroup", "autobound"])
        words.append(kw)
        if kw == "autobound":
            continue
        op = rng.choice(_OPS)
        if op:
            words.append(op)
        pool = {"src": _HOSTS, "dst": _HOSTS, "sport": _PORTS, "dport": _PORTS, "dev": _DEVS,
                "fwmark": _MARKS, "cgroup": _CGROUPS}[kw]  # fmt: skip
        words.append(rng.choice(pool))
        if rng.random() < 0.3:
            words.append(rng.choice(["and", "or", "&&", "||", ""]) or "and")
    words += [")"] * max(0, depth) if rng.random() < 0.8 else []
    if rng.random() < 0.05:
        words.insert(0, rng.choice(["state", "exclude"]))
        words.insert(1, rng.choice(["established", "bogus", "all", "big", "bucket", "\n"]))
    return [w for w in words if w or rng.random() < 0.5]


# --- damaged dumps ---------------------------------------------------------------------------
def _rta(rtype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), rtype) + payload
    return raw + b"\0" * (-len(raw) & 3)


def _base_dump(rng: random.Random) -> bytes:
    recs = []
    for i in range(rng.randint(1, 6)):
        family = rng.choice([socket.AF_INET, socket.AF_INET6])
        src = "127.0.0.1" if family == socket.AF_INET else "::1"
        state = rng.choice([1, 2, 6, 7, 10])
        rec = sd.record(
            family,
            state,
            src,
            1000 + i,
            src,
            80,
            7 + i,
            i,
            rq=rng.randint(0, 9),
            wq=rng.randint(0, 9),
            timer=rng.randint(0, 4),
            expires=rng.randint(0, 10**6),
        )
        attrs = b""
        if rng.random() < 0.7:
            attrs += _rta(2, bytes(rng.randrange(256) for _ in range(rng.choice([8, 104, 232]))))
            attrs += _rta(4, rng.choice([b"cubic\0", b"bbr\0", b"dctcp\0", b"x" * 20]))
        if rng.random() < 0.5:
            attrs += _rta(7, bytes(rng.randrange(256) for _ in range(rng.choice([16, 36]))))
        if rng.random() < 0.3:
            attrs += _rta(rng.randrange(30), bytes(rng.randrange(256) for _ in range(12)))
        body = rec[16:] + attrs
        recs.append(struct.pack("=IHHII", 16 + len(body), 20, 2, 0, 0) + body)
    return b"".join(recs) + sd.done()


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if not buf:
            break
        pos = rng.randrange(len(buf))
        if r < 0.3:
            buf[pos] = rng.randrange(256)
        elif r < 0.5 and pos + 4 <= len(buf):
            value = rng.choice([0, 1, 3, 4, 15, 16, 87, 88, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                                0xFFFFFFFF, rng.randrange(1 << 32)])  # fmt: skip
            buf[pos : pos + 4] = struct.pack("=I", value)
        elif r < 0.6 and pos + 2 <= len(buf):
            buf[pos : pos + 2] = struct.pack("=H", rng.choice([0, 3, 4, 5, 8, 0xFFFF]))
        elif r < 0.7:
            del buf[pos:]
        elif r < 0.8:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        elif r < 0.9:
            end = min(len(buf), pos + rng.randint(1, 200))
            buf[pos:pos] = buf[pos:end]
        else:
            del buf[pos : pos + rng.randint(1, 40)]
    return bytes(buf)


_DUMP_ARGS = [["-tan"], ["-tane"], ["-tani"], ["-tanm"], ["-tano"], ["-tan", "--json"],
              ["-tan", "--json-lines"], ["-tanieom"], ["-ta", "sport", "=", ":1000"],
              ["-tan", "-O", "-i"], ["-tanH"], ["-tanQ"]]  # fmt: skip


# --- damaged /proc trees ---------------------------------------------------------------------
def _proc_files(rng: random.Random) -> dict[str, bytes]:
    def tcp_line(i: int, v6: bool) -> bytes:
        addr = "00000000000000000000000001000000" if v6 else "0100007F"
        return (f"{i:4d}: {addr}:{1000 + i:04X} {addr}:0050 {rng.choice(['01', '0A', '06'])}"
                f" 00000000:00000000 00:00000000 00000000     0        0 {100 + i} 1 "
                "0000000000000000 20 4 30 10 -1\n").encode()  # fmt: skip

    head = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    return {
        "tcp": head + b"".join(tcp_line(i, False) for i in range(rng.randint(0, 5))),
        "tcp6": head + b"".join(tcp_line(i, True) for i in range(rng.randint(0, 5))),
        "udp": head + b"".join(tcp_line(i, False) for i in range(rng.randint(0, 3))),
        "raw": head + b"".join(tcp_line(i, False) for i in range(rng.randint(0, 2))),
        "unix": b"Num       RefCount Protocol Flags    Type St Inode Path\n"
        + b"".join(
            b"0000000000000000: 00000002 00000000 00010000 0001 01 %d /tmp/s%d\n" % (i, i)
            for i in range(rng.randint(0, 5))
        ),
        "packet": b"sk       RefCnt Type Proto  Iface R Rmem   User   Inode\n"
        b"0000000000000000 3      3    0003   1     1 0      0      1234\n",
        "netlink": b"sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n"
        b"0000000000000000 0   1          00000000 0        0        0     2        0        5\n",
        "sockstat": b"sockets: used 5\nTCP: inuse 1 orphan 0 tw 0 alloc 2 mem 1\nUDP: inuse 1 mem 0\n",
        "snmp": b"Tcp: RtoAlgorithm CurrEstab\nTcp: 1 3\n",
    }


def _mutate_text(rng: random.Random, data: bytes) -> bytes:
    r = rng.random()
    if r < 0.15:
        return data + b"x" * rng.choice([254, 255, 256, 1000])
    if r < 0.25:
        return data.rstrip(b"\n")
    if r < 0.35:
        return data.replace(b" ", b"  ", rng.randint(1, 5))
    if r < 0.45:
        return data.replace(b" ", b"\0", 1)
    return mutate(rng, data)


_PROC_ARGS = [["-tan"], ["-uan"], ["-wan"], ["-xa"], ["-0a"], ["-A", "netlink"], ["-s"],
              ["-tani"], ["-tane"], ["-an"], ["-xae"], ["-tan", "--json"]]  # fmt: skip


# --- the cases -------------------------------------------------------------------------------
def cases(kind: str, rng: random.Random, scratch: Path) -> Iterator[Case]:
    dump = scratch / "dump"
    dump.write_bytes(_base_dump(random.Random(0)))
    while True:
        if kind == "filters":
            words = random_filter(rng)
            yield ["-tan", *words], {"TCPDIAG_FILE": str(dump)}
        elif kind == "dumps":
            data = _base_dump(rng)
            dump.write_bytes(mutate(rng, data) if rng.random() < 0.95 else data)
            yield list(rng.choice(_DUMP_ARGS)), {"TCPDIAG_FILE": str(dump)}
        elif kind == "proc":
            net = scratch / "proc" / "net"
            net.mkdir(parents=True, exist_ok=True)
            for name, data in _proc_files(rng).items():
                path = net / name
                if path.is_symlink():
                    path.unlink()
                if rng.random() < 0.05:
                    path.unlink(missing_ok=True)
                    continue
                path.write_bytes(_mutate_text(rng, data) if rng.random() < 0.4 else data)
            yield list(rng.choice(_PROC_ARGS)), {"PROC_ROOT": str(scratch / "proc")}
        elif kind == "env":
            columns = rng.choice(["99999999", "2147483648", "-1", "0", "1", "80", " 7x",
                                  str((rng.randrange(1 << 32) << 32) + rng.randrange(-999, 9999)),
                                  "9" * rng.randint(1, 40),
                                  "\xff", ""])  # fmt: skip
            yield ["-tan", *rng.choice([[], ["-e"], ["-i"], ["-O"]])], {
                "TCPDIAG_FILE": str(dump), "COLUMNS": columns}  # fmt: skip
        else:
            raise SystemExit(f"unknown kind {kind}")


#: statuses ss gives: 0, 1 (perror paths), 255 (usage); env cases may die of SIGPIPE
STATUSES = {0, 1, 255}


def run_inprocess(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes, str | None]:
    """sockscope.cli.main(argv) with ``env`` as os.environ; (status, out, err, traceback)."""
    from sockscope.cli import main

    saved_env = dict(os.environ)
    saved = sys.stdout, sys.stderr
    out, err = io.BytesIO(), io.BytesIO()
    wout = io.TextIOWrapper(out, encoding="latin-1", write_through=True)
    werr = io.TextIOWrapper(err, encoding="latin-1", write_through=True)
    sys.stdout, sys.stderr = wout, werr
    os.environ.clear()
    os.environ.update({"PATH": saved_env.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", **env})
    tb = None
    try:
        status = main(argv)
    except SystemExit as e:
        status = int(e.code or 0)
    except BaseException:  # a traceback is the finding
        status, tb = -1, traceback.format_exc()
    finally:
        for wrapper in (wout, werr):
            with contextlib.suppress(Exception):
                wrapper.flush()
                wrapper.detach()  # keep the BytesIO open when the wrapper goes
        sys.stdout, sys.stderr = saved
        os.environ.clear()
        os.environ.update(saved_env)
        gc.enable()
    return status, out.getvalue(), err.getvalue(), tb


def run_subprocess(
    argv: list[str], env: dict[str, str], program: list[str]
) -> tuple[int, bytes, bytes, str | None]:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
            "PYTHONPATH": str(HERE.parent.parent / "src"), **env}  # fmt: skip
    with tempfile.TemporaryFile() as err:
        p = subprocess.run([*program, *argv], stdout=subprocess.DEVNULL, stderr=err,
                           stdin=subprocess.DEVNULL, env=full, timeout=120, check=False)  # fmt: skip
        err.seek(0)
        stderr = err.read()
    tb = stderr.decode("latin-1") if b"Traceback" in stderr or b"MemoryError" in stderr else None
    return p.returncode, b"", stderr, tb


def run_oracle(oracle: str, argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", **env}
    p = subprocess.run([oracle, *argv], capture_output=True, stdin=subprocess.DEVNULL,
                       env=full, timeout=120, check=False)  # fmt: skip
    return p.returncode, p.stdout, p.stderr.replace(oracle.encode(), b"sockscope")


def campaign(
    kind: str, seed: int, count: int, oracle: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, object]:  # fmt: skip
    rng = random.Random(seed)
    failures: list[dict[str, object]] = []
    mismatches: list[dict[str, object]] = []
    crashes = 0
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for argv, env in cases(kind, rng, scratch):
            if count and n >= count:
                break
            n += 1
            if kind == "env":
                got = run_subprocess(argv, env, [sys.executable, "-m", "sockscope"])
                ok = got[0] in STATUSES
            else:
                got = run_inprocess(argv, env)
                ok = got[0] in STATUSES
            if got[3] is not None or not ok:
                failures.append({"argv": argv, "env": env, "status": got[0],
                                 "traceback": (got[3] or got[2].decode("latin-1"))[-2000:]})  # fmt: skip
            if oracle and kind != "env":
                want = run_oracle(oracle, argv, env)
                if want[0] < 0:
                    crashes += 1
                elif want != got[:3]:
                    mismatches.append({"argv": argv[:40], "env": env, "ss": want[0], "ours": got[0],
                                       "ss_err": want[2][:300].decode("latin-1"),
                                       "our_err": got[2][:300].decode("latin-1")})  # fmt: skip
            if progress is not None:
                for found in (failures, mismatches):
                    if found and found[-1].get("_n") is None:
                        found[-1]["_n"] = n
                        print(json.dumps(found[-1])[:3000], file=sys.__stderr__, flush=True)
                if n % 100 == 0:
                    progress(n)
    return {"kind": kind, "seed": seed, "cases": n, "failures": failures,
            "mismatches": mismatches, "ss_crashes": crashes}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["filters", "dumps", "proc", "env"])
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--count", type=int, default=200, help="0: until interrupted")
    ap.add_argument("--oracle", help="upstream ss 7.1, to compare with")
    ap.add_argument("--as-limit-mib", type=int, default=1024, help="RLIMIT_AS of this process")
    args = ap.parse_args()
    import resource

    cap = args.as_limit_mib << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    result: dict[str, object] = {}
    try:
        result = campaign(args.kind, args.seed, args.count, args.oracle,
                          lambda n: print(f"{n} cases", file=sys.__stderr__, flush=True))  # fmt: skip
    finally:
        print(json.dumps(result), file=sys.__stdout__, flush=True)


if __name__ == "__main__":
    main()
