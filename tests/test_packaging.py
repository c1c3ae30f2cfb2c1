"""``python -m build`` makes a wheel and an sdist; the wheel holds the three packages with py.typed, Tidings'
migrations and the pytest plugin's module, the names are ours, and installed alone it runs an application."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder ``python -m build`` wrote the wheel and the sdist into."""
    folder = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(folder), str(ROOT)], check=True, timeout=600,
                   capture_output=True)
    return folder


def test_the_import_names_belong_to_tidings_only() -> None:
    owners = importlib.metadata.packages_distributions()
    for name in ("workflow", "notifiers", "jobs", "tidings_pytest"):
        assert set(owners.get(name, [])) == {"tidings"}, f"'{name}' is also provided by {owners.get(name)}: uninstall it."


def test_the_wheel_holds_the_packages_and_their_py_typed_markers(dist: Path) -> None:
    [wheel] = dist.glob(f"tidings-{VERSION}-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = [p.relative_to(ROOT).as_posix() for package in ("workflow", "notifiers", "jobs")
               for p in (ROOT / package).rglob("*.py")]
    assert [m for m in modules if m not in names] == []  # every module, subpackages included
    for package in ("workflow", "notifiers", "jobs"):
        assert f"{package}/py.typed" in names
    assert "tidings_pytest.py" in names  # the pytest plugin the entry point names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "bench/"))]
    assert "jobs/migrations/tidings_0001_schema_0_1_0.py" in names  # the Alembic version location


def test_the_sdist_holds_the_source_and_the_changelog(dist: Path) -> None:
    [sdist] = dist.glob(f"tidings-{VERSION}.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "jobs/migrations/tidings_0002_time.py"} <= names


def test_tidings_version_reports_the_version_the_package_declares(capsys: pytest.CaptureFixture[str]) -> None:
    from jobs.commands.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert (done.value.code, capsys.readouterr().out) == (0, f"tidings {VERSION}\n")


def test_the_changelog_tells_the_version_the_package_declares() -> None:
    assert f"\n## {VERSION}\n" in (ROOT / "CHANGELOG.md").read_text()
    assert importlib.metadata.version("tidings") == VERSION  # reinstall (make .venv/.installed) after a bump


def test_the_extras_the_readme_lists_are_those_the_package_declares() -> None:
    install = (ROOT / "README.md").read_text().split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w-]+)` \|", install, re.MULTILINE))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert listed == set(declared)


#: The application of the README, alone: a model, a notifier, a transition committed, the worker in process.
APP = '''
import sys
import jobs, workflow
from jobs import Delivery
from jobs.testing import drain
from notifiers import Email, Notifier, on
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from workflow import Stateful, Workflow

class Base(DeclarativeBase):
    pass

class Loan(Stateful, Base):
    __tablename__ = "loans"
    id: Mapped[int] = mapped_column(primary_key=True)
    borrower: Mapped[str] = mapped_column(String(320))
    workflow = Workflow(states=["requested", "accepted"], initial="requested",
                        transitions=[["accept", "requested", "accepted"]], parties={"borrower": "borrower"})

class LoanNotifier(Notifier):
    @on(Loan, "accept", to="borrower")
    def accepted(self, event, recipient):
        return Email(subject="They said yes", text="See you Friday.")

engine = create_engine(sys.argv[1])
Base.metadata.create_all(engine)  # the application's table; Tidings' came from alembic upgrade heads
jobs.configure(engine=engine)
with Session(engine) as session:
    loan = Loan(borrower="bob@example.com")
    session.add(loan)
    session.commit()
    loan.accept(note="see you Friday")
    session.commit()
drain()
with Session(engine) as session:
    print([(d.address, d.status) for d in session.scalars(select(Delivery))])
'''

ENV_PY = '''
import jobs, notifiers, workflow
from alembic import context
from sqlalchemy import create_engine
engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=[workflow.metadata])
    with context.begin_transaction():
        context.run_migrations()
'''


@pytest.mark.integration
def test_the_wheel_installed_alone_migrates_runs_an_application_and_its_commands(dist: Path, tmp_path: Path) -> None:
    [wheel] = dist.glob(f"tidings-{VERSION}-*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}[alembic]"], check=True, timeout=600,
                   capture_output=True)
    app = tmp_path / "app"
    (app / "migrations" / "versions").mkdir(parents=True)
    (app / "migrations" / "env.py").write_text(ENV_PY)
    (app / "alembic.ini").write_text(textwrap.dedent(f"""\
        [alembic]
        script_location = %(here)s/migrations
        version_locations = %(here)s/migrations/versions jobs:migrations
        path_separator = space
        sqlalchemy.url = sqlite:///{app / 'app.db'}
        """))
    (app / "app.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("TIDINGS_")}
    env["TIDINGS_MAIL_DIR"] = str(app / "mail")

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=app, env=env, capture_output=True, text=True, timeout=300)

    assert run(str(python), "-c", "import jobs; print(jobs.__file__)").stdout.startswith(str(tmp_path / "venv"))
    migrated = run(str(tmp_path / "venv" / "bin" / "alembic"), "upgrade", "heads")
    assert migrated.returncode == 0, migrated.stderr
    ran = run(str(python), "app.py", f"sqlite:///{app / 'app.db'}")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[('bob@example.com', 'sent')]"
    assert run(str(tmp_path / "venv" / "bin" / "tidings"), "--help").returncode == 0
    assert run(str(tmp_path / "venv" / "bin" / "tidings"), "--version").stdout == f"tidings {VERSION}\n"
    demo = run(str(tmp_path / "venv" / "bin" / "tidings"), "demo")
    assert (demo.returncode, "from a Tidings checkout" in demo.stderr) == (2, True)
