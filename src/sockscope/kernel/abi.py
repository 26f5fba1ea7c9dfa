"""The kernel ABI as data: numbers and struct layouts from the uapi headers.

Everything here mirrors ``include/uapi/linux/{netlink,sock_diag,inet_diag,tcp}.h`` and
iproute2's ``misc/ss.c`` enums. Layouts are precompiled :class:`struct.Struct` objects in
native byte order (netlink is host-endian; the fields the kernel keeps in network order,
such as ports and addresses, are documented where they appear). Names keep the C field
names. No logic lives here.
"""

from __future__ import annotations

import _struct as struct  # the C module: struct.py only re-exports it (a module less to start)

# --- netlink.h -------------------------------------------------------------------------
NETLINK_SOCK_DIAG = 4
NETLINK_ROUTE = 0
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
SOL_NETLINK = 270
#: recv(2) flags (linux/socket.h): a dump's next datagram length, nothing copied
MSG_PEEK = 0x2
MSG_TRUNC = 0x20
NETLINK_EXT_ACK = 11

#: struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags;
#:                   __u32 nlmsg_seq; __u32 nlmsg_pid; }
NLMSGHDR = struct.Struct("=IHHII")
#: struct nlmsgerr { int error; struct nlmsghdr msg; }
NLMSGERR = struct.Struct("=i")
#: struct rtattr / nlattr { __u16 rta_len; __u16 rta_type; }
RTATTR = struct.Struct("=HH")
NLA_F_NESTED = 0x8000
#: the bits of rta_type that ss's attribute walkers keep: parse_rtattr_flags(..., NLA_F_NESTED)
#: clears NLA_F_NESTED only, so a type with NLA_F_NET_BYTEORDER (0x4000) is no known type
#: (the kernel's NLA_TYPE_MASK, 0x3FFF, clears both)
SS_TYPE_MASK = 0x7FFF

#: ss's constant sequence number for dump requests (MAGIC_SEQ in ss.c)
MAGIC_SEQ = 123456

# --- sock_diag.h -----------------------------------------------------------------------
SOCK_DIAG_BY_FAMILY = 20
SOCK_DESTROY = 21
TCPDIAG_GETSOCK = 18
DCCPDIAG_GETSOCK = 19
SKNLGRP_INET_TCP_DESTROY = 1
SKNLGRP_INET_UDP_DESTROY = 2
SKNLGRP_INET6_TCP_DESTROY = 3
SKNLGRP_INET6_UDP_DESTROY = 4

# SK_MEMINFO_* indices of the u32 array in INET_DIAG_SKMEMINFO (and unix/packet/netlink)
SK_MEMINFO_RMEM_ALLOC = 0
SK_MEMINFO_RCVBUF = 1
SK_MEMINFO_WMEM_ALLOC = 2
SK_MEMINFO_SNDBUF = 3
SK_MEMINFO_FWD_ALLOC = 4
SK_MEMINFO_WMEM_QUEUED = 5
SK_MEMINFO_OPTMEM = 6
SK_MEMINFO_BACKLOG = 7
SK_MEMINFO_DROPS = 8
SK_MEMINFO_VARS = 9

# --- address families and protocols (socket.h, in.h) -----------------------------------
AF_UNSPEC = 0
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16
AF_PACKET = 17
AF_TIPC = 30
AF_VSOCK = 40
AF_XDP = 44
AF_MAX = 46

IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_DCCP = 33
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132
IPPROTO_RAW = 255
IPPROTO_MPTCP = 262

SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOCK_RDM = 4
SOCK_SEQPACKET = 5

