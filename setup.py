"""setuptools hook; the project's metadata and configuration are in pyproject.toml.

Two things are set here. The optional compiled core ``sockscope._core`` (one C file, see
src/sockscope/_core.c) is built when a C compiler and the Python headers are present;
when the build fails the install still succeeds and sockscope runs in pure Python
(``sockscope.backend()`` says which). ``SOCKSCOPE_NO_EXT=1`` skips the build on purpose.

And the sdist keeps the symbolic links of the test fixtures. The
golden cases hold fake ``/proc/PID/fd`` directories whose entries are links to
``socket:[INODE]`` (dangling, as in the real /proc), which setuptools' file list skips.
Without them the tests would not pass from the sdist. Links to absolute paths (the fixtures'
``/dev/null`` descriptors, which ss ignores as it ignores every non-socket descriptor) are
left out: ``build`` and ``pip`` refuse to unpack an sdist that holds one.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

#: trees whose symbolic links are carried into the sdist as links
LINK_TREES = ("tests",)


class SdistWithLinks(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        for top in LINK_TREES:
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "actual")]
                for name in dirnames + filenames:
                    src = os.path.join(dirpath, name)
                    dst = os.path.join(base_dir, src)
                    if not os.path.islink(src) or os.path.lexists(dst):
                        continue
                    target = os.readlink(src)
                    if os.path.isabs(target) or ".." in target.split(os.sep):
                        continue
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    os.symlink(target, dst)


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: a missing compiler or Python.h (or any
    other build error) leaves the pure-Python package, with a warning."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any build failure means pure Python
            self._skip(e)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            # a core left in build/ by an earlier build would be packed into the wheel as
            # if this build had made it: a stale binary beside newer Python code
            stale = self.get_ext_fullpath(ext.name)
            if os.path.exists(stale):
                os.remove(stale)
            self._skip(e)

    @staticmethod
    def _skip(e: BaseException) -> None:
        print(f"warning: sockscope._core not built ({e}); using pure Python", file=sys.stderr)


EXT_MODULES = []
if os.environ.get("SOCKSCOPE_NO_EXT", "") in ("", "0"):
    EXT_MODULES.append(
        Extension(
            "sockscope._core",
            sources=["src/sockscope/_core.c"],
            extra_compile_args=["-O2", "-std=c11", "-D_DEFAULT_SOURCE"],
            optional=True,
        )
    )

setup(
    cmdclass={"sdist": SdistWithLinks, "build_ext": OptionalBuildExt},
    ext_modules=EXT_MODULES,
)
