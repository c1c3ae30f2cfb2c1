"""A throttle shared across notifiers, on PostgreSQL: two fan-outs at once never both take its last place."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import workflow
from jobs import Status
from jobs.digesting import attach
from sqlalchemy import Connection, Engine, create_engine, text
from workflow import utcnow

from tests.processes import wait_for
from tests.throttle_rows import planned

pytestmark = pytest.mark.integration

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


def waits_on_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as watcher:
        return watcher.execute(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                               {"pid": pid}).scalar() == "Lock"


@pytest.mark.parametrize("places", [1, 2], ids=["budget-written-by-the-first", "budget-there-already"])
def test_two_fan_outs_at_once_never_both_take_the_last_place_of_a_shared_throttle(engine: Engine, places: int) -> None:
    now = utcnow()
    if places == 2:  # one place of two taken by an earlier fan-out of the window
        with engine.begin() as connection:
            attach(connection, [planned("Desk.noted", "email", "ann@example.com", places, now)], now)
    first = planned("Desk.assigned", "email", "ann@example.com", places, now)
    second = planned("Desk.mentioned", "sms", "+49301234567", places, now)
    pids: list[int] = []

    def fan_out(connection: Connection) -> None:
        with connection.begin():
            pids.append(int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one()))
            attach(connection, [second], now)

    with engine.connect() as holder, engine.connect() as other:
        with holder.begin():
            attach(holder, [first], now)  # takes the last place, and holds the budget until it commits
            racer = threading.Thread(target=fan_out, args=(other,))
            racer.start()
            assert wait_for(lambda: bool(pids) and waits_on_a_lock(engine, pids[0]), timeout=30)
        racer.join(timeout=30)
    assert not racer.is_alive()
    assert (first["status"], second["status"]) == (Status.PENDING, Status.DIGEST)
    assert "shared by the notifiers on every channel" in second["last_error"]