# --- inet_diag.h -----------------------------------------------------------------------
#: struct inet_diag_req_v2 { __u8 sdiag_family; __u8 sdiag_protocol; __u8 idiag_ext;
#:   __u8 pad; __u32 idiag_states; struct inet_diag_sockid id; }
#: struct inet_diag_sockid { __be16 idiag_sport; __be16 idiag_dport; __be32 idiag_src[4];
#:   __be32 idiag_dst[4]; __u32 idiag_if; __u32 idiag_cookie[2]; }
INET_DIAG_REQ_V2 = struct.Struct("=BBBBI 2s2s16s16sI8s")
#: struct inet_diag_req (legacy, TCPDIAG_GETSOCK) { __u8 idiag_family; __u8 idiag_src_len;
#:   __u8 idiag_dst_len; __u8 idiag_ext; struct inet_diag_sockid id; __u32 idiag_states;
#:   __u32 idiag_dbs; }
INET_DIAG_REQ_V1 = struct.Struct("=BBBB 2s2s16s16sI8s II")
#: struct inet_diag_msg { __u8 idiag_family; __u8 idiag_state; __u8 idiag_timer;
#:   __u8 idiag_retrans; struct inet_diag_sockid id; __u32 idiag_expires;
#:   __u32 idiag_rqueue; __u32 idiag_wqueue; __u32 idiag_uid; __u32 idiag_inode; }
#: Unpacked as: family, state, timer, retrans, sport (be16), dport (be16), src (16s),
#: dst (16s), if, cookie[0], cookie[1], expires, rqueue, wqueue, uid, inode.
INET_DIAG_MSG = struct.Struct("=BBBBHH16s16sIIIIIIII")
INET_DIAG_MSG_SIZE = INET_DIAG_MSG.size  # 72

INET_DIAG_REQ_NONE = 0
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_REQ_SK_BPF_STORAGES = 2
INET_DIAG_REQ_PROTOCOL = 3

# bytecode ops (struct inet_diag_bc_op { __u8 code; __u8 yes; __u16 no; })
INET_DIAG_BC_NOP = 0
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_S_GE = 2
INET_DIAG_BC_S_LE = 3
INET_DIAG_BC_D_GE = 4
INET_DIAG_BC_D_LE = 5
INET_DIAG_BC_AUTO = 6
INET_DIAG_BC_S_COND = 7
INET_DIAG_BC_D_COND = 8
INET_DIAG_BC_DEV_COND = 9
INET_DIAG_BC_MARK_COND = 10
INET_DIAG_BC_S_EQ = 11
INET_DIAG_BC_D_EQ = 12
INET_DIAG_BC_CGROUP_COND = 13
INET_DIAG_BC_OP = struct.Struct("=BBH")
#: struct inet_diag_hostcond { __u8 family; __u8 prefix_len; int port; __be32 addr[0]; }
INET_DIAG_HOSTCOND = struct.Struct("=BBxxi")
#: struct inet_diag_markcond { __u32 mark; __u32 mask; }
INET_DIAG_MARKCOND = struct.Struct("=II")

IDIAG_TIMER_OFF = 0
IDIAG_TIMER_ON = 1
IDIAG_TIMER_KEEPALIVE = 2
IDIAG_TIMER_TIMEWAIT = 3
IDIAG_TIMER_PROBE0 = 4
IDIAG_TIMER_DELACK = 5

# response attributes
INET_DIAG_NONE = 0
INET_DIAG_MEMINFO = 1
INET_DIAG_INFO = 2
INET_DIAG_VEGASINFO = 3
INET_DIAG_CONG = 4
INET_DIAG_TOS = 5
INET_DIAG_TCLASS = 6
INET_DIAG_SKMEMINFO = 7
INET_DIAG_SHUTDOWN = 8
INET_DIAG_DCTCPINFO = 9
INET_DIAG_PROTOCOL = 10
INET_DIAG_SKV6ONLY = 11
INET_DIAG_LOCALS = 12
INET_DIAG_PEERS = 13
INET_DIAG_PAD = 14
INET_DIAG_MARK = 15
INET_DIAG_BBRINFO = 16
INET_DIAG_CLASS_ID = 17
INET_DIAG_MD5SIG = 18
INET_DIAG_ULP_INFO = 19
INET_DIAG_SK_BPF_STORAGES = 20
INET_DIAG_CGROUP_ID = 21
INET_DIAG_SOCKOPT = 22
INET_DIAG_MAX = 22

INET_ULP_INFO_NAME = 1
INET_ULP_INFO_TLS = 2
INET_ULP_INFO_MPTCP = 3

