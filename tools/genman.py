#!/usr/bin/env python3
"""Generate sockscope's man page and shell completions from one table of options.

Run by hand after changing an option, and commit the outputs::

    python3 tools/genman.py          # writes man/sockscope.1 and completions/*
    python3 tools/genman.py --check  # exits 1 if a committed file differs (CI, tests)

The outputs are ``man/sockscope.1``, ``completions/sockscope`` (bash) and
``completions/_sockscope`` (zsh). ``tests/test_packaging.py`` fails when a committed file
differs from what this script writes, so they cannot drift apart.

To document a new option, add a row to ``OPTIONS`` (and, for a new value kind, a case to
the completers). ss's own options follow ss(8) of iproute2 7.1 in meaning; the words here
are sockscope's. Only the standard library is used.

Inline markup of the text fields: ```word``` is bold, ``''word''`` is italic; a blank line
starts a new paragraph. Everything else is escaped for roff.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the words completed for -A, -f and state/exclude, and the filter keywords: as ss.c of
#: iproute2 7.1 accepts them (db_name_parse, the -f case of main, scan_state)
TABLES = [
    "all",
    "inet",
    "tcp",
    "mptcp",
    "udp",
    "raw",
    "unix",
    "packet",
    "netlink",
    "unix_dgram",
    "unix_stream",
    "unix_seqpacket",
    "packet_raw",
    "packet_dgram",
    "dccp",
    "sctp",
    "vsock",
    "vsock_stream",
    "vsock_dgram",
    "xdp",
    "tipc",
]
FAMILIES = ["unix", "inet", "inet6", "link", "netlink", "vsock", "tipc", "xdp", "help"]
STATES = [
    "established",
    "syn-sent",
    "syn-recv",
    "fin-wait-1",
    "fin-wait-2",
    "time-wait",
    "closed",
    "close-wait",
    "last-ack",
    "listening",
    "closing",
    "bound-inactive",
]
STATE_GROUPS = ["all", "connected", "synchronized", "bucket", "big"]
FILTER_WORDS = [
    "state",
    "exclude",
    "src",
    "dst",
    "sport",
    "dport",
    "dev",
    "fwmark",
    "cgroup",
    "autobound",
    "and",
    "or",
    "not",
]
NETNS_DIR = "/var/run/netns"


@dataclass(frozen=True)
class Opt:
    """One command-line option: a row of the man page and of both completions."""

    short: str  # "t" or ""
    longs: tuple[str, ...]  # ("tcp",) - the first is the main name
    arg: str  # metavariable ("FAMILY") or "" for a flag
    summary: str  # one line, for the zsh completion
    text: str  # the man page's paragraph(s)
    kind: str = ""  # what to complete for the argument: family, table, netns, file
    group: str = "general"
    origin: str = "ss"  # "ss" (an ss 7.1 option) or "sockscope" (sockscope's own)
    optional: str = ""  # metavariable of an optional ``=VALUE`` (a flag to completions)


GROUPS = (
    ("general", "General"),
    ("select", "Which sockets"),
    ("tables", "Socket tables and families"),
    ("info", "What to show about each socket"),
    ("modes", "Other modes"),
    ("json", "Machine-readable output (sockscope's own)"),
    ("answers", "Answers instead of listings (sockscope's own)"),
)

# fmt: off
OPTIONS: tuple[Opt, ...] = (
    # general
    Opt("h", ("help",), "", "show the usage summary",
        "Print the usage summary on standard output and exit with status 0. The text is ss's, "
        "unchanged; a short section on sockscope's own options (`-j`, `--json`, "
        "`--json-lines`, `--jsonl`, `--version`) follows it. The usage that a bad option "
        "prints on standard error, and `-f help`, are ss's alone."),
    Opt("V", (), "", "print the ss version line",
        "Print ss's version line, `ss utility, iproute2-7.1.0`, exactly as ss 7.1 does, and "
        "exit with status 0, so that scripts which check it keep working. `-v` is accepted "
        "as well, as in ss."),
    Opt("", ("version",), "", "print the ss version line and sockscope's version",
        "Print ss's version line, byte for byte as `-V` does, then a second line, "
        "`sockscope` ''X.Y.Z'' `(backend: pure Python)` (or `compiled C core`), and exit with "
        "status 0. In ss, "
        "`--version` is the long form of `-V`; scripts that read the first line keep "
        "working. `-V` prints ss's line alone.", origin="sockscope"),
    Opt("H", ("no-header",), "", "suppress the header line",
        "Do not print the header line."),
    Opt("Q", ("no-queues",), "", "suppress the queue columns",
        "Leave out the Recv-Q and Send-Q columns."),
    Opt("O", ("oneline",), "", "print each socket on one line",
        "Print all the information about a socket on a single line."),
    Opt("n", ("numeric",), "", "do not resolve service names",
        "Print port numbers instead of service names, and exact rates instead of "
        "human-readable ones."),
    Opt("r", ("resolve",), "", "resolve host names",
        "Resolve addresses to host names (and ports to service names)."),
    # which sockets
    Opt("a", ("all",), "", "display listening and non-listening sockets",
        "Show sockets in every state: listening ones as well as established connections "
        "(and, for datagram protocols, unconnected ones).", group="select"),
    Opt("l", ("listening",), "", "display only listening sockets",
        "Show only listening sockets, which are left out by default.", group="select"),
    Opt("B", ("bound-inactive",), "", "display only bound but inactive TCP sockets",
        "Show only TCP sockets that are bound but do nothing else (not listening, not "
        "connecting), which are left out by default.", group="select"),
    # tables and families
    Opt("4", ("ipv4",), "", "display only IPv4 sockets",
        "Only IPv4 sockets; the same as `-f inet`.", group="tables"),
    Opt("6", ("ipv6",), "", "display only IPv6 sockets",
        "Only IPv6 sockets; the same as `-f inet6`.", group="tables"),
    Opt("0", ("packet",), "", "display PACKET sockets",
        "Packet sockets; the same as `-f link`.", group="tables"),
    Opt("t", ("tcp",), "", "display TCP sockets", "TCP sockets.", group="tables"),
    Opt("u", ("udp",), "", "display UDP sockets", "UDP sockets.", group="tables"),
    Opt("d", ("dccp",), "", "display DCCP sockets", "DCCP sockets.", group="tables"),
    Opt("w", ("raw",), "", "display RAW sockets", "Raw IP sockets.", group="tables"),
    Opt("x", ("unix",), "", "display Unix domain sockets",
        "Unix domain sockets; the same as `-f unix`.", group="tables"),
    Opt("S", ("sctp",), "", "display SCTP sockets", "SCTP sockets.", group="tables"),
    Opt("M", ("mptcp",), "", "display MPTCP sockets", "MPTCP sockets.", group="tables"),
    Opt("", ("tipc",), "", "display TIPC sockets",
        "TIPC sockets; the same as `-f tipc`.", group="tables"),
    Opt("", ("vsock",), "", "display vsock sockets",
        "VSOCK sockets; the same as `-f vsock`.", group="tables"),
    Opt("", ("xdp",), "", "display XDP sockets",
        "XDP sockets; the same as `-f xdp`.", group="tables"),
    Opt("f", ("family",), "FAMILY", "display sockets of one address family",
        "Show sockets of the address family ''FAMILY'': `unix`, `inet`, `inet6`, `link`, "
        "`netlink`, `vsock`, `tipc` or `xdp`. `help` prints the usage summary.",
        kind="family", group="tables"),
    Opt("A", ("query", "socket"), "QUERY", "list of socket tables to dump",
        "Dump the socket tables named in ''QUERY'', a comma-separated list of `all`, `inet`, "
        "`tcp`, `mptcp`, `udp`, `raw`, `unix`, `unix_stream`, `unix_dgram`, "
        "`unix_seqpacket`, `packet`, `packet_raw`, `packet_dgram`, `netlink`, `dccp`, "
        "`sctp`, `vsock`, `vsock_stream`, `vsock_dgram`, `tipc` and `xdp` (ss's short "
        "names such as `u_str` and `p_raw` work too). A name preceded by `!` removes that "
        "table, as in `-A 'all,!tcp'`.", kind="table", group="tables"),
    # what to show
    Opt("o", ("options",), "", "show timer information",
        "Show the timer of each socket: `timer:(`''name''`,`''expires''`,`''retransmits''`)`, "
        "where ''name'' is `on`, `keepalive`, `timewait`, `persist` or `unknown`.",
        group="info"),
    Opt("e", ("extended",), "", "show detailed socket information",
        "Show details: owner uid, inode number, socket cookie (`sk:`) and, depending on the "
        "family, more.", group="info"),
    Opt("m", ("memory",), "", "show socket memory usage",
        "Show the memory of the socket as `skmem:(`...`)`: allocated and maximal receive "
        "and send buffers, forward allocation, queued data, option memory, backlog and "
        "drops.", group="info"),
    Opt("p", ("processes",), "", "show the processes using each socket",
        "Show the processes that hold each socket: name, pid and file descriptor.",
        group="info"),
    Opt("T", ("threads",), "", "show the threads using each socket",
        "As `-p`, with the thread ids; implies `-p`.", group="info"),
    Opt("i", ("info",), "", "show internal TCP information",
        "Show the kernel's internal information about TCP, MPTCP and SCTP sockets "
        "(congestion control, window scaling, RTO, RTT, MSS, congestion window, pacing and "
        "delivery rates, byte and segment counters, ULP state, ...).", group="info"),
    Opt("", ("tipcinfo",), "", "show internal TIPC socket information",
        "Show the internal information of TIPC sockets.", group="info"),
    Opt("", ("tos",), "", "show ToS and priority information",
        "Show the IPv4 type of service, the IPv6 traffic class and the class id (or the "
        "priority).", group="info"),
    Opt("", ("cgroup",), "", "show cgroup information",
        "Show the cgroup v2 path of each socket.", group="info"),
    Opt("", ("inet-sockopt",), "", "show inet socket options",
        "Show a set of inet socket options (`recverr`, `freebind`, `transparent`, ...).",
        group="info"),
    Opt("b", ("bpf",), "", "show classic BPF filters",
        "Show the classic BPF filters attached to packet sockets (root only).", group="info"),
    Opt("", ("bpf-maps",), "", "show all BPF socket-local storage maps",
        "Show the BPF socket-local storage of each socket. sockscope parses and checks "
        "this option as ss does but does not pretty-print the storage.", group="info"),
    Opt("", ("bpf-map-id",), "MAP-ID", "show one BPF socket-local storage map",
        "As `--bpf-maps` for the map ''MAP-ID'' only; may be given more than once.",
        group="info"),
    Opt("Z", ("context",), "", "show process SELinux contexts",
        "As `-p` with the SELinux security contexts. Without SELinux, sockscope prints "
        "ss's `ss: SELinux is not enabled.` and exits with status 1, as ss does.",
        group="info"),
    Opt("z", ("contexts",), "", "show process and socket SELinux contexts",
        "As `-Z`, with the socket contexts as well.", group="info"),
    Opt("s", ("summary",), "", "print summary statistics",
        "Print counts of sockets per protocol and state, read from /proc rather than from "
        "the socket lists.", group="info"),
    # other modes
    Opt("K", ("kill",), "", "forcibly close sockets, display what was closed",
        "Close the matching sockets (IPv4 and IPv6 only, with a kernel that supports it) "
        "and print those that were closed.", group="modes"),
    Opt("E", ("events",), "", "display sockets as they are destroyed",
        "Keep running and print each socket as the kernel destroys it.", group="modes"),
    Opt("N", ("net",), "NSNAME", "switch to a network namespace",
        "Run in the named network namespace (one of /var/run/netns). sockscope also takes, "
        "when no such name exists, `pid:`''PID'' (the namespace of a process) and the path "
        "of a namespace file (`/proc/`''PID''`/ns/net`, a bind mount).",
        kind="netns", group="modes"),
    Opt("", ("all-netns",), "", "list every network namespace of the host",
        "List every network namespace of the host, each once: the names under "
        "/var/run/netns, the other namespace bind mounts, the namespace of every process and "
        "of every thread that left its process's one "
        "(deduplicated by inode). Before each one's output comes a line `# netns "
        "net:[`''INODE''`] name=`''NAME'' `pid=`''PID'' `container=`''RUNTIME''`:`''ID'' "
        "`pod=`''UID'' (fields present when known; `pid=none` for a namespace no process "
        "is in, `unit=`''UNIT'' when the processes are in no container), then exactly what "
        "ss prints inside that namespace. The container (Docker, containerd, CRI-O, podman, "
        "Kubernetes) is read from the cgroup path of the namespace's processes. With "
        "`--json`, every socket has a `netns` object. `-K` needs a filter; `-N` and `-D` "
        "cannot be combined with it. With `-E`, every namespace found at the start is "
        "followed at once: each event as ss `-E` prints it inside its namespace, after a "
        "`# netns` line whenever the namespace changes. Namespaces that cannot be entered (no "
        "CAP_SYS_ADMIN) are skipped with a note, and the exit status is 1.",
        group="modes", origin="sockscope"),
    Opt("D", ("diag",), "FILE", "dump raw TCP socket information to FILE",
        "Print nothing: write the raw netlink answers about TCP sockets, after filtering, "
        "to ''FILE'' (`-` is standard output).", kind="file", group="modes"),
    Opt("F", ("filter",), "FILE", "read the filter from FILE",
        "Read the filter expression from ''FILE'' (`-` is standard input), one part per "
        "line.", kind="file", group="modes"),
    # sockscope's own
    Opt("j", ("json",), "", "write the sockets as one JSON document",
        "Write one JSON document instead of the text; see JSON OUTPUT. `-j` is the short "
        "form, as in ip(8).", group="json", origin="sockscope"),
    Opt("", ("json-lines", "jsonl"), "", "write one JSON object per socket per line",
        "Write one JSON object per socket per line; see JSON OUTPUT.", group="json",
        origin="sockscope"),
    Opt("", ("count-by",), "KEY[,KEY...]", "count the sockets per group of keys",
        "Print a table `COUNT KEY... RECV-Q SEND-Q` instead of the sockets: one row per "
        "group of sockets with the same values of the keys, biggest group first (ties by "
        "the key values, ascending), with the sums of their queues; with `-i` also "
        "`BYTES-ACKED BYTES-RECEIVED RETRANS`. Keys: `state`, `netid`, `family`, "
        "`local_address`, `local_port`, `peer_address`, `peer_prefix/`''N'' (''N'' bits of "
        "IPv4 and IPv6 addresses; `peer_prefix/`''N''`/`''M'': ''M'' bits of IPv6), "
        "`peer_port`, `process` and `pid` (the first owner `-p` shows), `uid`, `cgroup`, "
        "`netns`, `container`, and `recv_q`, `send_q`, `inode`, `cookie`, `rtt`, `cwnd`, "
        "`bytes_acked`, `bytes_received`, `retrans` (the last five need `-i`). A key a "
        "socket has no value for shows `-`. With `--json` or `--json-lines`, each group is "
        "`{\"group\": {...}, \"count\": N, \"recv_q\": ..., \"send_q\": ...}`. Memory "
        "grows with the number of groups, not of sockets. Like the other answer options, "
        "it is refused with `-E` (which reports closing sockets only; `--watch` reports "
        "them from the same events).",
        group="answers", origin="sockscope"),
    Opt("", ("top",), "N", "keep the first N groups or rows",
        "Keep the first ''N'' groups of `--count-by`, rows of `--sort` or lines of "
        "`--top-view`.", group="answers", origin="sockscope"),
    Opt("", ("sort",), "[-]KEY[,...]", "list the sockets in key order",
        "List the sockets ordered by the keys of `--count-by` (`-` before a key: "
        "descending; missing values last); ties keep ss's order. The rows and their "
        "layout are ss's, for the rows shown. With `--all-netns`, each namespace's block "
        "is sorted (JSON: every namespace's sockets in one order).",
        group="answers", origin="sockscope"),
    Opt("", ("watch",), "", "print what changes, every SECONDS (default 1)",
        "Every ''SECONDS'' (default 1) compare a snapshot of the selected TCP, UDP, MPTCP, "
        "RAW, UNIX, PACKET and NETLINK sockets with the previous one and print a line per "
        "change, starting with the time: `new`, `closed` (with the lifetime and, from the "
        "kernel's destruction events, the last counters; a connection that opened and "
        "closed between two snapshots is reported too), `state` (old->new), and with `-i` "
        "`rate` (bytes acked and received and retransmits per second). Sockets are keyed "
        "by network namespace and cookie (the inode for a row read from /proc); addresses "
        "read as ss's listing shows them. The kernel has destruction events for inet "
        "sockets only: UNIX, PACKET and NETLINK closes come from the snapshot difference. "
        "Lines are flushed as written; with `--json-lines`, each "
        "change is an object with `time` and `event`. With `--all-netns`, every namespace "
        "found at the start is watched and each line names its namespace after the kind "
        "(`net:[`''INODE''`]`). Ctrl-C ends it.",
        group="answers", origin="sockscope", optional="SECONDS"),
    Opt("", ("top-view",), "", "a full-screen view of --count-by or the busiest sockets",
        "On a terminal, redraw every interval (`--watch=`''SECONDS'') the groups of "
        "`--count-by`, or the busiest connections by rate; `q` quits. When standard output "
        "is not a terminal, print the `--watch` lines. (An option, not a `top` word: a bare "
        "word is an ss filter.)", group="answers", origin="sockscope"),
    Opt("", ("metrics",), "", "print the selection as Prometheus metrics",
        "Print the selected sockets in the Prometheus text exposition format (0.0.4): "
        "node_exporter's `node_tcp_connection_states{state}` (tcpstat's names, all "
        "thirteen) and `node_sockstat_*` (its sockstat collector, from "
        "/proc/net/sockstat{,6}), both for the namespace sockscope runs in; "
        "`sockscope_sockets{netid,state,netns,netns_name}`, `sockscope_listen_queue` and "
        "`sockscope_listen_backlog{local_address,local_port,netid,netns...}` (Recv-Q and "
        "Send-Q of LISTEN sockets); with `-i` the histograms `sockscope_tcp_rtt_seconds` "
        "and `sockscope_tcp_cwnd_segments` and the sums of bytes acked, received and "
        "retransmits per netid, state and namespace; with `--count-by` also "
        "`sockscope_group_sockets{KEY...}`; and `sockscope_series_folded{metric}`: each "
        "family keeps at most 1000 series, the rest summed into one labelled `other`. "
        "With `--all-netns`, every namespace's series. ''FORMAT'' is `prometheus` (the "
        "default) or `otlp-json`: OpenTelemetry OTLP/JSON (`system.network.connection.count` with "
        "`network.transport` and `network.connection.state`). The numbers are those of "
        "the selection: use `-a` for listeners and TIME-WAIT sockets too.",
        group="answers", origin="sockscope", optional="FORMAT"),
    Opt("", ("textfile",), "DIR", "write --metrics to DIR/sockscope.prom",
        "As `--metrics`, but write `sockscope.prom` in ''DIR'' (a temporary file in "
        "''DIR'' renamed over it, so node_exporter's textfile collector never reads half "
        "a file) instead of standard output.", kind="file", group="answers",
        origin="sockscope"),
    Opt("", ("max-series",), "N", "at most N series per metric (default 1000)",
        "With `--metrics` or `--textfile`, keep at most ''N'' series (default 1000) in each "
        "metric family: the series with the most sockets, the rest summed into one series "
        "whose labels are all `other`; `sockscope_series_folded{metric}` says how many "
        "were folded.", group="answers", origin="sockscope"),
    Opt("", ("listen",), "ADDR:PORT", "serve the metrics over HTTP",
        "Serve `--metrics` over HTTP on ''ADDR'':''PORT'' until SIGTERM or SIGINT: "
        "`/metrics` is collected afresh for each scrape (the selection, filter, `-N`, "
        "`--count-by` and `--max-series` of the command line; content type "
        "`text/plain; version=0.0.4`, gzip when the client accepts it, GET and HEAD), `/` "
        "is a short page linking it, other paths get 404. `:`''PORT'' binds to 127.0.0.1; "
        "write IPv6 as `[::1]:`''PORT''; port 0 takes a free port. The port is required: "
        "sockscope has none of its own. One line on standard error says where it serves; a "
        "failed collection is logged there and served as HTTP 500, and the server keeps "
        "running. SIGTERM lets the responses being written finish, closes the socket and "
        "exits with status 0; SIGINT does the same, then ends the process by SIGINT. A bad "
        "address exits with status 255, a port in use or an address not on this host with "
        "status 1. With `-N` the socket too is in that namespace.",
        group="answers", origin="sockscope"),
    Opt("", ("min-interval",), "SECONDS", "at most one collection per SECONDS (default 1)",
        "With `--listen`, collect at most once per ''SECONDS'' (default 1; 0: at every "
        "scrape), counted from the end of the last collection: scrapes in between, and "
        "scrapes that arrive while a collection runs, get its result.",
        group="answers", origin="sockscope"),
)
# fmt: on

# --------------------------------------------------------------------------- man page

JSON_SECTION = """\
`ss` has no machine-readable output; sockscope writes the same sockets as data. The \
selection, the filter and the options that add information (`-o -e -m -i -p -T --tos \
--cgroup --inet-sockopt -s`) work as they do for the text. Options that only change the \
layout of the text (`-H`, `-O`, column widths, `COLUMNS`) do not change the data.

