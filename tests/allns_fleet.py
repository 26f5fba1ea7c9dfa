"""Live-test helper for ``--all-netns``: a fleet of private network namespaces with sockets.

:class:`Fleet` creates (and :meth:`Fleet.close` removes, whatever happened):

* named namespaces (``ip netns add sockscope-allns-<pid>-<i>``), most with a holder
  process entered with ``nsenter --net=/var/run/netns/NAME``, some with no process;
* unnamed namespaces held only by a process (``unshare -n``);
* one held only by a bind mount (``unshare --net=FILE``, no process);
* fake container cgroups under the cgroup2 mount (``sockscope-allns-<pid>/...``), one per
  runtime shape of :data:`SHAPES`, each with one holder moved into it.

Each holder opens sockets on loopback only (a TCP listener with an established pair and
an IPv6 listener, a bound UDP socket, an abstract UNIX listener and a socketpair) on
ports of its own, prints ``ready`` and keeps them until its stdin closes.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

HOLDER = r"""
import socket, sys
port, tag = int(sys.argv[1]), sys.argv[2]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(8)
c = socket.create_connection(("127.0.0.1", port))
s, _ = l.accept()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", port + 1))
l6 = socket.socket(socket.AF_INET6)
l6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
l6.bind(("::1", port + 2))
l6.listen(4)
x = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
x.bind("\0" + tag)
x.listen(1)
pair = socket.socketpair()
keep = [l, c, s, u, l6, x, pair]
print("ready", flush=True)
sys.stdin.read()
"""

ID = "{:064x}"
UID = "{:08x}-7c4b-4e26-9d3f-{:012x}"
#: runtime shape -> (cgroup path under the test's cgroup, expected (runtime, id, pod, unit))
SHAPES: dict[str, tuple[str, tuple[str | None, str | None, str | None, str | None]]] = {
    "docker": ("system.slice/docker-{id}.scope", ("docker", "{id}", None, "docker-{id}.scope")),
    "docker-cgroupfs": ("docker/{id}", ("docker", "{id}", None, None)),
    "containerd-k8s": (
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/"
        "cri-containerd-{id}.scope",
        ("containerd", "{id}", "{uid}", "cri-containerd-{id}.scope"),
    ),
    "crio-k8s": (
        "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/"
        "crio-{id}.scope",
        ("cri-o", "{id}", "{uid}", "crio-{id}.scope"),
    ),
    "podman": (
        "machine.slice/libpod-{id}.scope/container",
        ("podman", "{id}", None, "libpod-{id}.scope"),
    ),
    "cri-cgroupfs": ("kubepods/besteffort/pod{uid}/{id}", ("cri", "{id}", "{uid}", None)),
    "unit": ("system.slice/sockscope-allns.service", (None, None, None, "sockscope-allns.service")),
}


def cgroup2_mount() -> str | None:
    """Where the unified (v2) hierarchy is mounted, if it is."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            if tail.startswith("cgroup2 "):
                return head.split(" ")[4]
    return None


class Holder:
    """A process holding sockets in a namespace (started by ``argv_prefix``)."""

    def __init__(self, prefix: list[str], port: int, tag: str) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-c", HOLDER, str(port), tag],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        if not ready or self.proc.stdout.readline() != b"ready\n":
            self.close()
            raise RuntimeError("socket holder did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


class Member:
    """One namespace of the fleet and what the test expects of it."""

    def __init__(self, handle: str, name: str | None, holder: Holder | None) -> None:
        self.handle = handle
        self.name = name
        self.holder = holder
        self.path: str | None = None
        self.shape: str | None = None
        self.expect: tuple[str | None, str | None, str | None, str | None] | None = None
        st = os.stat(handle)
        self.inode = st.st_ino
        self.dev = st.st_dev


class Fleet:
    """Named, unnamed and bind-mounted namespaces with holders in container cgroups."""

    def __init__(self, named: int = 12, empty_named: int = 3, unnamed: int = 8) -> None:
        self.tag = f"sockscope-allns-{os.getpid()}"
        self.members: list[Member] = []
        self.holders: list[Holder] = []
        self.names: list[str] = []
        self.bind_dir = Path(f"/run/{self.tag}")
        self.bind_file: Path | None = None
        self.cgroup_root: Path | None = None
        try:
            self._build(named, empty_named, unnamed)
        except BaseException:
            self.close()
            raise

    def _port(self) -> int:
        return 7300 + 10 * len(self.members)

    def _build(self, named: int, empty_named: int, unnamed: int) -> None:
        for i in range(named):
            name = f"{self.tag}-{i}"
            subprocess.run(["ip", "netns", "add", name], check=True)
            self.names.append(name)
            path = f"/var/run/netns/{name}"
            subprocess.run(
                ["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"], check=True
            )
            holder = None
            if i >= empty_named:
                holder = Holder(["nsenter", f"--net={path}"], self._port(), f"{name}-x")
                self.holders.append(holder)
            self.members.append(Member(path, name, holder))
        for i in range(unnamed):
            port = self._port()
            prefix = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "holder"]
            holder = Holder(prefix, port, f"{self.tag}-u{i}")
            self.holders.append(holder)
            self.members.append(Member(f"/proc/{holder.pid}/ns/net", None, holder))
        self.bind_dir.mkdir(parents=True, exist_ok=True)
        self.bind_file = self.bind_dir / "bound"
        self.bind_file.touch()
        subprocess.run(["unshare", f"--net={self.bind_file}", "true"], check=True)
        member = Member(str(self.bind_file), None, None)
        member.path = str(self.bind_file)
        self.members.append(member)
        self._cgroups()

    def _cgroups(self) -> None:
        mount = cgroup2_mount()
        if mount is None:
            return
        self.cgroup_root = Path(mount) / self.tag
        self.cgroup_root.mkdir()
        held = [m for m in self.members if m.holder is not None]
        # the unnamed holders first: attribution must not need a name
        held.sort(key=lambda m: m.name is not None)
        for n, (shape, (template, expect)) in enumerate(SHAPES.items()):
            member = held[n]
            values = {
                "id": ID.format(0x5C0FE + n),
                "uid": UID.format(0xABC00 + n, 0x1234 + n),
            }
            values["uid_"] = values["uid"].replace("-", "_")
            directory = self.cgroup_root / template.format(**values)
            directory.mkdir(parents=True)
            assert member.holder is not None
            (directory / "cgroup.procs").write_text(str(member.holder.pid))
            member.shape = shape
            member.expect = tuple(  # type: ignore[assignment]
                None if e is None else e.format(**values) for e in expect
            )

    def close(self) -> None:
        for holder in self.holders:
            holder.close()
        if self.cgroup_root is not None and self.cgroup_root.exists():
            for _ in range(50):  # exited processes leave their cgroup asynchronously
                try:
                    for d in sorted(self.cgroup_root.rglob("*"), key=lambda p: -len(p.parts)):
                        if d.is_dir():
                            d.rmdir()
                    self.cgroup_root.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        if self.bind_file is not None:
            subprocess.run(["umount", str(self.bind_file)], capture_output=True, check=False)
        shutil.rmtree(self.bind_dir, ignore_errors=True)
