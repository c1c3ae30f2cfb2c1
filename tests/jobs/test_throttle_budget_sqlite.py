"""A throttle shared across notifiers, on SQLite: a fan-out waits for another's budget before reading it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import workflow
from jobs import Status
from jobs.digesting import attach
from sqlalchemy import Engine, create_engine, text
from workflow import utcnow

from tests.throttle_rows import planned


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'budget.db'}")
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_on_sqlite_a_fan_out_started_while_another_holds_the_budget_never_takes_its_last_place(engine: Engine) -> None:
    now, places = utcnow(), 3
    with engine.begin() as connection:  # two places of three taken earlier in the window
        attach(connection, [planned("Desk.noted", "email", "ann@example.com", places, now)], now)
        attach(connection, [planned("Desk.mentioned", "sms", "+49301234567", places, now)], now)
    first = planned("Desk.assigned", "email", "ann@example.com", places, now)
    second = planned("Desk.mentioned", "sms", "+49301234567", places, now)

    def fan_out() -> None:
        with engine.connect() as other, other.begin():
            attach(other, [second], now)

    with engine.connect() as holder:
        with holder.begin():
            attach(holder, [first], now)
            later = threading.Thread(target=fan_out)
            later.start()
            later.join(timeout=0.5)  # it must wait for this transaction, not read the budget it is changing
            assert later.is_alive()
        later.join(timeout=30)
    assert (first["status"], second["status"]) == (Status.PENDING, Status.DIGEST)
    with engine.connect() as reader:
        assert reader.execute(text("SELECT sent FROM tidings_throttles")).scalar() == places