`--json` (or `-j`) writes one document, `{"schema_version": "1.1", "summary": {...}, \
"sockets": [...]}`. It is streamed: the opening, one socket per line as it arrives, then \
the closing.

`--json-lines` (or `--jsonl`) writes one object per socket per line, flushed as the socket \
arrives; each object starts with `schema_version`. With `-s`, the first line holds the \
summary.

Neither keeps a socket after writing it, so memory use is flat however many sockets there \
are. With `-E`, each destroyed socket is one object, written as it comes. With \
`--count-by`, the document has `groups` and each line is a group (`group`, `count`, \
`recv_q`, `send_q`); with `--watch`, each line is a change (`time`, `event`, \
`netns_inode`, `cookie`, `socket`).

With `--all-netns`, every socket has a `netns` object (`inode`, `name`, `pids`, \
and, when a process's cgroup names one, `container` with `runtime`, `id`, `pod_uid`), \
the document ends with \
`namespaces` (each namespace walked, with its `summary` under `-s`), and with \
`--json-lines -s` each namespace's summary is a line of its own.

Field names are plain words and carry their unit when there is one (`_us`, `_ms`, \
`_bytes`, `_bps`). Addresses are text, ports are integers (`0`: no port). A field whose \
information the kernel did not send is absent, never `null` or a default. The names \
shared with jc's ss parser (`netid`, `state`, `recv_q`, `send_q`, `local_address`, \
`local_port`, `peer_address`, `peer_port`, `interface`) have the same meaning.

''Schema.'' A JSON Schema (draft 2020-12) describing a `--json` document and each \
`--json-lines` line is installed with the package as \
`sockscope/schema/sockscope.schema.json`; this prints its path:

.RS
.EX
python3 -c 'import importlib.resources as r; print(r.files("sockscope") / \
"schema/sockscope.schema.json")'
.EE
.RE

''Versioning.'' `schema_version` is `MAJOR.MINOR`. A minor version only adds fields and \
enum values: a consumer that ignores unknown fields keeps working. Anything else \
(removing or renaming a field, changing its type, unit or meaning) is a new major \
version, announced in the release notes. The schema is strict: a document validates \
against the schema shipped with the sockscope that wrote it. Test for the presence of a \
field, not for its value."""

FILTER_SECTION = """\
A filter is ''`[ state STATE ]... [ exclude STATE ]... [ EXPRESSION ]`''; sockscope \
reads it as ss 7.1 does. See ss(8) for the full grammar.

''States.'' `state` adds and `exclude` removes: `established`, `syn-sent`, \
`syn-recv`, `fin-wait-1`, `fin-wait-2`, `time-wait`, `closed`, \
`close-wait`, `last-ack`, `listening`, `closing`, `bound-inactive`, and the groups \
`all`, `connected` (all but `listening` and `closed`), `synchronized` (`connected` but \
`syn-sent`), `bucket` (`syn-recv` and `time-wait`) and `big` (all but `bucket`).

''Expressions.'' Predicates `src` and `dst` ''HOST'', `sport` and `dport` ''OP PORT'' \
(`<`, `<=`, `=`, `!=`, `>=`, `>` and their word forms), `dev` ''DEVICE'', `fwmark` \
''MARK''[`/`''MASK''], `cgroup` ''PATH'' and `autobound`, combined with `and`, `or`, \
`not` and parentheses; adjacent predicates are joined by `and`. A host is \
[''FAMILY''`:`]''ADDRESS''[`:`''PORT''], with IPv6 addresses in brackets and an \
optional prefix length. sockscope gives the filter to the kernel as bytecode when it can \
and evaluates it itself otherwise."""

ENV = (
    (
        "COLUMNS",
        "The width of the output when standard output is not a terminal. When it "
        "is unset or not a positive number, columns are not padded to a width.",
    ),
    (
        "PROC_ROOT",
        "Read /proc files under this directory instead of /proc. When set, the "
        "tables that have a /proc file are read from it rather than through netlink.",
    ),
    (
        "PROC_NET_TCP, PROC_NET_TCP6, PROC_NET_UDP, PROC_NET_UDP6, PROC_NET_RAW, PROC_NET_RAW6, "
        "PROC_NET_UNIX, PROC_NET_PACKET, PROC_NET_NETLINK",
        "Read that table from the named file instead of through netlink. Setting "
        "PROC_NET_DCCP, PROC_NET_SCTP or PROC_NET_MPTCP skips the netlink dump of that table, "
        "which has no /proc file.",
    ),
    (
        "PROC_NET_SOCKSTAT, PROC_NET_SOCKSTAT6, PROC_NET_SNMP",
        "Files that `-s` reads instead of /proc/net/sockstat, /proc/net/sockstat6 and "
        "/proc/net/snmp.",
    ),
    (
        "PROC_IP_LOCAL_PORT_RANGE",
        "The file read instead of /proc/sys/net/ipv4/ip_local_port_range for `autobound`.",
    ),
    (
        "TCPDIAG_FILE",
        "Read TCP sockets from this file, as written by `-D`, instead of "
        "asking the kernel. Only the filter expression applies to them.",
    ),
    (
        "SOCKSCOPE_PURE",
        "When set, use the pure-Python implementation even where the "
        "optional compiled one is installed. The output is the same either way.",
    ),
)

EXIT = (
    (
        "0",
        "Success, also when no socket matched. With `--json`, `-j`, `--json-lines` or "
        "`--jsonl`, also when the reader of the output goes away early (`| head -1`): the "
        "run ends quietly, without a message.",
    ),
    (
        "1",
        "A run-time failure that ss reports the same way, such as an unreadable file or "
        "`-Z` without SELinux.",
    ),
    (
        "255",
        "A usage error: an unknown option, family, table or state, or a bad filter "
        "(ss's `exit(-1)`).",
    ),
    ("130", "Interrupted by SIGINT (ss dies of the signal, which a shell reports as 130 too)."),
    (
        "141",
        "In a shell, for the text output only, when the reader goes away before the output "
        "is written (`| head -1` on a long listing): the process ends by SIGPIPE, without "
        "a message, as ss does. An output that fits in the pipe ends with 0.",
    ),
)

EXAMPLES = (
    ("sockscope -tan", "All TCP sockets, numerically."),
    ("sockscope -tlnp", "Listening TCP sockets with their processes."),
    (
        "sockscope -o state established '( dport = :ssh or sport = :ssh )'",
        "Established SSH connections with their timers.",
    ),
    ("sockscope -a -A 'all,!tcp'", "Sockets of every table but TCP."),
    (
        "sockscope -tn --json-lines state established | jq -c '{peer_address, peer_port}'",
        "The peers of established TCP connections, one JSON object per line.",
    ),
    ("sockscope -s --json | jq .summary.tcp", "The TCP summary as data."),
)


def esc(text: str) -> str:
    """Escape plain text for roff: backslashes and hyphens (as minus signs, for copying)."""
    return text.replace("\\", "\\e").replace("-", "\\-")


def roff(text: str) -> str:
    """Plain text with ``bold``/''italic'' markup to roff (already-escaped parts kept)."""
    out = []
    for para in text.split("\n\n"):
        lines = []
        for line in para.split("\n"):
            if line.startswith("."):  # a request written out in a section
                lines.append(line)
                continue
            s = esc(line)
            s = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", s)
            s = re.sub(r"''([^']*)''", r"\\fI\1\\fR", s)
            if s.startswith(("'", ".")):
                s = "\\&" + s
            lines.append(s)
        out.append("\n".join(lines))
    return "\n.PP\n".join(out)


def _opt_head(o: Opt) -> str:
    arg = esc(o.arg)
    parts = []
    if o.short:
        parts.append(f"\\fB\\-{o.short}\\fR" + (f" \\fI{arg}\\fR" if arg else ""))
    for name in o.longs:
        head = f"\\fB\\-\\-{esc(name)}\\fR" + (f"=\\fI{arg}\\fR" if arg else "")
        if o.optional:
            head += f"[=\\fI{esc(o.optional)}\\fR]"
        parts.append(head)
    return ", ".join(parts)


def man_page(version: str) -> str:
    """The whole of man/sockscope.1."""
    o: list[str] = [
        '.\\" Generated by tools/genman.py from its table of options; do not edit.',
        '.\\" SPDX-License-Identifier: GPL-2.0-or-later',
        f'.TH SOCKSCOPE 1 "" "sockscope {version}" "User Commands"',
        ".SH NAME",
        "sockscope \\- investigate sockets: a drop\\-in ss with JSON output",
        ".SH SYNOPSIS",
        ".B sockscope",
        '.RI [ options ] " [ FILTER ]"',
        ".br",
        ".B python3 \\-m sockscope",
        '.RI [ options ] " [ FILTER ]"',
        ".SH DESCRIPTION",
        roff(
            "`sockscope` lists sockets as iproute2's `ss` does. It takes ss's options and "
            "filter, and prints byte for byte what `ss` of iproute2 7.1 prints for the same "
            "sockets, with the same exit status, so it can stand in for `ss` in scripts.\n\n"
            "This page lists every option briefly; ss(8) describes ss's options, output "
            "fields and filter language in depth, and all of it applies to sockscope. The "
            "options sockscope adds (JSON output and `--version`) are described in full "
            "here.\n\n"
            "Without options, sockscope lists the connected sockets (in any state but "
            "listening and closed) of every table: TCP, UDP, Unix and the others."
        ),
        ".SH OPTIONS",
    ]
    for group, title in GROUPS:
        o.append(f".SS {title}")
        for opt in OPTIONS:
            if opt.group != group:
                continue
            o.append(".TP")
            o.append(_opt_head(opt))
            o.append(roff(opt.text))
    o += [".SH FILTER", roff(FILTER_SECTION)]
    o += [".SH JSON OUTPUT", roff(JSON_SECTION)]
    o += [
        ".SH BEYOND SS",
        roff(
            "What sockscope adds to ss, all of it outside ss's options so that ss's "
            "output stays byte for byte the same:"
        ),
    ]
    for opt in OPTIONS:
        if opt.origin == "sockscope":
            o += [".TP", _opt_head(opt), roff(opt.summary[0].upper() + opt.summary[1:] + ".")]
    o += [
        ".PP",
        roff(
            "The same data is available to Python programs: `import sockscope` gives a "
            "typed, streaming API whose records' `to_dict()` is the object that "
            "`--json` prints (see the README)."
        ),
    ]
    o.append(".SH ENVIRONMENT")
    for name, text in ENV:
        o += [".TP", "\\fB" + esc(name) + "\\fR", roff(text)]
    o.append(".SH EXIT STATUS")
    o.append(roff("sockscope exits with the statuses of ss 7.1:"))
    for code, text in EXIT:
        o += [".TP", f"\\fB{code}\\fR", roff(text)]
    o += [
        ".SH DIFFERENCES FROM SS",
        roff(
            "None intended: for the same sockets, sockscope prints what ss 7.1 prints. "
            "This includes ss's oddities, which are listed with the test that pins each one "
            "in QUIRKS.md in the source distribution (also at "
            "https://github.com/sockscope/sockscope/blob/main/QUIRKS.md). Debian's "
            "/usr/bin/ss 6.1 differs from 7.1 in places; sockscope follows 7.1.\n\n"
            "sockscope adds to ss, never changes it: the options of the JSON section "
            "(rejected by ss), a section after ss's text for `-h`, and a second line after "
            "ss's version line for `--version` (`-V` prints ss's line alone). The JSON "
            "output ends with status 0 when its reader goes away early."
        ),
        ".SH EXAMPLES",
    ]
    for cmd, text in EXAMPLES:
        o += [".TP", f"\\fB{esc(cmd)}\\fR", roff(text)]
    o += [
        ".SH SEE ALSO",
        ".BR ss (8),",
        ".BR ip (8),",
        ".BR jq (1)",
        ".SH BUGS",
        roff("Report bugs at https://github.com/sockscope/sockscope/issues."),
        ".SH COPYRIGHT",
        roff(
            "sockscope is free software under the GNU General Public License, version 2 or "
            "(at your option) any later version."
        ),
    ]
    return "\n".join(o) + "\n"


# --------------------------------------------------------------------------- bash


def _words(xs: list[str] | tuple[str, ...]) -> str:
    return " ".join(xs)


def bash_completion() -> str:
    """The whole of completions/sockscope (bash; named after the command, as bash-completion
    looks it up)."""
    longs = [f"--{n}" for opt in OPTIONS for n in opt.longs]
    shorts = [f"-{opt.short}" for opt in OPTIONS if opt.short]
    arg_short = "".join(opt.short for opt in OPTIONS if opt.arg and opt.short)
    cases = {}
    for opt in OPTIONS:
        if not opt.arg:
            continue
        pats = ([f"-{opt.short}"] if opt.short else []) + [f"--{n}" for n in opt.longs]
        cases.setdefault(opt.kind, []).extend(pats)
    kind_code = {
        "family": '_sockscope_reply "$cur" "$_sockscope_families"',
        "table": "_sockscope_tables",
        "netns": "_sockscope_netns",
        "file": '_sockscope_reply "$cur" "-"; _sockscope_files',
        "": "",
    }
    case_lines = []
    for kind, pats in cases.items():
        case_lines.append(f"        {'|'.join(pats)})")
        case_lines.append(f"            {kind_code[kind] or ':'}")
        case_lines.append("            return ;;")
    return f"""\
# bash completion for sockscope(1)                          -*- shell-script -*-
# Generated by tools/genman.py from its table of options; do not edit.
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install as $(pkg-config --variable=completionsdir bash-completion)/sockscope
# (usually /usr/share/bash-completion/completions/sockscope), or source it from ~/.bashrc.

_sockscope_longs='{_words(longs)}'
_sockscope_shorts='{_words(shorts)}'
_sockscope_families='{_words(FAMILIES)}'
_sockscope_tables='{_words(TABLES)}'
_sockscope_states='{_words(STATES + STATE_GROUPS)}'
_sockscope_filter='{_words(FILTER_WORDS)}'

# _sockscope_reply PREFIX WORDS: add the WORDS that start with PREFIX
_sockscope_reply()
{{
    local w
    for w in $2; do
        [[ $w == "$1"* ]] && COMPREPLY+=("$w")
    done
}}

_sockscope_files()
{{
    local IFS=$'\\n'
    COMPREPLY+=($(compgen -f -- "$cur"))
    compopt -o filenames 2>/dev/null
}}

_sockscope_netns()
{{
    local ns
    for ns in {NETNS_DIR}/*; do
        [[ -e $ns ]] || continue
        ns=${{ns##*/}}
        [[ $ns == "$cur"* ]] && COMPREPLY+=("$ns")
    done
}}

