"""``--watch``: the order in which a snapshot and a destruction event arrive.

The kernel sends a socket's destruction event (``ss -E``) from a work queue once the
socket is freed, which is after it has left the hash tables a dump walks. A snapshot
taken in between no longer lists the socket, and its event is read after the snapshot.
These tests put the snapshot first on purpose (``step()`` before ``destroyed()``, the
order a loaded machine produces at random) and check the events as properties: every
socket is reported closed exactly once, and a connection that opened and closed between
two snapshots, listed only as its TIME-WAIT remnant, is reported by its event with its
``lifetime_max`` bound and last counters. Live (root), in a private namespace, both
backends (the driver runs in a subprocess: the backend is chosen once per process).
"""

from __future__ import annotations

import pytest

import netns

REASON = netns.live_reason()
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")

DRIVER = r"""
import json, socket, time
import sockscope
from sockscope.ops.watch import Watcher

def pair(lsock):
    c = socket.create_connection(lsock.getsockname())
    s, _ = lsock.accept()
    return c, s

def listener(port):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port))
    l.listen()
    return l

def out(changes):
    return [
        {"kind": c.kind, "cookie": c.cookie, "state": c.socket.state_name,
         "old_state": c.old_state, "lifetime": c.lifetime, "lifetime_max": c.lifetime_max,
         "counters": c.counters, "ports": [c.socket.local_port, c.socket.peer_port]}
        for c in changes
    ]

sel = sockscope.Query(tables={"tcp"}, states={"all"}).selection()
w = Watcher(sel, True)
phases = {}
w.baseline()
keep = listener(7401)
gone = listener(7402)
a_c, a_s = pair(gone)
phases["opened"] = out(w.destroyed() + w.step())
# B: opens, moves 3000 bytes and closes between two snapshots
b_c, b_s = pair(keep)
b_s.sendall(b"b" * 3000)
got = 0
while got < 3000:
    got += len(b_c.recv(4096))
b_c.close()
b_s.close()
time.sleep(0.3)  # freed, their events queued and not read yet
phases["short_step"] = out(w.step())
phases["short_events"] = out(w.destroyed())
# A and its listener close; the snapshot comes before their events are read
a_c.close()
a_s.close()
gone.close()
time.sleep(0.3)
phases["close_step"] = out(w.step())
phases["close_events"] = out(w.destroyed())
time.sleep(0.1)
phases["after"] = out(w.destroyed() + w.step())
w.close()
keep.close()
print(json.dumps(phases))
"""


@pytest.mark.live
@needs_root
def test_snapshot_before_destruction_events(backend: str) -> None:
    phases = netns.driver_json("sockscope-wrace", DRIVER)
    opened = phases["opened"]
    assert sorted((c["kind"], c["state"]) for c in opened) == [
        ("new", "ESTAB"),
        ("new", "ESTAB"),
        ("new", "LISTEN"),
        ("new", "LISTEN"),
    ]
    # B never made a snapshot: its client's TIME-WAIT remnant is silent, and both ends
    # come from their events, bounded by lifetime_max, with the 3000 bytes counted
    assert phases["short_step"] == []
    short = phases["short_events"]
    assert [c["kind"] for c in short] == ["closed", "closed"]
    assert len({c["cookie"] for c in short}) == 2
    for c in short:
        assert c["lifetime"] is None and 0 < c["lifetime_max"] < 5
        moved = c["counters"]["bytes_received" if c["ports"][0] != 7401 else "bytes_acked"]
        assert moved in (3000, 3001)
    # A and its listener: each of the three reported closed once, whichever of the
    # snapshot and the event told first; nothing else
    a_cookies = {c["cookie"] for c in opened if 7402 in c["ports"]}
    later = phases["close_step"] + phases["close_events"] + phases["after"]
    closed = [c["cookie"] for c in later if c["kind"] == "closed"]
    assert sorted(closed) == sorted(a_cookies)
    assert all(c["lifetime"] is not None for c in later if c["kind"] == "closed")
    assert {c["kind"] for c in later} <= {"closed", "state", "rate"}
