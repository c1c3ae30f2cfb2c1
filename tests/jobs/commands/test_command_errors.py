"""The `tidings` command's own mistakes said in one line: a bad setting, a database without Tidings' tables,
TIDINGS_NOTIFIERS (and import cycles through it), and what `tidings deliveries` lists by default."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import workflow
from dramatiq.brokers.stub import StubBroker
from jobs.commands.cli import main
from sqlalchemy import create_engine

TIDINGS = str(Path(sys.executable).with_name("tidings"))


def tidings(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    return subprocess.run([TIDINGS, *args], env={**clean, **env}, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["status"], ["worker", "examples.lending.notifications"]])
def test_a_bad_setting_ends_a_command_with_exit_2_and_one_line_naming_the_variable(command: list[str],
                                                                                  tmp_path: Path) -> None:
    done = tidings(*command, env={"TIDINGS_SMTP_PORT": "x"}, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: Setting smtp_port: environment variable TIDINGS_SMTP_PORT='x' does "
                                        "not parse: invalid literal for int() with base 10: 'x'."]


def test_a_database_without_tidings_tables_is_said_in_one_line_with_how_to_create_them(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    done = tidings("status", env={"TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: The database sqlite:///{tmp_path / 'empty.db'} has no table tidings_transitions, tidings_deliveries, "
        "tidings_timers, tidings_digests, tidings_throttles, tidings_suppressions: "
        "create them with `alembic upgrade heads`, Tidings' version location jobs:migrations listed in "
        "version_locations (docs/operations.md, Schema changes), or in a test or demo with "
        "`import jobs, workflow; workflow.metadata.create_all(engine)`."]


def test_tables_from_an_older_version_are_said_in_one_line_naming_the_missing_columns(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    workflow.metadata.create_all(engine)
    with engine.begin() as connection:  # the transition log as it was before held_reason
        connection.exec_driver_sql("ALTER TABLE tidings_transitions DROP COLUMN held_reason")
    engine.dispose()
    done = tidings("status", env={"TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'old.db'}"}, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: The database sqlite:///{tmp_path / 'old.db'} lacks the columns tidings_transitions.held_reason of "
        "this version of Tidings: add them with `alembic upgrade heads` (a database 0.1.0's create_all made: "
        "`alembic stamp tidings_0001` first; see Schema changes in docs/operations.md)."]


def unanswered() -> int:
    """A port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_database_that_does_not_answer_is_said_in_one_line_with_exit_1(tmp_path: Path) -> None:
    port = unanswered()
    url = f"postgresql+psycopg://app:db-secret-7@127.0.0.1:{port}/app"
    done = tidings("status", env={"TIDINGS_DATABASE_URL": url}, cwd=tmp_path)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: Cannot reach the database postgresql+psycopg://app:***@127.0.0.1:{port}/app: ")
    assert "db-secret-7" not in line


def test_a_worker_whose_database_does_not_answer_says_so_once_and_exits_1(tmp_path: Path) -> None:
    port = unanswered()
    done = tidings("worker", "examples.lending.notifications", "--path", str(Path(__file__).parents[3]),
                   env={"TIDINGS_DATABASE_URL": f"postgresql+psycopg://app:db-secret-7@127.0.0.1:{port}/app",
                        "TIDINGS_BROKER_URL": f"redis://127.0.0.1:{unanswered()}/0"}, cwd=tmp_path)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert f"Cannot reach the database postgresql+psycopg://app:***@127.0.0.1:{port}/app: " in line


# --- TIDINGS_NOTIFIERS: one place for where the notifiers live ---------------------------------------------------

MODELS = '''
import jobs  # an application module importing jobs at its top, before its models: no cycle through the setting
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy import String
from workflow import Stateful, Workflow

class Base(DeclarativeBase):
    pass

class Crate(Stateful, Base):
    __tablename__ = "crates"
    id: Mapped[int] = mapped_column(primary_key=True)
    receiver: Mapped[str] = mapped_column(String(100))
    workflow = Workflow(states=["packed", "sent"], initial="packed", transitions=[["send", "packed", "sent"]],
                        parties={"receiver": "receiver"})
'''

NOTIFICATIONS = '''
import jobs
from notifiers import Email, Notifier, on
from .models import Crate

class CrateNotifier(Notifier):
    @on(Crate, "send", to="receiver")
    def sent(self, event, recipient):
        return Email(subject="Your crate is on its way", text="Soon with you.")
'''

WEB = '''
import jobs, workflow
from jobs.testing import drain
from notifiers import MemoryChannel
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from crates.models import Base, Crate  # the web process imports its models, never its notifiers

engine = create_engine("sqlite:///web.db")
Base.metadata.create_all(engine)
workflow.metadata.create_all(engine)
mailbox = MemoryChannel()
jobs.configure(engine=engine, channels={"email": mailbox})
with Session(engine) as session:
    crate = Crate(receiver="rae@example.com")
    session.add(crate)
    session.commit()
    crate.send()
    session.commit()
drain()
print([(m.to.address, m.message.subject) for m in mailbox.outbox])
'''


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A folder holding the package ``crates``: models that import jobs first, and their notifiers."""
    package = tmp_path / "crates"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(MODELS))
    (package / "notifications.py").write_text(textwrap.dedent(NOTIFICATIONS))
    (tmp_path / "web.py").write_text(textwrap.dedent(WEB))
    return tmp_path


def test_a_process_plans_with_the_notifiers_tidings_notifiers_names_whatever_it_imported_first(app: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    done = subprocess.run([sys.executable, "web.py"], cwd=app, capture_output=True, text=True, timeout=120,
                          env={**clean, "PYTHONPATH": str(app), "TIDINGS_NOTIFIERS": "crates.notifications"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('rae@example.com', 'Your crate is on its way')]"


def test_commands_find_the_notifiers_through_tidings_notifiers_without_import(app: Path) -> None:
    done = tidings("graph", env={"TIDINGS_NOTIFIERS": "crates.notifications"}, cwd=app)
    assert done.returncode == 0, done.stderr
    assert "  packed -> sent on send: receiver (email)" in done.stdout.splitlines()


def test_a_notifier_module_that_does_not_import_ends_a_command_in_one_line(app: Path) -> None:
    done = tidings("graph", env={"TIDINGS_NOTIFIERS": "crates.notifications, crates.missing"}, cwd=app)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: Setting notifiers (environment variable TIDINGS_NOTIFIERS): cannot "
                                        "import 'crates.missing': No module named 'crates.missing'."]


# --- tidings deliveries ---------------------------------------------------------------------------------------------


def test_deliveries_says_its_default_in_its_help_and_prints_a_header(broker: StubBroker,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["deliveries", "--help"])
    assert "(default: dead)" in capsys.readouterr().out
    assert main(["deliveries"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "dead deliveries (--status for others), oldest first: id, transition, channel, to, attempts, error"]


def test_a_database_from_before_timeouts_is_said_in_one_line_naming_the_timers_table(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    workflow.metadata.create_all(engine)
    with engine.begin() as connection:  # the tables as they were before timeouts
        connection.exec_driver_sql("DROP TABLE tidings_timers")
    engine.dispose()
    done = tidings("status", env={"TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'old.db'}"}, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith(
        f"error: The database sqlite:///{tmp_path / 'old.db'} has no table tidings_timers: create them with")
