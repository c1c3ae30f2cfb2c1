"""Mutation testing of the modules that carry the guarantees: ``make mutants`` (``python -m tests.mutants``).

Each module listed under ``[tool.cosmic-ray.modules]`` in pyproject.toml is mutated by cosmic-ray,
one mutant at a time, and its own fast tests are run against each mutant. A mutant the tests do
not notice (``survived``) is either equivalent (its reason goes in docs/guarantees.md) or a
missing test.

The run works on a copy of the tracked files in ``.mutants/`` (cosmic-ray edits the files it
mutates), and keeps one session per module there, so an interrupted run resumes where it
stopped. Mutants that cannot change behaviour are skipped before the run: those inside
annotations (strings here, ``from __future__ import annotations``) or in log calls, those outside the names a
module lists (``names``: functions, classes, ``Class.method`` or module-level statements), and
operator replacements outside any operator expression (cosmic-ray also offers the bare ``*`` of a
signature), and operator replacements other than an operator's counterparts (see ``_COUNTERPARTS``).

Usage::

    python -m tests.mutants                     # every module; resumes unfinished sessions
    python -m tests.mutants jobs/sweeper.py     # one module
    python -m tests.mutants --fresh             # forget the sessions, start again
    python -m tests.mutants --retest-survivors  # run the tests again on the survivors only
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutants"
COSMIC_RAY = [sys.executable, "-m", "cosmic_ray.cli"]


def settings() -> dict[str, Any]:
    """The ``[tool.cosmic-ray]`` table of pyproject.toml."""
    table: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cosmic-ray"]
    return table


def copy_sources() -> None:
    """Copy the tracked (and new, not ignored) files into ``.mutants/src``, fresh."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split()
    target = WORK / "src"
    shutil.rmtree(target, ignore_errors=True)
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def config_for(module: str, spec: dict[str, Any], timeout: float) -> Path:
    """Write the cosmic-ray configuration of one module; its path."""
    tests = " ".join(spec["tests"])
    command = f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly {tests}"
    text = (f'[cosmic-ray]\nmodule-path = "{module}"\ntimeout = {timeout}\nexcluded-modules = []\n'
            f'test-command = "{command}"\n\n[cosmic-ray.distributor]\nname = "local"\n')
    path = WORK / f"{slug(module)}.toml"
    path.write_text(text)
    return path


def slug(module: str) -> str:
    return module.replace("/", ".").removesuffix(".py")


def spans(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    return (node.lineno, node.col_offset), (node.end_lineno or node.lineno, node.end_col_offset or 0)


# Each operator is replaced by its counterparts only, not by every other operator: ``==`` by ``!=``,
# ``<`` by ``<=`` (the boundary) and ``>=`` (the negation), ``+`` by ``-``... A replacement by an
# unrelated operator (``+`` by ``>>``) fails the same tests, or raises at once.
_COUNTERPARTS = {
    "Add": {"Sub"}, "Sub": {"Add"}, "Mul": {"Div"}, "Div": {"Mul"}, "FloorDiv": {"Div"}, "Mod": {"FloorDiv"},
    "Pow": {"Mul"}, "BitOr": {"BitAnd"}, "BitAnd": {"BitOr"}, "LShift": {"RShift"}, "RShift": {"LShift"},
    "Eq": {"NotEq"}, "NotEq": {"Eq"}, "Lt": {"LtE", "GtE"}, "LtE": {"Lt", "Gt"}, "Gt": {"GtE", "LtE"},
    "GtE": {"Gt", "Lt"}, "Is": {"IsNot"}, "IsNot": {"Is"}, "In": {"NotIn"}, "NotIn": {"In"},
}


def wanted(operator: str) -> bool:
    """Whether cosmic-ray's ``operator`` is one the run keeps (see ``_COUNTERPARTS``)."""
    name = operator.removeprefix("core/")
    if not name.startswith(("ReplaceBinaryOperator_", "ReplaceComparisonOperator_")):
        return True
    _, old, new = name.split("_")
    return new in _COUNTERPARTS.get(old, set())


def regions(source: str, names: list[str]) -> tuple[list[Any], list[Any], list[Any]]:
    """(where mutants are kept, where not: annotations and log calls, operator expressions) of ``source``."""
    tree = ast.parse(source)
    kept: list[Any] = [((1, 0), (len(source.splitlines()) + 1, 0))] if not names else []
    for statement in tree.body:
        for name in names:
            found = named(statement, name)
            if found is not None:
                kept.append(spans(found))
    ignored: list[Any] = []
    operators: list[Any] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.arg, ast.AnnAssign)) and node.annotation is not None:
            ignored.append(spans(node.annotation))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            ignored.append(spans(node.returns))
        elif isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp)):
            operators.append(spans(node))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id == "_log"):
            ignored.append(spans(node))  # what a log line says is no guarantee
    return kept, ignored, operators