# TLS_INFO_* (include/uapi/linux/tls.h): the attributes nested in INET_ULP_INFO_TLS
TLS_INFO_VERSION = 1
TLS_INFO_CIPHER = 2
TLS_INFO_TXCONF = 3
TLS_INFO_RXCONF = 4
TLS_INFO_ZC_RO_TX = 5
TLS_INFO_RX_NO_PAD = 6

# MPTCP_SUBFLOW_ATTR_* (include/uapi/linux/mptcp.h): the attributes nested in
# INET_ULP_INFO_MPTCP
MPTCP_SUBFLOW_ATTR_TOKEN_REM = 1
MPTCP_SUBFLOW_ATTR_TOKEN_LOC = 2
MPTCP_SUBFLOW_ATTR_RELWRITE_SEQ = 3
MPTCP_SUBFLOW_ATTR_MAP_SEQ = 4
MPTCP_SUBFLOW_ATTR_MAP_SFSEQ = 5
MPTCP_SUBFLOW_ATTR_SSN_OFFSET = 6
MPTCP_SUBFLOW_ATTR_MAP_DATALEN = 7
MPTCP_SUBFLOW_ATTR_FLAGS = 8
MPTCP_SUBFLOW_ATTR_ID_REM = 9
MPTCP_SUBFLOW_ATTR_ID_LOC = 10

#: struct inet_diag_meminfo { __u32 idiag_rmem; __u32 idiag_wmem; __u32 idiag_fmem;
#:   __u32 idiag_tmem; }
INET_DIAG_MEMINFO_S = struct.Struct("=IIII")

# --- TCP states (include/net/tcp_states.h) and ss's pseudo states ----------------------
SS_UNKNOWN = 0
SS_ESTABLISHED = 1
SS_SYN_SENT = 2
SS_SYN_RECV = 3
SS_FIN_WAIT1 = 4
SS_FIN_WAIT2 = 5
SS_TIME_WAIT = 6
SS_CLOSE = 7
SS_CLOSE_WAIT = 8
SS_LAST_ACK = 9
SS_LISTEN = 10
SS_CLOSING = 11
SS_NEW_SYN_RECV = 12
SS_BOUND_INACTIVE = 13
SS_MAX = 14

SS_ALL = (1 << SS_MAX) - 1
SS_CONN = SS_ALL & ~((1 << SS_LISTEN) | (1 << SS_CLOSE) | (1 << SS_TIME_WAIT) | (1 << SS_SYN_RECV))
TIPC_SS_CONN = (1 << SS_ESTABLISHED) | (1 << SS_LISTEN) | (1 << SS_CLOSE)

#: sstate_name[] of ss.c: the State column text per kernel state number.
STATE_NAMES = (
    "UNKNOWN",
    "ESTAB",
    "SYN-SENT",
    "SYN-RECV",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "TIME-WAIT",
    "UNCONN",
    "CLOSE-WAIT",
    "LAST-ACK",
    "LISTEN",
    "CLOSING",
    "UNDEF",
    "UNDEF",
)

#: sctp_sstate_name[] of ss.c: SCTP association states (SCTP_STATE_* in ss.c)
SCTP_STATE_NAMES = (
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTAB",
    "SHUTDOWN_PENDING",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECEIVED",
    "ACK_SENT",
)

# --- ss's socket tables (enum in ss.c; the order is the bit order) ---------------------
TCP_DB = 0
MPTCP_DB = 1
DCCP_DB = 2
UDP_DB = 3
RAW_DB = 4
UNIX_DG_DB = 5
UNIX_ST_DB = 6
UNIX_SQ_DB = 7
PACKET_DG_DB = 8
PACKET_R_DB = 9
NETLINK_DB = 10
SCTP_DB = 11
VSOCK_ST_DB = 12
VSOCK_DG_DB = 13
TIPC_DB = 14
XDP_DB = 15
MAX_DB = 16

