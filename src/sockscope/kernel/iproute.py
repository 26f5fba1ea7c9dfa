"""What iproute2's lib/ gives ss besides netlink: the /proc path rule (lib/fs.c), the
built-in protocol name tables (lib/ll_proto.c, lib/rt_names.c) and the ephemeral port
range of is_ephemeral. Written once; the filter parser, the rows and the tables use these.
"""

from __future__ import annotations

import os

from sockscope.kernel.libc import c_strtol, int32

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def proc_path(
    name: str, env_var: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """Port of lib/fs.c's generic_proc_open path rule: $ENV_VAR, else $PROC_ROOT/name."""
    env = os.environ if environ is None else environ
    if env_var and env_var in env:
        return env[env_var]
    root = env.get("PROC_ROOT", "/proc")
    return f"{root}/{name}"


def find_cgroup2_mount(warn: Callable[[str], None]) -> str | None:
    """lib/fs.c's find_cgroup2_mount(false): the first cgroup2 mount of /proc/mounts,
    or None after its two messages (the first only when the file cannot be opened: with
    RLIMIT_NOFILE spent, for one)."""
    try:
        fp = open("/proc/mounts", "rb")  # noqa: SIM115 - closed below; its failure alone is reported
    except OSError as e:
        warn(f"Failed to open mounts file: {e.strerror}")
    else:
        with fp:
            try:
                for line in fp:
                    fields = line.split()
                    if len(fields) >= 3 and fields[2] == b"cgroup2":
                        return os.fsdecode(fields[1][:4095])
            except OSError:
                pass
    warn("Failed to find cgroup2 mount")
    return None


#: llproto_names[] of lib/ll_proto.c, in table order (the first match wins).
LL_PROTO_NAMES: tuple[tuple[int, str], ...] = (
    (0x0060, "loop"), (0x0200, "pup"), (0x0201, "pupat"), (0x0800, "ip"),
    (0x0805, "x25"), (0x0806, "arp"), (0x08FF, "bpq"), (0x0A00, "ieeepup"),
    (0x0A01, "ieeepupat"), (0x6000, "dec"), (0x6001, "dna_dl"), (0x6002, "dna_rc"),
    (0x6003, "dna_rt"), (0x6004, "lat"), (0x6005, "diag"), (0x6006, "cust"),
    (0x6007, "sca"), (0x8035, "rarp"), (0x809B, "atalk"), (0x80F3, "aarp"),
    (0x8137, "ipx"), (0x86DD, "ipv6"), (0x8863, "ppp_disc"), (0x8864, "ppp_ses"),
    (0x884C, "atmmpoa"), (0x8884, "atmfate"), (0x0001, "802_3"), (0x0002, "ax25"),
    (0x0003, "all"), (0x0004, "802_2"), (0x0005, "snap"), (0x0006, "ddcmp"),
    (0x0007, "wan_ppp"), (0x0008, "ppp_mp"), (0x0009, "localtalk"), (0x000C, "can"),
    (0x0010, "ppptalk"), (0x0011, "tr_802_2"), (0x0015, "mobitex"), (0x0016, "control"),
    (0x0017, "irda"), (0x0018, "econet"), (0x88CA, "tipc"), (0x8892, "profinet"),
    (0x88A2, "aoe"), (0x88A4, "ethercat"), (0x8100, "802.1Q"), (0x88A8, "802.1ad"),
    (0x8847, "mpls_uc"), (0x8848, "mpls_mc"), (0x6558, "teb"), (0x8902, "cfm"),
    (0x8100, "802.1Q"), (0x88CC, "LLDP"), (0x0800, "ipv4"),
)  # fmt: skip

#: nl_proto_tab[] of lib/rt_names.c (the built-in names, by protocol number)
NL_PROTO_NAMES = {
    0: "rtnl", 1: "unused", 2: "usersock", 3: "fw", 4: "tcpdiag", 5: "nflog", 6: "xfrm",
    7: "selinux", 8: "iscsi", 9: "audit", 10: "fiblookup", 11: "connector", 12: "nft",
    13: "ip6fw", 14: "dec-rt", 15: "uevent", 16: "genl", 18: "scsi-trans", 19: "ecryptfs",
    20: "rdma", 21: "crypto",
}  # fmt: skip
#: where nl_proto_initialize looks (CONF_ETC_DIR, then CONF_USR_DIR if the first is absent)
NL_PROTOS_FILES = ("/etc/iproute2/nl_protos", "/usr/share/iproute2/nl_protos")


def ephemeral_range(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """is_ephemeral's range: ``fscanf(f, "%d %d")`` of ``$PROC_IP_LOCAL_PORT_RANGE`` or
    ``$PROC_ROOT/sys/net/ipv4/ip_local_port_range``, 1024-4999 when that fails."""
    path = proc_path("sys/net/ipv4/ip_local_port_range", "PROC_IP_LOCAL_PORT_RANGE", environ)
    try:
        with open(path, "rb") as fp:
            text = fp.read(4096).decode("latin-1")
    except OSError:
        return 1024, 4999
    low, end, _ = c_strtol(text, 10)
    high, end2, _ = c_strtol(text[end:], 10) if end else (0, 0, False)
    if not end or not end2:
        return 1024, 4999
    return int32(low), int32(high)
