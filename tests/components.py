"""The real components some tests start, and the one rule for a test that cannot find one.

PostgreSQL, SLURM, Chromium and ``chattr`` are system packages, not Python ones: ``.ci/run``
installs them (``apt-get``), a developer's machine may lack them. Every guard goes through
``require``: under CI (``CI`` set to anything but empty, ``0``, ``false`` or ``no``; ``.ci/run``
exports ``CI=true``) a missing component fails the test, so CI cannot go green by skipping;
elsewhere the test skips with a reason that starts with ``MISSING`` ("missing component") and
names the component, and ``make test`` ends with one line listing each missing component, its
skipped tests and the command that installs it (``tests/conftest.py``'s ``pytest_unconfigure``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

#: How a skip reason for a missing component starts (the terminal summary looks for it).
MISSING = "missing component"


def in_ci() -> bool:
    """True when ``CI`` says so: set, and not one of ``''``, ``0``, ``false``, ``no``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class Component:
    """A system package the tests start for real; ``install`` is the one command that gets it."""

    name: str
    install: str


POSTGRESQL = Component("PostgreSQL 15", "sudo apt-get install -y postgresql-15")
SLURM = Component("SLURM", "sudo apt-get install -y slurm-wlm slurmdbd munge mariadb-server")
CHROMIUM = Component("Chromium", "sudo apt-get install -y chromium")
CHATTR = Component("chattr", "sudo apt-get install -y e2fsprogs")
COMPONENTS = (POSTGRESQL, SLURM, CHROMIUM, CHATTR)


def require(component: Component, missing: str | None) -> None:
    """Fail (under CI) or skip (elsewhere) when ``missing`` says why ``component`` is not here.

    ``missing`` is None when the component is present: nothing happens then.
    """
    if missing is None:
        return
    if in_ci():
        pytest.fail(f"CI is set but {component.name} is missing: {missing} "
                    f"(.ci/run installs it: {component.install})", pytrace=False)
    pytest.skip(f"{MISSING} {component.name}: {missing}")


def require_path(component: Component, path: Path, what: str) -> None:
    """``require`` for one file, e.g. PostgreSQL's ``initdb``."""
    require(component, None if path.exists() else f"{what} not found at {path}")


def chromium() -> str:
    """Headless Chromium's executable (Debian's ``chromium``), or fail/skip as ``require`` says."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require(CHROMIUM, None if found else "no chromium on PATH")
    return found


def chattr() -> str:
    """``chattr`` (root makes a folder read-only with it), or fail/skip as ``require`` says."""
    found = shutil.which("chattr") or shutil.which("chattr", path="/usr/bin:/bin:/usr/sbin:/sbin")
    require(CHATTR, None if found else "no chattr on PATH")
    return found


def missing_summary(reasons: list[tuple[str, str]]) -> str | None:
    """One line over the tests skipped for a missing component, or None when none was.

    ``reasons``: (test file, skip reason) per skipped test. E.g.
    ``missing components, their tests skipped: SLURM (11 tests: tests/test_slurm.py; install: sudo
    apt-get install -y …)``.
    """
    by_component: dict[Component, dict[str, int]] = {}
    for location, reason in reasons:
        for component in COMPONENTS:
            if reason.startswith(f"{MISSING} {component.name}:"):
                files = by_component.setdefault(component, {})
                files[location] = files.get(location, 0) + 1
    if not by_component:
        return None
    parts = []
    for component in COMPONENTS:
        files = by_component.get(component)
        if files:
            count = sum(files.values())
            parts.append(f"{component.name} ({count} test{'s' * (count != 1)}: {', '.join(sorted(files))}; "
                         f"install: {component.install})")
    return "missing components, their tests skipped: " + "; ".join(parts)
