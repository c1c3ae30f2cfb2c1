"""The wheel holds the three packages with py.typed, and the pytest plugin's module; the names are ours."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_import_names_belong_to_tidings_only() -> None:
    owners = importlib.metadata.packages_distributions()
    for name in ("workflow", "notifiers", "jobs", "tidings_pytest"):
        assert set(owners.get(name, [])) == {"tidings"}, f"'{name}' is also provided by {owners.get(name)}: uninstall it."


def test_the_wheel_holds_the_packages_and_their_py_typed_markers(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                   check=True, timeout=300, capture_output=True)
    [wheel] = tmp_path.glob("tidings-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = [p.relative_to(ROOT).as_posix() for package in ("workflow", "notifiers", "jobs")
               for p in (ROOT / package).rglob("*.py")]
    assert [m for m in modules if m not in names] == []  # every module, subpackages included
    for package in ("workflow", "notifiers", "jobs"):
        assert f"{package}/py.typed" in names
    assert "tidings_pytest.py" in names  # the pytest plugin the entry point names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "bench/"))]


def test_the_extras_the_readme_lists_are_those_the_package_declares() -> None:
    install = (ROOT / "README.md").read_text().split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w-]+)` \|", install, re.MULTILINE))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert listed == set(declared)