PACKET_DBM = (1 << PACKET_DG_DB) | (1 << PACKET_R_DB)
UNIX_DBM = (1 << UNIX_DG_DB) | (1 << UNIX_ST_DB) | (1 << UNIX_SQ_DB)
ALL_DB = (1 << MAX_DB) - 1
INET_L4_DBM = (1 << TCP_DB) | (1 << MPTCP_DB) | (1 << UDP_DB) | (1 << DCCP_DB) | (1 << SCTP_DB)
INET_DBM = INET_L4_DBM | (1 << RAW_DB)
VSOCK_DBM = (1 << VSOCK_ST_DB) | (1 << VSOCK_DG_DB)

#: The table names of the public API, indexed by ss's table number.
DB_NAMES = (
    "tcp",
    "mptcp",
    "dccp",
    "udp",
    "raw",
    "unix_dgram",
    "unix_stream",
    "unix_seqpacket",
    "packet_dgram",
    "packet_raw",
    "netlink",
    "sctp",
    "vsock_stream",
    "vsock_dgram",
    "tipc",
    "xdp",
)


# --- unix_diag.h -----------------------------------------------------------------------
UDIAG_SHOW_NAME = 0x01
UDIAG_SHOW_VFS = 0x02
UDIAG_SHOW_PEER = 0x04
UDIAG_SHOW_ICONS = 0x08
UDIAG_SHOW_RQLEN = 0x10
UDIAG_SHOW_MEMINFO = 0x20
UDIAG_SHOW_UID = 0x40
UNIX_DIAG_NAME = 0
UNIX_DIAG_VFS = 1
UNIX_DIAG_PEER = 2
UNIX_DIAG_ICONS = 3
UNIX_DIAG_RQLEN = 4
UNIX_DIAG_MEMINFO = 5
UNIX_DIAG_SHUTDOWN = 6
UNIX_DIAG_UID = 7
#: struct unix_diag_req { __u8 sdiag_family; __u8 sdiag_protocol; __u16 pad;
#:   __u32 udiag_states; __u32 udiag_ino; __u32 udiag_show; __u32 udiag_cookie[2]; }
UNIX_DIAG_REQ = struct.Struct("=BBHIIIII")
#: struct unix_diag_msg { __u8 udiag_family; __u8 udiag_type; __u8 udiag_state; __u8 pad;
#:   __u32 udiag_ino; __u32 udiag_cookie[2]; }
UNIX_DIAG_MSG = struct.Struct("=BBBxIII")
#: struct unix_diag_vfs { __u32 udiag_vfs_ino; __u32 udiag_vfs_dev; }
UNIX_DIAG_VFS_S = struct.Struct("=II")
#: struct unix_diag_rqlen { __u32 udiag_rqueue; __u32 udiag_wqueue; }
UNIX_DIAG_RQLEN_S = struct.Struct("=II")

# --- packet_diag.h ---------------------------------------------------------------------
PACKET_SHOW_INFO = 0x01
PACKET_SHOW_MCLIST = 0x02
PACKET_SHOW_RING_CFG = 0x04
PACKET_SHOW_FANOUT = 0x08
PACKET_SHOW_MEMINFO = 0x10
PACKET_SHOW_FILTER = 0x20
PACKET_DIAG_INFO = 0
PACKET_DIAG_MCLIST = 1
PACKET_DIAG_RX_RING = 2
PACKET_DIAG_TX_RING = 3
PACKET_DIAG_FANOUT = 4
PACKET_DIAG_UID = 5
PACKET_DIAG_MEMINFO = 6
PACKET_DIAG_FILTER = 7
PDI_RUNNING = 0x1
PDI_AUXDATA = 0x2
PDI_ORIGDEV = 0x4
PDI_VNETHDR = 0x8
PDI_LOSS = 0x10
ETH_P_ALL = 0x0003
#: struct packet_diag_req { __u8 sdiag_family; __u8 sdiag_protocol; __u16 pad;
#:   __u32 pdiag_ino; __u32 pdiag_show; __u32 pdiag_cookie[2]; }
PACKET_DIAG_REQ = struct.Struct("=BBHIIII")
#: struct packet_diag_msg { __u8 pdiag_family; __u8 pdiag_type; __u16 pdiag_num;
#:   __u32 pdiag_ino; __u32 pdiag_cookie[2]; }
PACKET_DIAG_MSG = struct.Struct("=BBHIII")
#: struct packet_diag_info { __u32 pdi_index; __u32 pdi_version; __u32 pdi_reserve;
#:   __u32 pdi_copy_thresh; __u32 pdi_tstamp; __u32 pdi_flags; }
PACKET_DIAG_INFO_S = struct.Struct("=IIIIII")
#: struct packet_diag_ring { __u32 pdr_block_size; __u32 pdr_block_nr; __u32 pdr_frame_size;
#:   __u32 pdr_frame_nr; __u32 pdr_retire_tmo; __u32 pdr_sizeof_priv; __u32 pdr_features; }
PACKET_DIAG_RING_S = struct.Struct("=IIIIIII")
#: struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; } (linux/filter.h)
SOCK_FILTER = struct.Struct("=HBBI")

