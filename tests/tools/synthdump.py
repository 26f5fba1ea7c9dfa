"""Build synthetic inet_diag dumps (the TCPDIAG_FILE / ``ss -D`` format) for tests.

The layout is the kernel's (include/uapi/linux/inet_diag.h): each record is an
nlmsghdr (len, type=SOCK_DIAG_BY_FAMILY, flags=NLM_F_MULTI, seq, pid) followed by a
struct inet_diag_msg of 72 bytes and no attributes; the dump ends with NLMSG_DONE.
The sockets are made up but deterministic, so a test can regenerate the same bytes
that the upstream ss oracle was run on.
"""

from __future__ import annotations

import socket
import struct

NLMSGHDR = struct.Struct("=IHHII")
# family, state, timer, retrans, sport(be), dport(be), src, dst, if, cookie[2],
# expires, rqueue, wqueue, uid, inode
INET_DIAG_MSG = struct.Struct("=BBBB2s2s16s16sI2IIIIII")
SOCK_DIAG_BY_FAMILY = 20
NLMSG_DONE = 3
NLM_F_MULTI = 2


def record(
    family: int,
    state: int,
    src: str,
    sport: int,
    dst: str,
    dport: int,
    inode: int,
    cookie: int,
    rq: int = 0,
    wq: int = 0,
    timer: int = 0,
    expires: int = 0,
) -> bytes:
    raw_src = socket.inet_pton(family, src).ljust(16, b"\0")
    raw_dst = socket.inet_pton(family, dst).ljust(16, b"\0")
    body = INET_DIAG_MSG.pack(
        family,
        state,
        timer,
        0,
        sport.to_bytes(2, "big"),
        dport.to_bytes(2, "big"),
        raw_src,
        raw_dst,
        0,
        cookie & 0xFFFFFFFF,
        cookie >> 32,
        expires,
        rq,
        wq,
        0,
        inode,
    )
    return NLMSGHDR.pack(16 + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, 123456, 0) + body


def done() -> bytes:
    return NLMSGHDR.pack(20, NLMSG_DONE, NLM_F_MULTI, 123456, 0) + b"\0\0\0\0"


def big_dump(n4: int = 60000, n6: int = 12000) -> bytes:
    """n4 IPv4 then n6 IPv6 established sockets: wide enough that ss renders in batches,
    and the IPv6 rows come after the first batch (so the widths grow mid-output); the
    very last row has the longest inode (its extra-info cell is the one ss never
    measures)."""
    out = []
    for i in range(n4):
        out.append(
            record(
                socket.AF_INET,
                1,
                f"127.0.{i % 200}.{1 + i % 250}",
                1024 + i % 60000,
                "127.0.0.1",
                80 + i % 7,
                10000 + i,
                0x100000 + i,
                rq=i % 3,
                wq=(i * 7) % 11,
            )
        )
    for i in range(n6):
        inode = 10**9 + i if i == n6 - 1 else 20000 + i
        out.append(
            record(
                socket.AF_INET6,
                1 + i % 11,
                f"2001:db8::{i % 9999:x}",
                2000 + i,
                "::1",
                443,
                inode,
                0x200000 + i,
                timer=(i % 5),
                expires=i * 37,
            )
        )
    out.append(done())
    return b"".join(out)


if __name__ == "__main__":
    import sys

    sys.stdout.buffer.write(big_dump())
