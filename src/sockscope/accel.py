"""Which implementation of the listing hot path runs: the compiled core or pure Python.

``sockscope._core`` (src/sockscope/_core.c) is an optional C extension built at install
time when a compiler is present. It is a leaf: it imports nothing of the package, so it
sits with this module at the bottom of the layers (tests/test_architecture.py) and every
layer above reaches it only through :func:`core`; ``sockscope.backend()`` is
:func:`backend`. ``SOCKSCOPE_PURE=1`` in the environment forces pure Python (read once,
when this module is first imported). The pure-Python modules stay the
reference: the compiled pieces are drop-ins that must print the same bytes.
"""

from __future__ import annotations

import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType


def _load() -> ModuleType | None:
    """The compiled core module, or None (not built, not importable, or SOCKSCOPE_PURE)."""
    # (posix.environ: os.environ writes through to it)
    if posix.environ.get(b"SOCKSCOPE_PURE", b"") not in (b"", b"0"):
        return None
    try:
        import sockscope._core as mod  # type: ignore[import-not-found]
    except ImportError:
        return None
    return mod  # type: ignore[no-any-return]


#: chosen once, when this module is imported: a constant, not a cache filled at the first
#: call (functools.cache would put functools on the listing's start-up path, ~1 ms).
#: Every listing imports this module (the column engine, the inet plan) and asks for
#: the core, so loading it here costs nothing more.
_CORE = _load()


def core() -> ModuleType | None:
    """The compiled core module, or None (not built, not importable, or SOCKSCOPE_PURE)."""
    return _CORE


def backend() -> str:
    """``"compiled"`` when the C core is in use, else ``"pure"``."""
    return "pure" if core() is None else "compiled"
