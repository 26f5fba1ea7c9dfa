"""BPF socket-local storage maps named by ``--bpf-map-id`` (ss.c's bpf_map_opts_*).

ss opens every map it is given while it parses the options, so a missing map, a
missing privilege or a map of the wrong type is an error before anything is listed.
:func:`open_map` does the same into the run's
:class:`sockscope.tables.inet.bpfstorage.Storages` (the bpf(2) calls go through
ctypes, loaded only for these options); the rows print each socket's storage from it.
"""

from __future__ import annotations

from sockscope.errors import SockscopeError
from sockscope.tables.inet.bpfstorage import Storages

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_UINT32_MAX = 0xFFFFFFFF


def parse_id(text: str) -> int | None:
    """ss's map id check: strtoul(text, &end, 0) must use the whole text and give an id
    with 0 < id < UINT32_MAX; None otherwise."""
    i, n = 0, len(text)
    while i < n and text[i] in " \t\n\v\f\r":
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    base = 10
    if text[i : i + 2].lower() == "0x" and i + 2 < n and text[i + 2] in _HEX:
        base, i = 16, i + 2
    elif text[i : i + 1] == "0":
        base = 8
    digits = "0123456789"[:base] if base <= 10 else _HEX
    start = i
    while i < n and text[i].lower() in digits:
        i += 1
    if i == start or i != n:
        return None
    value = int(text[start:i], base)
    if negative and value:
        value = (1 << 64) - value
    if value == 0 or value >= _UINT32_MAX:
        return None
    return value


_HEX = "0123456789abcdef"


def open_map(storages: Storages, map_id: int, text: str, warn: Callable[[str], None]) -> None:
    """Open map ``map_id`` (``text`` as given) as bpf_map_opts_add_id does; raise ss's
    error if that fails. Past the 32 maps ss keeps, its message is only a warning."""
    said: list[str] = []
    if not storages.load(map_id, text, said.append):
        raise SockscopeError(said[-1])
    for message in said:
        warn(message)
