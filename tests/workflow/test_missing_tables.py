"""A database without Tidings' tables: the trigger says so in one line, not with the driver's SQL error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool
from workflow import TransitionLogMissing

from tests.app import Base, Order, Person


def app_only(url: str) -> Engine:
    """An engine on ``url`` with the application's tables and none of Tidings'."""
    engine = create_engine(url)
    Base.metadata.create_all(engine, tables=[Order.__table__, Person.__table__])  # type: ignore[list-item]
    return engine


def fire_on(engine: Engine) -> tuple[pytest.ExceptionInfo[TransitionLogMissing], str]:
    with Session(engine) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        with pytest.raises(TransitionLogMissing) as refused:
            order.pay()
        return refused, order.state


def test_firing_on_a_database_without_the_transition_log_says_how_to_create_it(tmp_path: Path) -> None:
    engine = app_only(f"sqlite:///{tmp_path / 'app.db'}")
    refused, state = fire_on(engine)
    assert str(refused.value) == (
        f"The database sqlite:///{tmp_path / 'app.db'} has no table tidings_transitions, so no transition can be "
        "recorded: create Tidings' tables with workflow.metadata.create_all(engine) (after importing jobs, for all "
        "of them), or run your migrations.")
    assert state == "new"
    engine.dispose()


def test_a_database_that_cannot_say_whether_it_has_the_log_raises_the_drivers_own_error(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    app_only(f"sqlite:///{path}").dispose()
    opened: list[sqlite3.Connection] = []

    def connect_once() -> sqlite3.Connection:  # a second connection, the one that asks for the table, fails
        if opened:
            raise sqlite3.OperationalError("unable to open database file")
        opened.append(sqlite3.connect(path, check_same_thread=False))
        return opened[0]

    engine = create_engine("sqlite://", creator=connect_once, poolclass=QueuePool)
    with Session(engine) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        with pytest.raises(OperationalError, match="no such table: tidings_transitions"):
            order.pay()
    engine.dispose()
