"""``--watch``'s snapshot requests: what it asks the kernel for, and the fallback.

A snapshot of TCP in both families is one TCPDIAG_GETSOCK dump (the kernel walks its
hash tables once for both families) instead of a SOCK_DIAG_BY_FAMILY dump per family; a
kernel that refuses it gets the per-family requests in the same snapshot and from then
on. Live (root), in a private namespace: the three ways list the same sockets.
"""

from __future__ import annotations

import pytest

import netns

REASON = netns.live_reason()
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")

DRIVER = r"""
import json, socket, struct
import sockscope
from sockscope.kernel import abi
from sockscope.ops.watch import Snapshotter

held = []
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    lsock = socket.socket(family)
    lsock.bind((host, 0))
    lsock.listen()
    for _ in range(3):
        held.append(socket.create_connection(lsock.getsockname()[:2]))
        held.append(lsock.accept()[0])
    held.append(lsock)
bound = socket.socket()
bound.bind(("127.0.0.1", 0))  # bound-inactive: the bind table's part of the dump
held.append(bound)

def listed(snap):
    tables, _ = snap.take({})
    # (state, the ports, the cookie) of each reply: nlmsghdr + inet_diag_msg
    return sorted((m[17], m[20:24].hex(), m[60:68].hex())
                  for m in tables[abi.IPPROTO_TCP].values())

def shapes(snap):
    return [(p, struct.unpack_from("=H", r, 4)[0], len(i)) for p, r, i in snap.requests]

out = {}
for name, tables, families in (("both", {"tcp"}, None), ("v4", {"tcp"}, "inet")):
    query = sockscope.Query(tables=tables, states={"all"})
    if families:
        query = sockscope.Query(tables=tables, states={"all"}, families={families})
    sel = query.selection()
    snap = Snapshotter(sel, False, None)
    out[name] = {"requests": shapes(snap), "listed": listed(snap)}
    per_family = Snapshotter(sel, False, None)
    per_family.requests = [(p, r, []) for p, legacy, i in per_family.requests for r in i or [legacy]]
    out[name]["per_family"] = listed(per_family)
    if name != "both":
        continue
    refused = Snapshotter(sel, False, None)
    p, legacy, instead = refused.requests[0]
    short = legacy[:16 + 8]  # shorter than struct inet_diag_req: EINVAL
    short = struct.pack("=I", len(short)) + short[4:]
    refused.requests[0] = (p, short, instead)
    out[name]["refused"] = listed(refused)
    out[name]["after_refusal"] = shapes(refused)
    out[name]["refused_again"] = listed(refused)
print(json.dumps(out))
"""


@pytest.mark.live
@needs_root
def test_one_dump_for_both_families_and_the_fallback(backend: str) -> None:
    got = netns.driver_json("sockscope-wreq", DRIVER)
    both, v4 = got["both"], got["v4"]
    # both families: one TCPDIAG_GETSOCK (18) request, the two per-family ones behind it
    assert both["requests"] == [[6, 18, 2]]
    # 2 listeners, 12 connected ends, 1 bound-inactive socket (states 10, 1, 7)
    states = sorted(s for s, _, _ in both["listed"])
    assert states == sorted([10] * 2 + [1] * 12 + [7])
    assert both["listed"] == both["per_family"] == both["refused"] == both["refused_again"]
    assert both["after_refusal"] == [[6, 20, 0], [6, 20, 0]]
    # one family: the per-family request only (the legacy dump would list both)
    assert v4["requests"] == [[6, 20, 0]]
    assert sorted(s for s, _, _ in v4["listed"]) == sorted([10] + [1] * 6 + [7])
    assert v4["listed"] == v4["per_family"]
