"""drain() on a database without Tidings' tables: one line naming it and how to create them, at once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import ConfigurationError
from jobs.testing import drain, stop_workers
from sqlalchemy import create_engine

ROOT = Path(__file__).parents[2]


@pytest.fixture
def stub() -> Iterator[StubBroker]:
    """A fresh StubBroker; jobs gets a fresh one and the default settings back afterwards."""
    broker = StubBroker()
    broker.emit_after("process_boot")
    yield broker
    stop_workers()
    broker.close()
    fresh = StubBroker()
    fresh.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=fresh)


def test_draining_a_database_without_tidings_tables_says_how_to_create_them(tmp_path: Path,
                                                                           stub: StubBroker) -> None:
    jobs.configure(jobs.Settings(), broker=stub, database_url=f"sqlite:///{tmp_path / 'app.db'}")
    with pytest.raises(ConfigurationError) as refused:
        drain()
    assert str(refused.value) == (
        f"The database sqlite:///{tmp_path / 'app.db'} has no table tidings_console_actions, tidings_deliveries, tidings_digests, tidings_disabled_endpoints, tidings_inbox, "
        "tidings_installation, tidings_preferences, tidings_suppressions, tidings_throttles, tidings_timers, tidings_transitions: create Tidings' tables with workflow.metadata.create_all(engine) "
        "after importing jobs (or add workflow.metadata to your migrations), or point Tidings at your application's "
        "database (TIDINGS_DATABASE_URL, or jobs.configure(engine=...)).")


def test_a_database_with_some_tables_missing_names_those(tmp_path: Path, stub: StubBroker) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.begin() as connection:
        for table in ("tidings_transitions", "tidings_deliveries", "tidings_inbox", "tidings_installation",
                      "tidings_disabled_endpoints", "tidings_suppressions", "tidings_timers", "tidings_digests",
                      "tidings_throttles", "tidings_console_actions"):
            connection.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    jobs.configure(jobs.Settings(), broker=stub, engine=engine)
    with pytest.raises(ConfigurationError, match=r"has no table tidings_preferences: create Tidings' tables"):
        drain()
    engine.dispose()


SCRIPT = """
import workflow
from jobs.testing import drain
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from examples.lending.models import Base, Item, Loan, User
from examples.lending.notifications import LoanNotifier

engine = create_engine("sqlite:///app.db")  # the application's database; jobs was not told of it
Base.metadata.create_all(engine)
workflow.metadata.create_all(engine)
with Session(engine) as session:
    loan = Loan(item=Item(title="ladder", owner=User(name="Ann", email="ann@example.com")),
                borrower=User(name="Bob", email="bob@example.com"))
    session.add(loan)
    session.commit()
    loan.request()
    session.commit()
drain(timeout=600)
"""


def test_a_script_draining_a_database_without_tables_stops_at_once_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    # Without the check, the worker's threads retry the fan-out on tidings.db, logging each failure, for 600 s.
    result = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**env, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "jobs.errors.ConfigurationError: The database sqlite:///tidings.db has no table tidings_console_actions, tidings_deliveries, ")
    assert "no such table" not in result.stderr
    # development's worker said it once at the commit, instead of failing each fan-out
    assert sum("has no table" in line for line in result.stderr.splitlines()) == 2
