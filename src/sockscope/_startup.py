"""The start-up bundle: the compiled code of a plain listing's modules in one file.

The installed command (``scripts/sockscope-run``) spends about a millisecond finding,
opening and reading the compiled files of the two dozen modules a plain listing
imports, one at a time through the import system. The bundle holds their code in one
file, read with one ``read``; :class:`Bundle`, put first on ``sys.meta_path``, serves
those modules from it and leaves every other import to the import system.

It is a cache with the rules of ``__pycache__``: each module's code is used only while
its source file has the modification time and size recorded with it (what a ``.pyc``
file records), a module whose source changed is imported from its source as usual, and
the bundle is written again by the next plain listing that has imported them all, when
the directory is writable and bytecode is written at all (not under ``-B``). A bundle
that cannot be read is ignored. Library callers, ``python -m sockscope`` and the tests
never read it: only the launcher does.

The file is this module's own cache file (``__pycache__/_startup.<tag>.pyc``), so that
installers remove it with the package; its header is not a ``.pyc`` one, so the import
system recompiles this module from its source if something imports it by name. The
bundle carries this module's code too: the launcher runs it to serve the others.
"""

from __future__ import annotations

import marshal
import sys
from posix import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec, SourceFileLoader
    from types import CodeType
else:
    # the import system's own module (always loaded): importlib.machinery would be
    # another module to import at every start
    SourceFileLoader = sys.modules["_frozen_importlib_external"].SourceFileLoader

#: the first bytes of a bundle, then the interpreter's magic number (a .pyc starts with
#: that number); scripts/sockscope-run checks both
HEADER = b"sockscope-startup\n"

#: the modules of a plain listing on the compiled path (``sockscope -tan``), in the
#: order they are imported; tests/test_imports.py keeps this list true
MODULES = (
    "sockscope",
    "sockscope.errors",
    "sockscope.cli",
    "sockscope.cli.command",
    "sockscope.cli.argv",
    "sockscope.kernel",
    "sockscope.kernel.abi",
    "sockscope.options",
    "sockscope.query",
    "sockscope.query.selection",
    "sockscope.cli.status",
    "sockscope.cli.listing",
    "sockscope.tables",
    "sockscope.tables.context",
    "sockscope.tables.inet",
    "sockscope.tables.inet.plan",
    "sockscope.accel",
    "sockscope.kernel.netlink",
    "sockscope.render",
    "sockscope.render.columns",
    "sockscope.render.names",
    "sockscope.render.printer",
    "sockscope.tables.walk",
    "sockscope.tables.inet.row",
    "sockscope.tables.inet.layout",
    "sockscope.tables.inet.fast",
)

#: per module: (is a package, source mtime, source size, marshalled code)
Entry = tuple[bool, int, int, bytes]


def path_of(top: str) -> str:
    """The bundle of the package under ``top`` (the directory on sys.path holding it)."""
    return f"{top}/sockscope/__pycache__/_startup.{sys.implementation.cache_tag}.pyc"


def _magic() -> bytes:
    magic: bytes = sys.modules["_frozen_importlib_external"].MAGIC_NUMBER
    return magic


def _source(top: str, name: str, is_pkg: bool) -> str:
    base = f"{top}/{name.replace('.', '/')}"
    return f"{base}/__init__.py" if is_pkg else f"{base}.py"


def _stamp(path: str) -> tuple[int, int]:
    """What a timestamp .pyc records of its source: mtime and size, 32 bits each."""
    st = stat(path)
    return int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF


class _Loader(SourceFileLoader):
    """A source file loader whose code comes from the bundle (everything else about the
    module, its ``__file__``, ``__cached__`` and resources, is the source file's)."""

    def __init__(self, fullname: str, path: str, code: bytes) -> None:
        super().__init__(fullname, path)
        self.code = code

    def get_code(self, fullname: str) -> CodeType:
        code: CodeType = marshal.loads(self.code)
        return code


