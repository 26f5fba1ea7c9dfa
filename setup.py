"""setuptools hook; the project's metadata and configuration are in pyproject.toml.

The only thing set here: the sdist keeps the symbolic links of the test fixtures. The
golden cases hold fake ``/proc/PID/fd`` directories whose entries are links to
``socket:[INODE]`` (dangling, as in the real /proc), which setuptools' file list skips.
Without them the tests would not pass from the sdist. Links to absolute paths (the fixtures'
``/dev/null`` descriptors, which ss ignores as it ignores every non-socket descriptor) are
left out: ``build`` and ``pip`` refuse to unpack an sdist that holds one.
"""

from __future__ import annotations

import os

from setuptools import setup
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


setup(cmdclass={"sdist": SdistWithLinks})