# --- netlink_diag.h --------------------------------------------------------------------
NDIAG_PROTO_ALL = 255
NDIAG_SHOW_MEMINFO = 0x01
NDIAG_SHOW_GROUPS = 0x02
NETLINK_DIAG_MEMINFO = 0
NETLINK_DIAG_GROUPS = 1
NETLINK_CONNECTED = 1
#: struct netlink_diag_req { __u8 sdiag_family; __u8 sdiag_protocol; __u16 pad;
#:   __u32 ndiag_ino; __u32 ndiag_show; __u32 ndiag_cookie[2]; }
NETLINK_DIAG_REQ = struct.Struct("=BBHIIII")
#: struct netlink_diag_msg { __u8 ndiag_family; __u8 ndiag_type; __u8 ndiag_protocol;
#:   __u8 ndiag_state; __u32 ndiag_portid; __u32 ndiag_dst_portid; __u32 ndiag_dst_group;
#:   __u32 ndiag_ino; __u32 ndiag_cookie[2]; }
NETLINK_DIAG_MSG = struct.Struct("=BBBBIIIIII")

# --- vm_sockets_diag.h -----------------------------------------------------------------
#: struct vsock_diag_req { __u8 sdiag_family; __u8 sdiag_protocol; __u16 pad;
#:   __u32 vdiag_states; __u32 vdiag_ino; __u32 vdiag_show; __u32 vdiag_cookie[2]; }
VSOCK_DIAG_REQ = struct.Struct("=BBHIIIII")
#: struct vsock_diag_msg { __u8 vdiag_family; __u8 vdiag_type; __u8 vdiag_state;
#:   __u8 vdiag_shutdown; __u32 vdiag_src_cid; __u32 vdiag_src_port; __u32 vdiag_dst_cid;
#:   __u32 vdiag_dst_port; __u32 vdiag_ino; __u32 vdiag_cookie[2]; }
VSOCK_DIAG_MSG = struct.Struct("=BBBBIIIIIII")

# --- tipc_sockets_diag.h, tipc_netlink.h -----------------------------------------------
#: struct tipc_sock_diag_req { __u8 sdiag_family; __u8 sdiag_protocol; __u16 pad;
#:   __u32 tidiag_states; }
TIPC_SOCK_DIAG_REQ = struct.Struct("=BBHI")
TIPC_NLA_SOCK = 2
TIPC_NLA_SOCK_ADDR = 1
TIPC_NLA_SOCK_REF = 2
TIPC_NLA_SOCK_CON = 3
TIPC_NLA_SOCK_HAS_PUBL = 4
TIPC_NLA_SOCK_STAT = 5
TIPC_NLA_SOCK_TYPE = 6
TIPC_NLA_SOCK_INO = 7
TIPC_NLA_SOCK_UID = 8
TIPC_NLA_SOCK_TIPC_STATE = 9
TIPC_NLA_SOCK_COOKIE = 10
TIPC_NLA_CON_FLAG = 1
TIPC_NLA_CON_NODE = 2
TIPC_NLA_CON_SOCK = 3
TIPC_NLA_CON_TYPE = 4
TIPC_NLA_CON_INST = 5
TIPC_NLA_SOCK_STAT_RCVQ = 1
TIPC_NLA_SOCK_STAT_SENDQ = 2
TIPC_NLA_SOCK_STAT_LINK_CONG = 3
TIPC_NLA_SOCK_STAT_CONN_CONG = 4
TIPC_NLA_SOCK_STAT_DROP = 5

