"""Dependencies point one way: jobs -> notifiers -> workflow; inside jobs, the host, the commands and the console sit on top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("package", "forbidden"), [("workflow", ["notifiers", "jobs"]), ("notifiers", ["jobs"])])
def test_a_package_does_not_import_the_packages_above_it(package: str, forbidden: list[str]) -> None:
    code = f"import sys, {package}; print([m for m in {forbidden!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, relative imports resolved against the ``jobs`` package."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "jobs" if node.level == 1 else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.update(f"{module}.{alias.name}" for alias in node.names)
            names.add(module)
    return names


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "jobs").glob("*.py") if p.name != "__main__.py"),
                         ids=lambda p: p.name)
def test_the_pipeline_imports_neither_the_worker_host_nor_the_commands(path: Path) -> None:
    above = sorted(name for name in _imports(path)
                   if name.startswith(("jobs.worker.", "jobs.commands.", "jobs.console."))
                   or name in ("jobs.worker", "jobs.commands", "jobs.console"))
    assert above == []
