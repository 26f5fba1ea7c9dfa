"""Which container a process belongs to, read from its cgroup path (``/proc/PID/cgroup``).

Container runtimes put every container in a cgroup whose name carries the container id,
and the kubelet puts every pod in one that carries the pod UID. :data:`RUNTIMES` is the
table of those shapes, one regular expression per layout (systemd driver: a
``<prefix>-<id>.scope`` unit; cgroupfs driver: a ``<dir>/<id>`` directory), tried in
order on each cgroup path of a process; :data:`POD` finds the Kubernetes pod UID
(``pod<uid>`` with ``-`` or, under the systemd driver, ``_``); :data:`UNIT` the systemd
unit (the last ``.service`` or ``.scope`` component). Shapes recognised::

    /system.slice/docker-<64hex>.scope                     docker (systemd driver)
    /docker/<64hex>                                        docker (cgroupfs driver)
    /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/
        cri-containerd-<64hex>.scope                       containerd, pod <uid>
    /system.slice/nerdctl-<64hex>.scope                    containerd (nerdctl)
    .../crio-<64hex>.scope, .../crio-conmon-<64hex>.scope  cri-o
    /machine.slice/libpod-<64hex>.scope[/container]        podman (also rootless, conmon)
    /libpod_parent/libpod-<64hex>                          podman (cgroupfs)
    /kubepods/besteffort/pod<uid>/<64hex>                  a CRI runtime (cgroupfs driver)
    /lxc.payload.<name>, /lxc/<name>                       lxc
    /machine.slice/systemd-nspawn@<name>.service           systemd-nspawn

A process's lines are read in this order: the unified (cgroup v2, ``0::``) line, the
``name=systemd`` line, then the v1 controllers in file order; the first path that names a
container wins.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

_ID = r"([0-9a-f]{64})"
_END = r"(?:\.scope)?(?=/|$)"

#: (runtime, pattern): group 1 is the container id
RUNTIMES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (runtime, re.compile(pattern))
    for runtime, pattern in (
        ("docker", rf"(?:^|/)docker-{_ID}\.scope(?=/|$)"),
        ("docker", rf"(?:^|/)docker/{_ID}(?=/|$)"),
        ("containerd", rf"(?:^|/)cri-containerd-{_ID}{_END}"),
        ("containerd", rf"(?:^|/)nerdctl-{_ID}{_END}"),
        ("cri-o", rf"(?:^|/)crio-(?:conmon-)?{_ID}{_END}"),
        ("podman", rf"(?:^|/)libpod-(?:conmon-)?{_ID}{_END}"),
        ("cri", rf"(?:^|/)kubepods\b[^/]*(?:/[^/]+)*?/pod[0-9a-f_-]+(?:\.slice)?/{_ID}(?=/|$)"),
        ("lxc", r"(?:^|/)lxc\.payload\.([^/]+)"),
        ("lxc", r"(?:^|/)lxc/([^/]+)"),
        ("systemd-nspawn", r"(?:^|/)systemd-nspawn@([^/]+)\.service(?=/|$)"),
    )
)
#: the Kubernetes pod UID: a UUID with - (cgroupfs) or _ (systemd), or a static pod's hash
POD = re.compile(
    r"(?:^|/)kubepods\b.*?(?:^|[/-])pod"
    r"([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})"
    r"(?:\.slice)?(?=/|$)"
)
#: the systemd unit a path ends in (slices are not units a process runs in)
UNIT = re.compile(r"(?:^|/)([^/]+\.(?:service|scope))(?:/[^/]*)?$")


class Container:
    """A container as its cgroup path shows it.

    ``runtime`` is one of ``docker``, ``containerd``, ``cri-o``, ``podman``, ``cri`` (a
    Kubernetes container whose runtime the path does not say), ``lxc`` or
    ``systemd-nspawn``; ``id`` the container id (64 hex digits) or name; ``pod_uid`` the
    Kubernetes pod UID (with ``-``) when the path is under ``kubepods``; ``cgroup`` the
    path it was read from.
    """

    __slots__ = ("cgroup", "id", "pod_uid", "runtime")

    def __init__(self, runtime: str, ident: str, pod_uid: str | None, cgroup: str) -> None:
        self.runtime = runtime
        self.id = ident
        self.pod_uid = pod_uid
        self.cgroup = cgroup

    def __repr__(self) -> str:
        pod = f", pod_uid={self.pod_uid!r}" if self.pod_uid else ""
        return f"Container({self.runtime!r}, {self.id!r}{pod})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Container) and (
            self.runtime,
            self.id,
            self.pod_uid,
            self.cgroup,
        ) == (other.runtime, other.id, other.pod_uid, other.cgroup)

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"runtime": self.runtime, "id": self.id}
        if self.pod_uid:
            d["pod_uid"] = self.pod_uid
        d["cgroup"] = self.cgroup
        return d

    def text(self) -> str:
        """``RUNTIME:ID`` and `` pod=UID``: the netns line's fields."""
        pod = f" pod={self.pod_uid}" if self.pod_uid else ""
        return f"container={self.runtime}:{self.id}{pod}"


def from_path(path: str) -> Container | None:
    """The container a cgroup path names, or None."""
    for runtime, pattern in RUNTIMES:
        m = pattern.search(path)
        if m:
            return Container(runtime, m.group(1), pod_uid(path), path)
    uid = pod_uid(path)
    if uid:
        return Container("cri", "", uid, path)
    return None


def pod_uid(path: str) -> str | None:
    """The Kubernetes pod UID in a cgroup path (``_`` turned into ``-``), or None."""
    m = POD.search(path)
    return m.group(1).replace("_", "-") if m else None


def unit(path: str) -> str | None:
    """The systemd unit a cgroup path is in (``nginx.service``, ``session-3.scope``)."""
    m = UNIT.search(path)
    return m.group(1) if m else None


def cgroup_paths(text: str) -> list[str]:
    """The paths of a ``/proc/PID/cgroup`` file: v2 first, then name=systemd, then v1."""
    unified: list[str] = []
    systemd: list[str] = []
    other: list[str] = []
    for line in text.splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path:
            continue
        if hier == "0" and not controllers:
            unified.append(path)
        elif controllers == "name=systemd":
            systemd.append(path)
        else:
            other.append(path)
    return unified + systemd + other


def read_cgroup(pid: int, proc: str = "/proc") -> str:
    """``/proc/PID/cgroup`` as text ('' when it cannot be read)."""
    try:
        with open(f"{proc}/{pid}/cgroup", "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return ""


class Attribution:
    """What a namespace's processes say about it: a container, else a systemd unit."""

    __slots__ = ("cgroup", "container", "unit")

    def __init__(
        self, container: Container | None = None, unit: str | None = None, cgroup: str | None = None
    ) -> None:
        self.container = container
        self.unit = unit
        self.cgroup = cgroup


#: how many of a namespace's processes are read (lowest pids first)
MAX_PIDS = 32


def attribute(pids: Iterable[int], read: Callable[[int], str] = read_cgroup) -> Attribution:
    """The container of the first process (lowest pid first) whose cgroup names one;
    else the systemd unit and cgroup path of the first process that has one.

    Only the first :data:`MAX_PIDS` processes are read.
    """
    found = Attribution()
    for n, pid in enumerate(sorted(pids)):
        if n >= MAX_PIDS:
            break
        paths = cgroup_paths(read(pid))
        for path in paths:
            container = from_path(path)
            if container is not None:
                return Attribution(container, unit(path), path)
        if found.cgroup is None and paths:
            found.cgroup = paths[0]
            found.unit = unit(paths[0])
    return found