class Bundle:
    """The meta path finder of a bundle's modules (see the module's docstring)."""

    def __init__(self, top: str, entries: dict[str, Entry]) -> None:
        self.top = top
        self.entries = entries
        #: a module's source differs from its code here, or the bundle lacks one
        self.stale = set(entries) != set(MODULES)

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        entry = self.entries.get(name)
        if entry is None:
            return None
        try:
            is_pkg, mtime, size, code = entry
            origin = _source(self.top, name, is_pkg)
            fresh = _stamp(origin) == (mtime, size)
        except (OSError, TypeError, ValueError):
            fresh = False
        if not fresh:
            self.stale = True
            del self.entries[name]
            return None
        from_file = sys.modules["_frozen_importlib_external"].spec_from_file_location
        where = [origin.rpartition("/")[0]] if is_pkg else None
        spec: ModuleSpec = from_file(
            name, origin, loader=_Loader(name, origin, code), submodule_search_locations=where
        )
        return spec

    def refresh(self) -> None:
        """Write the bundle again when it is stale (see :func:`write`)."""
        if self.stale:
            write(self.top, self.entries)


def install(top: str, entries: dict[str, Entry]) -> Bundle:
    """Serve the modules of a bundle's ``entries`` first (the launcher has read the
    file at :func:`path_of` and checked its :data:`HEADER` and magic number)."""
    bundle = Bundle(top, entries)
    sys.meta_path.insert(0, bundle)
    return bundle


def write(top: str, known: dict[str, Entry] | None = None) -> None:
    """Write the bundle of the package under ``top`` after a plain listing, from the
    compiled code of its modules (their ``.pyc`` files, the still-fresh ``known``
    entries, else their sources), or leave it: another command that did not import
    them all, bytecode writing turned off, a directory that is not writable. Never
    raises: the listing has been printed and its status stands."""
    import posix

    if sys.dont_write_bytecode or any(name not in sys.modules for name in MODULES):
        return
    path = path_of(top)
    if not posix.access(path.rpartition("/")[0], posix.W_OK):
        return  # (an installation the user cannot write: no bundle, as no .pyc files)
    tmp = f"{path}.{posix.getpid()}"  # (a file of this name is an earlier run's leftover)
    written = False
    try:
        entries = {name: _entry(top, name, (known or {}).get(name)) for name in MODULES}
        own = _source(top, __name__, False)
        with open(own, "rb") as f:
            code = compile(f.read(), own, "exec", dont_inherit=True)
        data = HEADER + _magic() + marshal.dumps((code, entries))  # read by the launcher
        try:
            posix.unlink(tmp)
        except OSError:
            pass
        fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[posix.write(fd, view) :]
        finally:
            posix.close(fd)
        posix.rename(tmp, path)  # whole or not at all, for a command started meanwhile
        written = True
    except (OSError, ValueError, SyntaxError, MemoryError):
        pass
    finally:
        if not written:  # (a signal too: no half-written file is left behind)
            try:
                posix.unlink(tmp)
            except OSError:
                pass


def _entry(top: str, name: str, known: Entry | None) -> Entry:
    """One module's entry: its source's stamp and its code, taken from its .pyc when
    that was compiled from this source (as the import system checks one), else from
    ``known`` (served by the bundle this run), else compiled from the source."""
    module = sys.modules[name]
    is_pkg = hasattr(module, "__path__")
    origin = _source(top, name, is_pkg)
    stamp = _stamp(origin)
    if known is not None and known[1:3] == stamp:
        return known
    cached = getattr(module, "__cached__", None)
    if cached:
        try:
            with open(cached, "rb") as f:
                pyc = f.read()
        except OSError:
            pyc = b""
        # magic, flags 0 (a timestamp .pyc), source mtime and size
        header = _magic() + bytes(4) + stamp[0].to_bytes(4, "little")
        if pyc[:16] == header + stamp[1].to_bytes(4, "little"):
            return is_pkg, stamp[0], stamp[1], pyc[16:]
    with open(origin, "rb") as f:
        code = compile(f.read(), origin, "exec", dont_inherit=True)
    return is_pkg, stamp[0], stamp[1], marshal.dumps(code)
