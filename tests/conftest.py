"""Shared pytest setup: make tests/ importable (goldtest, netns) and register markers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
SRC = TESTS.parent / "src"
if SRC.is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


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
    config.addinivalue_line("markers", "live: needs root, ip netns, nsenter and /usr/bin/ss")
    config.addinivalue_line("markers", "slow: long-running")


def _hypothesis_profiles() -> None:
    """Under CI (CI=true) every property test draws the same examples on every run, so a
    submission does not land or fail by luck; locally they explore new examples."""
    try:
        from hypothesis import settings
    except ImportError:  # pragma: no cover - hypothesis is a test dependency
        return
    settings.register_profile("ci", derandomize=True, database=None)
    import os

    if os.environ.get("CI"):
        settings.load_profile("ci")


_hypothesis_profiles()
