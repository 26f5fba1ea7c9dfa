"""The display options of one run: what ss keeps in its show_* globals.

One :class:`Options` object travels from the command line (or a library call) to the
printers; nothing is global.
"""

from __future__ import annotations


class Options:
    """Flags set by ss's command-line options (defaults are ss's)."""

    __slots__ = (
        "bpf_map_ids",
        "bpf_maps",
        "bpf_storages",
        "dump_file",
        "events",
        "filter_file",
        "json",
        "kill",
        "net",
        "numeric",
        "oneline",
        "resolve",
        "show_bpf",
        "show_cgroup",
        "show_details",
        "show_header",
        "show_inet_sockopt",
        "show_mem",
        "show_options",
        "show_proc_ctx",
        "show_processes",
        "show_queues",
        "show_sock_ctx",
        "show_tcpinfo",
        "show_threads",
        "show_tipcinfo",
        "show_tos",
        "summary",
    )

    def __init__(self) -> None:
        self.numeric = False
        self.resolve = False
        self.show_options = False
        self.show_details = 0
        self.show_mem = False
        self.show_tcpinfo = False
        self.show_processes = 0
        self.show_threads = 0
        self.show_bpf = 0
        self.show_proc_ctx = 0
        self.show_sock_ctx = 0
        self.show_header = True
        self.show_queues = True
        self.show_tipcinfo = False
        self.show_tos = False
        self.show_cgroup = False
        self.show_inet_sockopt = False
        self.oneline = False
        self.events = False
        self.kill = False
        #: --json: "json" (one document) or "lines" (--json-lines); None for text
        self.json: str | None = None
        self.summary = False
        self.dump_file: str | None = None
        self.filter_file: str | None = None
        self.net: str | None = None
        self.bpf_maps = False
        self.bpf_map_ids: list[int] = []
        #: the socket-local storage maps of --bpf-maps/--bpf-map-id
        #: (sockscope.tables.inet.bpfstorage.Storages), None without them
        self.bpf_storages: object = None

    @property
    def wants_users(self) -> bool:
        """Whether the /proc process map is needed (-p, -T, -Z, -z)."""
        return bool(
            self.show_processes or self.show_threads or self.show_proc_ctx or self.show_sock_ctx
        )

    @property
    def inet_wanted(self) -> bool:
        """Whether any option puts text in the extra-information cell of inet rows (here,
        not in tables.inet.row: the dumps start before the renderer's modules load)."""
        return bool(
            self.show_options
            or self.show_details
            or self.show_tos
            or self.show_cgroup
            or self.show_inet_sockopt
            or self.show_mem
            or self.show_tcpinfo
            or self.bpf_storages is not None
        )