# comma-separated table names, each optionally negated with !
_sockscope_tables()
{{
    local head="" last="$cur" neg="" w
    if [[ $cur == *,* ]]; then
        head="${{cur%,*}},"
        last="${{cur##*,}}"
    fi
    if [[ $last == '!'* ]]; then
        neg='!'
        last="${{last#!}}"
    fi
    for w in $_sockscope_tables; do
        [[ $w == "$last"* ]] && COMPREPLY+=("$head$neg$w")
    done
    compopt -o nospace 2>/dev/null
    if (( ${{#COMPREPLY[@]}} == 1 )); then
        compopt +o nospace 2>/dev/null
    fi
}}

_sockscope()
{{
    COMPREPLY=()
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" i=$COMP_CWORD
    (( i > 0 )) && prev="${{COMP_WORDS[i-1]}}"

    # --opt=value: bash splits it into "--opt" "=" "value"
    if [[ $cur == "=" && $prev == --* ]]; then
        cur=""
    elif [[ $prev == "=" ]] && (( i > 1 )); then
        prev="${{COMP_WORDS[i-2]}}"
    fi

    # a cluster of short options whose last letter takes the next word: -tA tcp
    if [[ $prev == -[!-]* ]]; then
        local j c
        for (( j = 1; j < ${{#prev}}; j++ )); do
            c="${{prev:j:1}}"
            if [[ "{arg_short}" == *"$c"* ]]; then
                (( j == ${{#prev}} - 1 )) && prev="-$c"
                break
            fi
        done
    fi

    case $prev in
{chr(10).join(case_lines)}
        state|exclude)
            _sockscope_reply "$cur" "$_sockscope_states"
            return ;;
        dev)
            local IFS=$'\\n'
            [[ -d /sys/class/net ]] && COMPREPLY=($(compgen -W "$(ls /sys/class/net)" -- "$cur"))
            return ;;
    esac

    if [[ $cur == --* ]]; then
        _sockscope_reply "$cur" "$_sockscope_longs"
        local k
        for k in "${{!COMPREPLY[@]}}"; do
            case ${{COMPREPLY[k]}} in
                {"|".join(f"--{n}" for o in OPTIONS if o.arg for n in o.longs)})
                    COMPREPLY[k]+="="
                    compopt -o nospace 2>/dev/null ;;
            esac
        done
    elif [[ $cur == -* ]]; then
        _sockscope_reply "$cur" "$_sockscope_shorts $_sockscope_longs"
    else
        _sockscope_reply "$cur" "$_sockscope_filter"
    fi
}} &&
complete -F _sockscope sockscope
"""


# --------------------------------------------------------------------------- zsh


def _zq(text: str) -> str:
    """Text inside a zsh _arguments description: escape ], [, : and quotes."""
    return (
        text.replace("\\", "\\\\")
        .replace("'", "'\\''")
        .replace("[", "\\[")
        .replace("]", "\\]")
        .replace(":", "\\:")
    )


def zsh_completion() -> str:
    """The whole of completions/_sockscope."""
    action = {
        "family": f"({' '.join(FAMILIES)})",
        "table": "_sockscope_tables",
        "netns": "_sockscope_netns",
        "file": "_files",
        "": " ",
    }
    specs = []
    for opt in OPTIONS:
        desc = _zq(opt.summary)
        names = ([f"-{opt.short}"] if opt.short else []) + [f"--{n}" for n in opt.longs]
        for name in names:
            if opt.arg:
                sep = "=" if name.startswith("--") else "+"
                spec = f"'{name}{sep}[{desc}]:{opt.arg.lower()}:{action[opt.kind]}'"
            else:
                spec = f"'{name}[{desc}]'"
            specs.append(f"    {spec} \\")
    return f"""\
#compdef sockscope
# zsh completion for sockscope(1)
# Generated by tools/genman.py from its table of options; do not edit.
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install as _sockscope in a directory of $fpath (e.g. /usr/share/zsh/site-functions).

_sockscope_tables() {{
  local -a tables
  tables=( {" ".join(TABLES)} )
  compset -P '*,'
  compset -P '!'
  _describe -t tables 'socket table (!TABLE excludes it)' tables -qS,
}}

_sockscope_netns() {{
  local -a ns
  ns=( {NETNS_DIR}/*(N:t) )
  _describe -t netns 'network namespace' ns
}}

_sockscope_filter() {{
  case $words[CURRENT-1] in
    state|exclude)
      local -a st
      st=( {" ".join(STATES + STATE_GROUPS)} )
      _describe -t states 'socket state' st ;;
    dev)
      local -a ifs
      ifs=( /sys/class/net/*(N:t) )
      _describe -t interfaces 'network interface' ifs ;;
    *)
      local -a kw
      kw=( {" ".join(FILTER_WORDS)} )
      _describe -t filter 'filter keyword' kw ;;
  esac
}}

_sockscope() {{
  _arguments -s -S \\
{chr(10).join(specs)}
    '*:filter:_sockscope_filter'
}}

_sockscope "$@"
"""


# --------------------------------------------------------------------------- main


def version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    return {
        ROOT / "man" / "sockscope.1": man_page(version()),
        ROOT / "completions" / "sockscope": bash_completion(),
        ROOT / "completions" / "_sockscope": zsh_completion(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args(argv)
    status = 0
    for path, text in outputs().items():
        rel = path.relative_to(ROOT)
        if args.check:
            try:
                same = path.read_text(encoding="utf-8") == text
            except FileNotFoundError:
                same = False
            if not same:
                print(f"{rel}: differs from tools/genman.py's output", file=sys.stderr)
                status = 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")
    return status


if __name__ == "__main__":
    sys.exit(main())
