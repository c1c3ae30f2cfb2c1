"""A database without Tidings' tables: the trigger says so in one line, not with the driver's SQL error."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session
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
