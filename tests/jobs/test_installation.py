"""Delivery keys (Message-IDs, Idempotency-Keys) are stable within an installation and differ between two."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import workflow
from jobs import ConfigurationError, Delivery
from jobs.fanout import fan_out, plan_many
from jobs.installation import Installation, installation_id
from notifiers import message_id
from sqlalchemy import Engine, create_engine, delete, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from tests.app import Base
from tests.scenarios import paid_orders


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Callable[[str], Engine]]:
    """``database(name)``: a new engine on the SQLite file ``name`` with the shop's and Tidings' tables."""
    engines: list[Engine] = []

    def database(name: str) -> Engine:
        engine = create_engine(f"sqlite:///{tmp_path / name}")
        Base.metadata.create_all(engine)
        workflow.metadata.create_all(engine)
        engines.append(engine)
        return engine

    yield database
    for engine in engines:
        engine.dispose()


def planned_keys(engine: Engine) -> tuple[list[int], set[str]]:
    """One paid order in ``engine``'s database, fanned out: its transition ids and delivery keys."""
    with Session(engine) as session:
        ids = paid_orders(session, 1)
        fan_out(session, ids[0])
        return ids, set(session.scalars(select(Delivery.key)))


def test_the_same_transition_in_two_databases_gets_different_keys_and_message_ids(
        database: Callable[[str], Engine]) -> None:
    staging_ids, staging = planned_keys(database("staging.db"))
    production_ids, production = planned_keys(database("production.db"))
    assert staging_ids == production_ids and len(staging) == len(production) == 2  # same ids, notifier, addresses
    assert staging.isdisjoint(production)
    sender = "shop@example.com"
    assert {message_id(k, sender) for k in staging}.isdisjoint({message_id(k, sender) for k in production})


def test_a_database_created_again_gets_new_keys(database: Callable[[str], Engine], tmp_path: Path) -> None:
    _, before = planned_keys(database("app.db"))
    (tmp_path / "app.db").unlink()
    _, after = planned_keys(database("app.db"))
    assert before.isdisjoint(after)


def test_a_restarted_worker_makes_the_same_keys_and_writes_no_second_delivery(
        database: Callable[[str], Engine], tmp_path: Path) -> None:
    ids, first = planned_keys(database("app.db"))
    restarted = create_engine(f"sqlite:///{tmp_path / 'app.db'}")  # a new process reads the id afresh
    with Session(restarted) as session:
        assert plan_many(session, ids).pending == []  # a message delivered again plans nothing new
        session.execute(delete(Delivery))
        session.commit()
        fan_out(session, ids[0])  # planned again from scratch: the same keys
        assert set(session.scalars(select(Delivery.key))) == first
    restarted.dispose()


def test_tables_made_without_create_all_get_their_installation_row_on_first_use(
        database: Callable[[str], Engine], tmp_path: Path) -> None:
    engine = database("migrated.db")
    with Session(engine) as session:
        session.execute(delete(Installation))  # as a migration tool leaves the table: empty
        session.commit()
    fresh = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    with Session(fresh) as session:
        made = installation_id(session)
        stored = session.scalars(select(Installation.installation_id)).all()
    assert stored == [made] and len(made) == 32
    fresh.dispose()


def test_another_process_reads_the_same_installation_id(database: Callable[[str], Engine]) -> None:
    engine = database("app.db")
    with Session(engine) as session:
        here = installation_id(session)
    code = ("import sys; from sqlalchemy import create_engine; from sqlalchemy.orm import Session; "
            "from jobs.installation import installation_id; "
            "print(installation_id(Session(create_engine(sys.argv[1]))))")
    there = subprocess.run([sys.executable, "-c", code, str(engine.url)], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here


def test_a_database_without_the_installation_table_says_how_to_create_it(
        database: Callable[[str], Engine], tmp_path: Path) -> None:
    engine = database("old.db")
    with Session(engine) as session:
        ids = paid_orders(session, 1)
    Installation.__table__.drop(engine)  # type: ignore[attr-defined]
    fresh = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with Session(fresh) as session:
        with pytest.raises(ConfigurationError, match=r"old\.db has no table tidings_installation: create"):
            fan_out(session, ids[0])
        session.rollback()
        assert session.get(TransitionRecord, ids[0]).fanned_out_at is None  # type: ignore[union-attr]
    fresh.dispose()
