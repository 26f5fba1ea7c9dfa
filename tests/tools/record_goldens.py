#!/usr/bin/env python3
"""Record golden cases for sockscope from an upstream iproute2 7.1 ``ss``.

Re-run the oracle over the recorded inputs (the ``--update-golden`` path)::

    python tests/tools/record_goldens.py --ss /path/to/ss-7.1 [--scenario NAME ...]

re-runs every existing case of every (or each named) scenario under
``tests/golden`` with its own ``argv`` and ``env`` and rewrites its ``stdout``
and ``status``; cases are neither added nor removed.  Nothing live is read, so
the result only depends on the oracle.  With ``--from-args`` (needs
``--scenario``) the named scenarios' ``cases/`` are instead rebuilt from the
argument list ``tests/tools/golden_args.txt`` (after editing it).

Record a new scenario (root; needs ``ip`` and ``nsenter``)::

    python tests/tools/record_goldens.py --ss /path/to/ss-7.1 \
        --record scenario-5 --sockets 300 --seed 5

creates a private netns, fills it with ``tests/tools/fill.py`` (``up NAME N --seed S``;
the existing scenario-5 and scenario-21 were filled by an earlier, external tool), dumps
its TCP sockets with sockscope's own ``-D`` (``--dumper sockscope``; ``raw``
sends the same NETLINK_SOCK_DIAG requests as ``ss -tanoemi -D`` itself;
``auto``, the default, tries sockscope first), copies its /proc/net files,
deletes the netns, then records the cases from the argument list.

Argument list lines: ``t ARGS`` (TCP read from ``TCPDIAG_FILE``; TCP-only
arguments) or ``p ARGS`` (everything read under ``PROC_ROOT``), split like a
shell would split them; leading ``VAR=value`` words are extra environment
(``p COLUMNS=80 -an``).  Cases are numbered per kind in file order: t000...,
p000....  The oracle must print ``iproute2-7.1`` for ``-V``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
GOLDEN = TESTS / "golden"
ARGS_FILE = Path(__file__).resolve().parent / "golden_args.txt"
PROC_FILES = [
    "tcp",
    "tcp6",
    "udp",
    "udp6",
    "raw",
    "raw6",
    "unix",
    "packet",
    "netlink",
    "sockstat",
    "sockstat6",
    "snmp",
    "snmp6",
    "netstat",
    "icmp",
    "icmp6",
]
BASE_ENV = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C", "HOME": "/root"}
KINDS = {"t": ("TCPDIAG_FILE", "tcpdiag.bin"), "p": ("PROC_ROOT", "proc")}
ENV_WORD = re.compile(r"^[A-Z_][A-Z0-9_]*=")

# NETLINK_SOCK_DIAG request, as ss -tanoemi -D sends it (strace of ss 7.1)
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
SS_ALL = 0x3FFF  # 14 state bits, bound-inactive included (ss 7.1)
# 1 << (INET_DIAG_x - 1) for MEMINFO(1), INFO(2), VEGASINFO(3), CONG(4), SKMEMINFO(7)
EXTENSIONS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 6)
SEQ = 123456


def die(msg: str) -> None:
    sys.exit(f"record_goldens: {msg}")


def oracle_version(ss: str) -> None:
    out = subprocess.run([ss, "-V"], capture_output=True, text=True, check=False).stdout
    if "iproute2-7.1" not in out:
        die(f"{ss} -V says {out.strip()!r}, want iproute2-7.1")


def read_args(path: Path) -> list[tuple[str, dict[str, str], list[str]]]:
    """(kind, extra env, argv) per non-comment line of the argument list."""
    entries = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition(" ")
        if kind not in KINDS:
            die(f"{path}:{lineno}: line must start with 't ' or 'p '")
        words = shlex.split(rest)
        env = {}
        while words and ENV_WORD.match(words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        entries.append((kind, env, words))
    return entries


# ---------------------------------------------------------------- recording inputs


def raw_dump(path: str) -> None:
    """Write a TCP inet_diag dump (AF_INET, then AF_INET6) of the current netns, like ss -D."""
    with open(path, "wb") as out:
        for family in (socket.AF_INET, socket.AF_INET6):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
            sock.bind((0, 0))
            req = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, EXTENSIONS, SS_ALL)
            req += bytes(48)  # inet_diag_sockid: ports, addresses, ifindex, cookie all zero
            hdr = struct.pack(
                "=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, SEQ, 0
            )
            sock.sendto(hdr + req, (0, 0))
            done = False
            while not done:
                buf = sock.recv(1 << 20)
                if not buf:
                    die("netlink: empty read")
                off = 0
                while off + 16 <= len(buf):
                    length, mtype = struct.unpack_from("=IH", buf, off)
                    if mtype == NLMSG_ERROR:
                        die("netlink: error in TCP dump")
                    if mtype == NLMSG_DONE:
                        done = True
                        buf = buf[: off + length]
                        break
                    off += (length + 3) & ~3
                out.write(buf)
            sock.close()


def valid_dump(path: Path) -> bool:
    """True if ``path`` holds whole netlink messages ending with two NLMSG_DONE."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    off = dones = 0
    while off + 16 <= len(data):
        length, mtype = struct.unpack_from("=IH", data, off)
        if length < 16:
            return False
        dones += mtype == NLMSG_DONE
        if mtype not in (NLMSG_DONE, SOCK_DIAG_BY_FAMILY):
            return False
        off += (length + 3) & ~3
    return off == len(data) and dones == 2