# --- xdp_diag.h ------------------------------------------------------------------------
XDP_SHOW_INFO = 1 << 0
XDP_SHOW_RING_CFG = 1 << 1
XDP_SHOW_UMEM = 1 << 2
XDP_SHOW_MEMINFO = 1 << 3
XDP_SHOW_STATS = 1 << 4
XDP_DIAG_INFO = 1
XDP_DIAG_UID = 2
XDP_DIAG_RX_RING = 3
XDP_DIAG_TX_RING = 4
XDP_DIAG_UMEM = 5
XDP_DIAG_UMEM_FILL_RING = 6
XDP_DIAG_UMEM_COMPLETION_RING = 7
XDP_DIAG_MEMINFO = 8
XDP_DIAG_STATS = 9
XDP_DU_F_ZEROCOPY = 1 << 0
#: struct xdp_diag_req { __u8 sdiag_family; __u8 sdiag_protocol; __u16 pad;
#:   __u32 xdiag_ino; __u32 xdiag_show; __u32 xdiag_cookie[2]; }
XDP_DIAG_REQ = struct.Struct("=BBHIIII")
#: struct xdp_diag_msg { __u8 xdiag_family; __u8 xdiag_type; __u16 pad; __u32 xdiag_ino;
#:   __u32 xdiag_cookie[2]; }
XDP_DIAG_MSG = struct.Struct("=BBxxIII")
#: struct xdp_diag_info { __u32 ifindex; __u32 queue_id; }
XDP_DIAG_INFO_S = struct.Struct("=II")
#: struct xdp_diag_ring { __u32 entries; }
XDP_DIAG_RING_S = struct.Struct("=I")
#: struct xdp_diag_umem { __u64 size; __u32 id; __u32 num_pages; __u32 chunk_size;
#:   __u32 headroom; __u32 ifindex; __u32 queue_id; __u32 flags; __u32 refs; }
XDP_DIAG_UMEM_S = struct.Struct("=QIIIIIIII")
#: struct xdp_diag_stats { __u64 n_rx_dropped, n_rx_invalid, n_rx_full, n_fill_ring_empty,
#:   n_tx_invalid, n_tx_ring_empty; }
XDP_DIAG_STATS_S = struct.Struct("=QQQQQQ")


# --- name tables shared by the text rows and the data view ------------------------------


class _Swap16:
    """``SWAP16[p]``: swap the bytes of a u16 (ports arrive in network order and are
    read as host u16). An object rather than a 65536-entry table, to keep import cheap.
    """

    __slots__ = ()

    def __getitem__(self, p: int) -> int:
        return ((p & 0xFF) << 8) | (p >> 8)


SWAP16 = _Swap16()

#: proto_name() of ss.c: the Netid text of an inet socket by protocol number.
PROTO_NAMES = {
    0: "raw",
    IPPROTO_UDP: "udp",
    IPPROTO_TCP: "tcp",
    IPPROTO_MPTCP: "mptcp",
    IPPROTO_SCTP: "sctp",
    IPPROTO_DCCP: "dccp",
    IPPROTO_ICMPV6: "icmp6",
}


#: tcp_timer_print's names of icsk_pending / the idiag_timer values (index = timer kind)
TIMER_NAMES = ("off", "on", "keepalive", "timewait", "persist", "delack")

#: the INET_DIAG_SOCKOPT bits, in bit order (struct inet_diag_sockopt of inet_diag.h)
SOCKOPT_FLAGS = (
    "recverr",
    "is_icsk",
    "freebind",
    "hdrincl",
    "mc_loop",
    "transparent",
    "mc_all",
    "nodefrag",
    "bind_addr_no_port",
    "recverr_rfc4884",
    "defer_connect",
)
