"""Shared pytest setup: import paths, markers, and the live-test conditions, defined once.

* ``tests/`` and ``tests/tools/`` are importable (``goldtest``, ``netns``, ``fill``).
* The oracle, upstream iproute2 7.1 ``ss``, comes only from ``$SOCKSCOPE_ORACLE`` (checked
  with ``-V``); there is no default path. ``ORACLE`` is its path or None, ``ORACLE_REASON``
  says why it is missing; ``needs_oracle`` skips a test without it.
* Live tests (private network namespaces) need root, ``ip`` and ``nsenter``: ``LIVE_REASON``
  is None when they can run; ``needs_live`` skips a test otherwise, ``needs_live_oracle``
  when either is missing. A test that compares with ss but also works against the system's
  ``/usr/bin/ss`` (older, differences masked) uses ``netns.oracle()`` instead.

Nothing outside the repository is needed: ``../shared`` only adds golden cases when present.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
for _p in (TESTS, TESTS / "tools"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
SRC = REPO / "src"
if SRC.is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


#: environment variables that redirect a listing to recorded data or change its layout
_REDIRECTS = ("PROC_ROOT", "COLUMNS", "TCPDIAG_FILE", "PROC_NET_TCP", "PROC_NET_TCP6",
              "PROC_NET_UDP")  # fmt: skip


def run_driver(driver: str, spec: object, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -c DRIVER SPEC`` (a fault-injecting driver of the command, ``spec`` as
    JSON) with this tree on the path and none of the listing's redirecting variables;
    a hang fails at ``timeout``."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    for key in _REDIRECTS:
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-c", driver, json.dumps(spec)],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )  # fmt: skip


def _find_oracle() -> tuple[str | None, str]:
    path = os.environ.get("SOCKSCOPE_ORACLE", "")
    if not path:
        return None, "SOCKSCOPE_ORACLE is not set (the path of an upstream iproute2 7.1 ss)"
    if not os.access(path, os.X_OK):
        return None, f"SOCKSCOPE_ORACLE={path} is not an executable file"
    try:
        out = subprocess.run(
            [path, "-V"], capture_output=True, text=True, check=False, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"SOCKSCOPE_ORACLE={path}: {e}"
    if "iproute2-7.1" not in out:
        return None, f"SOCKSCOPE_ORACLE={path} is not ss 7.1 (-V says {out.strip()!r})"
    return path, ""


def _live_reason() -> str | None:
    if os.geteuid() != 0:
        return "live tests need root (they create network namespaces)"
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"live tests need {tool}"
    return None


ORACLE, ORACLE_REASON = _find_oracle()
LIVE_REASON = _live_reason()
needs_oracle = pytest.mark.skipif(ORACLE is None, reason=ORACLE_REASON)
needs_live = pytest.mark.skipif(LIVE_REASON is not None, reason=LIVE_REASON or "")
needs_live_oracle = pytest.mark.skipif(
    LIVE_REASON is not None or ORACLE is None, reason=LIVE_REASON or ORACLE_REASON
)


def oracle_path() -> str:
    """The oracle's path for a test that is marked ``needs_oracle`` (skips otherwise)."""
    if ORACLE is None:
        pytest.skip(ORACLE_REASON)
    return ORACLE


def _compiled_available() -> bool:
    try:
        import sockscope._core  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=["compiled", "pure"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test against both backends: the C core and pure Python (SOCKSCOPE_PURE=1).

    The commands the tests start inherit the choice through the environment
    (goldtest.Case.environ, netns.tool_env). Without a built core the compiled variant
    is skipped; tests/test_core.py fails instead when CI expects the core.
    """
    if request.param == "compiled":
        if not _compiled_available():
            pytest.skip("the compiled core is not built (pure Python only)")
        monkeypatch.delenv("SOCKSCOPE_PURE", raising=False)
    else:
        monkeypatch.setenv("SOCKSCOPE_PURE", "1")
    return str(request.param)


def pytest_addoption(parser):  # type: ignore[no-untyped-def]
    parser.addoption(
        "--update-golden",
        metavar="SS",
        default=None,
        help="re-run an upstream iproute2 7.1 ss (version-checked) on every golden case "
        "under tests/golden and rewrite its expected stdout/status before comparing",
    )


def pytest_configure(config):  # type: ignore[no-untyped-def]
    config.addinivalue_line(
        "markers", "live: needs root, ip and nsenter (private network namespaces)"
    )
    config.addinivalue_line("markers", "slow: long-running")


def _hypothesis_profiles() -> None:
    """Under CI (CI=true) every property test draws the same examples on every run, so a
    submission does not land or fail by luck; locally they explore new examples."""
    try:
        from hypothesis import settings
    except ImportError:  # pragma: no cover - hypothesis is a test dependency
        return
    settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")


_hypothesis_profiles()