def dump_tcp(netns: str, out: Path, dumper: str) -> str:
    ns = ["nsenter", f"--net=/var/run/netns/{netns}"]
    if dumper in ("auto", "sockscope"):
        env = dict(BASE_ENV, PYTHONPATH=str(REPO / "src"))
        out.unlink(missing_ok=True)
        cmd = [*ns, sys.executable, "-m", "sockscope", "-tanoemi", "-D", str(out)]
        subprocess.run(cmd, env=env, capture_output=True, check=False, timeout=120)
        if valid_dump(out):
            return "sockscope -tanoemi -D"
        if dumper == "sockscope":
            die("sockscope -D did not write a valid dump")
    subprocess.run([*ns, sys.executable, __file__, "_rawdump", str(out)], check=True)
    if not valid_dump(out):
        die("raw dump is not valid")
    return "raw NETLINK_SOCK_DIAG dump (same request as ss -tanoemi -D)"


def record_inputs(a: argparse.Namespace, scen: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fill

    netns = f"sockscope-rec-{os.getpid()}"
    try:
        report = fill.up(netns, a.sockets, a.seed)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        die(f"fill.py up failed: {e}")
    try:
        time.sleep(a.settle)
        if scen.exists():
            shutil.rmtree(scen)
        (scen / "proc" / "net").mkdir(parents=True)
        how = dump_tcp(netns, scen / "tcpdiag.bin", a.dumper)
        for name in PROC_FILES:
            p = subprocess.run(
                ["nsenter", f"--net=/var/run/netns/{netns}", "cat", f"/proc/net/{name}"],
                capture_output=True,
                check=False,
            )
            if p.returncode == 0:
                (scen / "proc" / "net" / name).write_bytes(p.stdout)
        (scen / "RECORDED").write_text(
            f"fill.py up NAME {a.sockets} --seed {a.seed}\n{report['counts']}\n"
            f"tcpdiag.bin: {how}\nkernel: {os.uname().release}\n"
        )
        print(report["counts"])
    finally:
        fill.down(netns)


# ---------------------------------------------------------------- recording outputs


def case_env(scen: Path, case: Path) -> dict[str, str]:
    """The environment of a recorded case (input paths are relative to the scenario)."""
    env = dict(BASE_ENV)
    for line in (case / "env").read_text().splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            is_path = key in ("TCPDIAG_FILE", "PROC_ROOT", "PROC_IP_LOCAL_PORT_RANGE")
            env[key] = str(scen / value) if is_path or key.startswith("PROC_NET_") else value
    return env


def rerun_cases(ss: str, scen: Path) -> int:
    """Re-run the oracle on every existing case of ``scen``, in place."""
    n = 0
    for case in sorted((scen / "cases").iterdir()):
        if not (case / "argv").is_file():
            continue
        argv = (case / "argv").read_text().splitlines()
        p = subprocess.run(
            [ss, *argv],
            env=case_env(scen, case),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        (case / "stdout").write_bytes(p.stdout)
        (case / "status").write_text(f"{p.returncode}\n")
        n += 1
    return n


def record_cases(ss: str, scen: Path, entries: list) -> int:
    cases = scen / "cases"
    shutil.rmtree(cases, ignore_errors=True)
    counters = {"t": 0, "p": 0}
    for kind, extra, argv in entries:
        var, rel = KINDS[kind]
        if not (scen / rel).exists():
            continue
        name = f"{kind}{counters[kind]:03d}"
        counters[kind] += 1
        env = dict(BASE_ENV, **extra, **{var: str(scen / rel)})
        p = subprocess.run(
            [ss, *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        d = cases / name
        d.mkdir(parents=True)
        (d / "argv").write_text("".join(x + "\n" for x in argv))
        (d / "env").write_text(f"{var}={rel}\n" + "".join(f"{k}={v}\n" for k, v in extra.items()))
        (d / "stdout").write_bytes(p.stdout)
        (d / "status").write_text(f"{p.returncode}\n")
    return sum(counters.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ss", required=True, help="upstream iproute2 7.1 ss (the oracle)")
    ap.add_argument("--args", default=str(ARGS_FILE), help="argument list (default: %(default)s)")
    ap.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="only rebuild these scenarios (folder names under tests/golden)",
    )
    ap.add_argument(
        "--from-args",
        action="store_true",
        help="rebuild the --scenario cases from the argument list instead of re-running them",
    )
    ap.add_argument("--record", metavar="NAME", help="record new inputs into tests/golden/NAME")
    ap.add_argument("--sockets", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dumper", choices=("auto", "sockscope", "raw"), default="auto")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds to wait after 'up'")
    if len(sys.argv) == 3 and sys.argv[1] == "_rawdump":
        raw_dump(sys.argv[2])
        return 0
    a = ap.parse_args()
    oracle_version(a.ss)
    entries = read_args(Path(a.args))
    if a.from_args and not a.scenario:
        die("--from-args needs --scenario NAME (other scenarios have their own cases)")
    if a.record:
        if os.geteuid() != 0:
            die("--record needs root")
        record_inputs(a, GOLDEN / a.record)
        names, rebuild = [a.record], True
    else:
        names = a.scenario or sorted(p.name for p in GOLDEN.iterdir() if (p / "cases").is_dir())
        rebuild = a.from_args
    ss = os.path.abspath(a.ss)
    for name in names:
        if not (GOLDEN / name).is_dir():
            die(f"no scenario {GOLDEN / name}")
        n = record_cases(ss, GOLDEN / name, entries) if rebuild else rerun_cases(ss, GOLDEN / name)
        print(f"{name}: {n} cases {'rebuilt from ' + a.args if rebuild else 're-run'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
