"""Dependencies point one way: jobs -> notifiers -> workflow (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("package", "forbidden"), [("workflow", ["notifiers", "jobs"]), ("notifiers", ["jobs"])])
def test_a_package_does_not_import_the_packages_above_it(package: str, forbidden: list[str]) -> None:
    code = f"import sys, {package}; print([m for m in {forbidden!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