def named(statement: ast.stmt, name: str) -> ast.AST | None:
    """The statement (or the method of a class) that ``name`` designates, if it is this one."""
    first, _, method = name.partition(".")
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and statement.name == first:
        if not method:
            return statement
        return next((s for s in statement.body if getattr(s, "name", None) == method), None)
    targets = statement.targets if isinstance(statement, ast.Assign) else (
        [statement.target] if isinstance(statement, ast.AnnAssign) else [])
    return statement if any(isinstance(t, ast.Name) and t.id == first for t in targets) else None


def inside(position: tuple[int, int], region: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    return region[0] <= tuple(position) < region[1]


def skip_out_of_scope(session: Path, source: str, names: list[str]) -> tuple[int, int]:
    """Mark as skipped the mutants out of scope (see the module docstring); (kept, skipped)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    kept_regions, ignored, operators = regions(source, names)
    skipped = kept = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            mutation = item.mutations[0]
            position = tuple(mutation.start_pos)
            operator = mutation.operator_name
            out = (not wanted(operator) or not any(inside(position, r) for r in kept_regions)
                   or any(inside(position, r) for r in ignored)
                   or ("Operator" in operator and not any(inside(position, r) for r in operators)))
            if out:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
                skipped += 1
            else:
                kept += 1
    return kept, skipped


def run_module(module: str, spec: dict[str, Any], timeout: float, *, fresh: bool, retest: bool) -> None:
    """Initialise (or resume) the session of one module and run its pending mutants."""
    config = config_for(module, spec, timeout)
    session = WORK / f"{slug(module)}.sqlite"
    if fresh:
        session.unlink(missing_ok=True)
    if not session.exists():
        subprocess.run([*COSMIC_RAY, "init", str(config), str(session)], cwd=WORK / "src", check=True)
        kept, skipped = skip_out_of_scope(session, (WORK / "src" / module).read_text(), spec.get("names", []))
        print(f"{module}: {kept} mutants to run, {skipped} out of scope", flush=True)
    if retest:
        forget_survivors(session)
    baseline(spec)
    subprocess.run([*COSMIC_RAY, "exec", str(config), str(session)], cwd=WORK / "src", check=True)


def baseline(spec: dict[str, Any]) -> None:
    """Run the module's tests on the unmutated copy: they must pass, or every mutant would look killed."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               *spec["tests"]]
    result = subprocess.run(command, cwd=WORK / "src", capture_output=True, text=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    if result.returncode != 0:
        sys.exit(f"The tests fail without any mutant:\n{result.stdout[-3000:]}")


def forget_survivors(session: Path) -> None:
    """Delete the results of the surviving mutants, so that ``exec`` runs them again."""
    import sqlite3

    with sqlite3.connect(session) as db:
        db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")


def results(session: Path) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every (mutation, result) of a session, as cosmic-ray dumps them."""
    dumped = subprocess.run([*COSMIC_RAY, "dump", str(session)], check=True, capture_output=True, text=True).stdout
    return [(item["mutations"][0], result) for item, result in map(json.loads, dumped.splitlines())]


def report(modules: list[str]) -> None:
    """Print the table of docs/guarantees.md (per module: mutants, killed, survived, kill rate) and the survivors."""
    print("\n| module | mutants | killed | survived | kill rate |\n|---|---|---|---|---|")
    survivors = []
    for module in modules:
        ran = [(m, r) for m, r in results(WORK / f"{slug(module)}.sqlite")
               if r is not None and r["worker_outcome"] != "skipped"]
        alive = [(m, r) for m, r in ran if r["test_outcome"] == "survived"]
        killed = len(ran) - len(alive)
        rate = f"{100 * killed / len(ran):.1f} %" if ran else "-"
        print(f"| `{module}` | {len(ran)} | {killed} | {len(alive)} | {rate} |")
        survivors += alive
    for mutation, result in survivors:
        line = mutation["start_pos"][0]
        print(f"\nsurvived: {mutation['module_path']}:{line} ({mutation['definition_name']}) "
              f"{mutation['operator_name']}\n{result.get('diff') or ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all listed in pyproject.toml)")
    parser.add_argument("--fresh", action="store_true", help="forget the sessions and start again")
    parser.add_argument("--retest-survivors", action="store_true", help="run the survivors again")
    parser.add_argument("--report", action="store_true", help="only print the table of the last run")
    args = parser.parse_args()
    os.environ["CI"] = "true"  # a missing service fails the tests instead of skipping them (and sparing mutants)
    table = settings()
    modules = args.modules or list(table["modules"])
    if not args.report:
        WORK.mkdir(exist_ok=True)
        copy_sources()
        for module in modules:
            run_module(module, table["modules"][module], float(table.get("timeout", 120)),
                       fresh=args.fresh, retest=args.retest_survivors)
    report(modules)


if __name__ == "__main__":
    main()
