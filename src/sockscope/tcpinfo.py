"""TCP/MPTCP/SCTP internal information (``-m`` and ``-i``): decoders and printers.

Placeholder: the -m/-i printers (tcp_show_info, tcp_stats_print, mptcp_show_info,
sctp_show_info) are being ported in issue 4.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .records import InetSocket
    from .show import Printer


def info_block(p: Printer, s: InetSocket, attrs: dict[int, tuple[int, int]]) -> str:
    """The text after ``\\n\\t`` for -m/-i on an inet row."""
    return ""


def proc_info(p: Printer, s: InetSocket) -> str:
    """tcp_stats_print for a /proc TCP row."""
    return ""
