"""The layout of an inet socket record: the names of its tuple positions.

Records are tuples (cheap to build at 100,000 sockets); every module reads them through
these names, never through bare numbers.
"""

#: Positions in an :class:`InetSocket` tuple. The first sixteen are struct inet_diag_msg's
#: fields in kernel order (one ``struct.unpack_from`` fills them): idiag_family,
#: idiag_state, idiag_timer, idiag_retrans, id.idiag_sport and id.idiag_dport (network
#: byte order, read as host u16), id.idiag_src and id.idiag_dst (16 raw bytes),
#: id.idiag_if, id.idiag_cookie[0] and [1], idiag_expires, idiag_rqueue, idiag_wqueue,
#: idiag_uid, idiag_inode. Then the protocol the table was dumped with, the receive
#: buffer and the span of the netlink attributes in it (None, 0, 0 for /proc rows), and
#: from ``PROC_EXTRA`` on, the extra fields of a /proc/net/tcp line (see procfs.tcp_sockets).
(
    FAMILY,
    STATE,
    TIMER,
    RETRANS,
    SPORT,
    DPORT,
    SRC,
    DST,
    IFINDEX,
    COOKIE_LO,
    COOKIE_HI,
    EXPIRES,
    RQUEUE,
    WQUEUE,
    UID,
    INODE,
    PROTOCOL,
    BUF,
    ATTR_START,
    ATTR_END,
    PROC_EXTRA,
) = range(21)

#: the extra fields of a /proc/net/tcp line, from ``PROC_EXTRA`` on (procfs.tcp_sockets):
#: sk refcount, rto, ato, quick acks, cwnd, ssthresh (0 when none), the options text
(
    PROC_REFCNT,
    PROC_RTO,
    PROC_ATO,
    PROC_QACK,
    PROC_CWND,
    PROC_SSTHRESH,
    PROC_OPT,
) = range(PROC_EXTRA, PROC_EXTRA + 7)
