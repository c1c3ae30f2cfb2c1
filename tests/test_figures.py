"""The performance figures the documents give are those of committed benchmark outputs: every results file
a document names is tracked by git, and every number of README's Performance table is printed by a results
file that section names."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]

# A path under bench/results/, or a results file's own name (a name ending in its commit, as `make bench`
# writes them: bench-c6716a5.md, digests-d95b2be-requests.md).
RESULTS_PATH = re.compile(r"bench/results/([\w.*-]+\.md)")
RESULTS_NAME = re.compile(r"(?<![\w.-])([a-z]+(?:-[a-z]+)*-[0-9a-f]{7}(?:-[a-z]+)*\.md)\b")
# A number as a document or a results file prints it: 3.46, 1,069, 10,000, 0.76 (of 0.76x).
# Not a number: one inside a word or a commit (the 96 of 96f99e9).
NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")


def tracked_results() -> set[str]:
    """The names of the files under bench/results/ in the commit checked out (staged is not committed).

    Outside a git checkout (an sdist, no git) there is nothing to compare with: skipped, but a failure
    with ``CI=true``, where the suite runs on a clone.
    """
    try:
        listing = subprocess.run(["git", "ls-tree", "-r", "--name-only", "HEAD", "bench/results"], cwd=ROOT,
                                 check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"not a git checkout with git installed ({error}): no commit to compare the documents with")
    return {Path(line).name for line in listing.splitlines()}


def named_results(text: str) -> set[str]:
    """The results files (or globs of them) a document's text names."""
    return set(RESULTS_PATH.findall(text)) | set(RESULTS_NAME.findall(text))


def numbers(text: str) -> list[Decimal]:
    """Every number in ``text``, thousands separators dropped, as printed (3.40 keeps its two places)."""
    return [Decimal(found.replace(",", "")) for found in NUMBER.findall(text)]


def performance_section() -> str:
    """README's "## Performance" section, up to the next heading of its level."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Performance\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def table_cells(section: str) -> list[tuple[str, str]]:
    """(column header, cell) of every body cell of the first Markdown table in ``section``."""
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert set(rows[1].replace("|", "").strip()) <= set("-: "), "the table's second line is its separator"
    return [(column, cell.strip())
            for row in rows[2:]
            for column, cell in zip(header, row.strip("|").split("|"), strict=True)]


def printed_as(figure: Decimal, printed: set[Decimal]) -> bool:
    """Whether ``figure`` is one of ``printed``, rounded to the places the document gives (3.46 for 3.459)."""
    exponent = figure.as_tuple().exponent
    assert isinstance(exponent, int), f"{figure} is a finite number"
    places = Decimal(1).scaleb(exponent)
    return any(abs(value - figure) <= places / 2 for value in printed)


def test_every_results_file_a_document_names_is_committed() -> None:
    tracked = tracked_results()
    missing = {
        f"{document.relative_to(ROOT)}: {name}"
        for document in DOCUMENTS
        for name in named_results(document.read_text())
        if not fnmatch.filter(tracked, name)
    }
    assert not missing, f"named but not committed under bench/results/ (commit the run's output): {sorted(missing)}"


def test_every_figure_of_the_readme_performance_table_is_printed_by_a_results_file_the_section_names() -> None:
    section = performance_section()
    sources = sorted(named_results(section))
    assert sources, "README's Performance section names no bench/results/ file"
    printed = {value for name in sources for value in numbers((ROOT / "bench" / "results" / name).read_text())}
    unprinted = [
        f"{column}: {figure} in {cell!r}"
        for column, cell in table_cells(section)
        for figure in numbers(cell.split(": ", 1)[1] if column == "target" and ": " in cell else
                              "" if column == "target" else cell)  # a target's threshold is no figure
        if not printed_as(figure, printed)
    ]
    assert not unprinted, f"printed by none of {sources} (cite the file that prints it): {unprinted}"
