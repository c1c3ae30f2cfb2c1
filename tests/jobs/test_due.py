"""The due task and the sweeper with deliveries held for a time: each due one taken once, none lost before its time."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery, Status
from jobs.due import take_due
from jobs.sweeper import sweep
from jobs.testing import drain
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session
from workflow import clock

from tests.timed_app import Base, Member, Case


@pytest.fixture
def answered(broker: StubBroker, engine: Engine) -> Iterator[Session]:
    """A ticket opened and answered, fanned out: mails due in 10 minutes, 1 hour, 2 hours, reminders in days."""
    Base.metadata.create_all(engine)
    now = clock.utcnow()
    clock.advance((now.replace(hour=12, minute=0, second=0, microsecond=0) - now) % dt.timedelta(days=1))
    with Session(engine) as session:
        ticket = Case(author=Member(name="Ann", email="ann@example.com"),
                        agent=Member(name="Al", email="al@example.com"))
        session.add(ticket)
        session.commit()
        for trigger in ("open", "answer"):
            ticket.fire(trigger)
            session.commit()
        drain()
        yield session
    clock.reset()


def test_the_sweeper_does_not_take_a_delivery_that_is_not_due_yet(answered: Session) -> None:
    clock.advance(dt.timedelta(minutes=9))  # written 9 minutes ago, far past the grace; the first due in 1 minute
    assert sweep(answered, grace_seconds=60).deliveries == []


def test_the_sweeper_takes_a_due_delivery_left_untaken_past_its_grace(answered: Session) -> None:
    clock.advance(dt.timedelta(minutes=12))  # the survey has been due for 2 minutes
    assert len(sweep(answered, grace_seconds=60).deliveries) == 1


def test_the_due_task_takes_each_due_delivery_once(answered: Session, engine: Engine) -> None:
    clock.advance(dt.timedelta(hours=1, minutes=1))
    first = take_due(answered)
    with Session(engine) as other:
        second = take_due(other)
    assert len(first) == 2 and second == []


def test_on_sqlite_a_due_task_started_while_another_is_between_its_read_and_its_write_takes_none_of_its_deliveries(
        answered: Session, engine: Engine) -> None:
    clock.advance(dt.timedelta(hours=1, minutes=1))  # two due
    first_read, second_read = threading.Event(), threading.Event()
    holder: list[int] = []

    def hold_the_first_before_it_writes(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == holder[0] and statement.startswith("UPDATE tidings_deliveries SET status"):
            first_read.set()
            second_read.wait(timeout=1)  # the second task reads now, unless the write lock holds it back

    def one_run(hold: bool) -> list[int]:
        if hold:
            holder.append(threading.get_ident())
        else:
            assert first_read.wait(timeout=10)
        with Session(engine) as own:
            found = take_due(own)
        if not hold:
            second_read.set()
        return found

    event.listen(engine, "before_cursor_execute", hold_the_first_before_it_writes)
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(one_run, [True, False])
    finally:
        event.remove(engine, "before_cursor_execute", hold_the_first_before_it_writes)
    assert len(first) == 2 and second == []


def test_the_due_task_takes_nothing_before_its_time(answered: Session) -> None:
    clock.advance(dt.timedelta(minutes=9))
    assert take_due(answered) == []


def test_a_due_delivery_is_sent_after_the_due_task_enqueued_it(answered: Session, broker: StubBroker) -> None:
    from jobs import actors

    clock.advance(dt.timedelta(hours=2))
    assert actors.send_due() == 3  # the survey (void), the answer mail, the follow-up
    drain()
    statuses = dict(answered.execute(select(Delivery.notifier, Delivery.status)
                                     .where(Delivery.due_at <= clock.utcnow())).all())
    assert sorted((n.rsplit(".", 1)[1], s) for n, s in statuses.items()) == [
        ("answered", Status.SENT), ("follow_up", Status.SENT), ("survey", Status.SKIPPED)]
