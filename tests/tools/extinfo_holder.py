"""Rich TCP socket set for -i/-m goldens: run inside a private netns (lo only)."""

import os
import socket
import struct
import subprocess
import sys
import time

keep = []


def listener(addr, port, backlog=16, fam=socket.AF_INET, proto=0):
    s = socket.socket(fam, socket.SOCK_STREAM, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(backlog)
    keep.append(s)
    return s


def pair(l, addr, cc=None, fam=socket.AF_INET, proto=0, opts=()):
    c = socket.socket(fam, socket.SOCK_STREAM, proto)
    for lvl, opt, val in opts:
        c.setsockopt(lvl, opt, val)
    if cc:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc)
    c.connect((addr, l.getsockname()[1]))
    s, _ = l.accept()
    keep.extend([c, s])
    return c, s


l = listener("127.0.0.1", 7101)
for cc in (b"bbr", b"cubic", b"reno"):
    c, s = pair(l, "127.0.0.1", cc)
    c.sendall(b"a" * 300000)
    s.recv(100000)
    s.sendall(b"b" * 1000)
# zero window: receiver never reads, tiny buffers -> persist timer, notsent, rwnd_limited
c, s = pair(l, "127.0.0.1", b"cubic", opts=[(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)])
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
c.setblocking(False)
try:
    for _ in range(200):
        c.send(b"z" * 65536)
except BlockingIOError:
    pass
# ECN negotiated connection
try:
    subprocess.run(["sysctl", "-qw", "net.ipv4.tcp_ecn=1"], check=True)
    c, s = pair(l, "127.0.0.1", b"cubic")
    c.sendall(b"e" * 5000)
    s.recv(5000)
finally:
    subprocess.run(["sysctl", "-qw", "net.ipv4.tcp_ecn=2"])
# TCP-MD5 listener, key with blank, comma, backslash, control byte
m = socket.socket()
m.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
m.bind(("127.0.0.1", 7103))
key = b"sec ret,\\k\x01"
sa = struct.pack("=HH4s", socket.AF_INET, 0, socket.inet_aton("127.0.0.1")) + bytes(120)
m.setsockopt(
    socket.IPPROTO_TCP,
    14,
    sa + struct.pack("=BBHI", 0, 0, len(key), 0) + key + bytes(80 - len(key)),
)
m.listen(1)
keep.append(m)
# kernel TLS (ULP tls, TX aes-gcm-128 sw)
try:
    c, s = pair(l, "127.0.0.1", b"cubic")
    c.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
    info = struct.pack("=HH", 0x0303, 51) + bytes(8) + bytes(16) + bytes(4) + bytes(8)
    c.setsockopt(282, 1, info)  # SOL_TLS, TLS_TX
    s.setsockopt(socket.IPPROTO_TCP, 31, b"tls")
    s.setsockopt(
        282, 2, struct.pack("=HH", 0x0304, 52) + bytes(8) + bytes(32) + bytes(4) + bytes(8)
    )  # TLS_RX 1.3 aes-256
except OSError as e:
    print("tls:", e, file=sys.stderr)
# MPTCP pair: its subflows are TCP sockets with the mptcp ULP
try:
    subprocess.run(["sysctl", "-qw", "net.mptcp.enabled=1"], check=False)
    ml = listener("127.0.0.1", 7104, proto=262)
    c, s = pair(ml, "127.0.0.1", proto=262)
    c.sendall(b"m" * 10)
    s.recv(10)
except OSError as e:
    print("mptcp:", e, file=sys.stderr)
# SYN-SENT with retransmissions: accept queue full, syncookies off
subprocess.run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=0"])
full = listener("127.0.0.1", 7105, backlog=0)
for _ in range(3):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", 7105))
    except BlockingIOError:
        pass
    keep.append(c)
# IPv6 pair (in the second dump only)
l6 = listener("::1", 7106, fam=socket.AF_INET6)
pair(l6, "::1", b"bbr", fam=socket.AF_INET6)
time.sleep(1.5)
print("ready", os.getpid(), flush=True)
sys.stdin.read()
