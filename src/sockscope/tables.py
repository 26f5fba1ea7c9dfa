"""The non-inet tables (UNIX, PACKET, NETLINK, VSOCK, TIPC, XDP): placeholder.

Being ported in issue 5; until then these tables print nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .columns import Renderer
    from .show import Printer
    from .sources import Context


def show(name: str, ctx: Context, printer: Printer, renderer: Renderer) -> None:
    """Dump one non-inet table into the renderer."""
    return
