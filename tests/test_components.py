"""The rule for a real component a test cannot find: a failure under CI, elsewhere a skip that
the run's last lines name with the command that installs it (tests/components.py)."""
from __future__ import annotations

import pytest

from tests.components import in_ci

NEEDS_CHROMIUM = """
from tests.components import CHROMIUM, require


def test_page():
    require(CHROMIUM, "no chromium on PATH")


def test_screenshot():
    require(CHROMIUM, "no chromium on PATH")


def test_without_it():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A suite of three tests, two needing Chromium, with this project's terminal summary."""
    pytester.makeconftest("from tests.conftest import pytest_terminal_summary, pytest_unconfigure  # noqa: F401\n")
    pytester.makepyfile(test_needs=NEEDS_CHROMIUM)
    return pytester


def test_outside_ci_a_missing_component_skips_and_one_line_names_it_its_tests_and_its_install(
        suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest("-p", "no:cacheprovider", "-n", "2")  # as make test runs: reports cross xdist
    result.assert_outcomes(passed=1, skipped=2)
    assert result.outlines[-1] == ("missing components, their tests skipped: Chromium (2 tests: test_needs.py; "
                                   "install: sudo apt-get install -y chromium)")
    assert sum(line.startswith("missing components") for line in result.outlines) == 1


@pytest.mark.parametrize("value", ["true", "1", "yes", "True"])
def test_under_ci_a_missing_component_fails_its_tests(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                      value: str) -> None:
    monkeypatch.setenv("CI", value)
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*CI is set but Chromium is missing: no chromium on PATH*"])
    assert not any(line.startswith("missing components") for line in result.outlines)


@pytest.mark.parametrize(("value", "expected"), [
    (None, False), ("", False), ("0", False), ("false", False), ("No", False), (" ", False),
    ("true", True), ("1", True), ("yes", True)])
def test_ci_has_one_meaning(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_ci_run_is_what_ci_runs_by_hand() -> None:
    """`bash .ci/run` exports CI=true itself: run by hand, it is no less strict than in CI."""
    from tests.paths import ROOT

    assert "\nexport CI=true\n" in (ROOT / ".ci" / "run").read_text()
