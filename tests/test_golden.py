"""Byte-for-byte comparison with upstream ss 7.1 on recorded inputs (see goldtest.py)."""

from __future__ import annotations

import pytest

import goldtest

#: every test here runs against both backends, compiled and pure (conftest.py)
pytestmark = pytest.mark.usefixtures("backend")

CASES = goldtest.all_cases()


@pytest.fixture(scope="session")
def update_oracle(request: pytest.FixtureRequest) -> str | None:
    ss = request.config.getoption("--update-golden")
    problem = ss and goldtest.oracle_problem(ss)
    if problem:
        pytest.exit(f"--update-golden: {problem}", returncode=4)
    return ss


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case: goldtest.Case, update_oracle: str | None) -> None:
    if update_oracle and case.scenario.parent == goldtest.GOLDEN:
        case = goldtest.update(case, update_oracle)
    failure = goldtest.check(case)
    if failure:
        pytest.fail(failure, pytrace=False)


def test_golden_cases_exist() -> None:
    """The project's own goldens are part of the repository: never silently run zero cases."""
    assert goldtest.all_cases(goldtest.GOLDEN), "no cases under tests/golden"


def test_shared_golden_cases() -> None:
    """``../shared/goldens``, beside the checkout, adds cases when it is there (run above
    as ``shared/...``); it is never needed."""
    if not goldtest.SHARED_GOLDEN.is_dir():
        pytest.skip(f"{goldtest.SHARED_GOLDEN} is absent: only tests/golden runs")
    assert goldtest.all_cases(goldtest.SHARED_GOLDEN)
