"""Timers on PostgreSQL without worker processes: the row locks a run takes and skips, times read in any zone."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import workflow
from jobs.fanout import plan_many
from jobs.timers import Timer, TimerStatus, fire_due
from sqlalchemy import Engine, create_engine, event, inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from workflow import TransitionRecord, clock

from tests.timed import LAPSE_AFTER, Base, Offer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    clock.reset()
    engine.dispose()


def published(engine: Engine, count: int, **fields: object) -> list[int]:
    """``count`` offers published and fanned out (their timers written, due in three days); the offers' ids."""
    with Session(engine) as session:
        offers = [Offer(**fields) for _ in range(count)]
        session.add_all(offers)
        session.commit()
        records = [offer.publish(actor="olga").id for offer in offers]
        session.commit()
        plan_many(session, records, waiting=0, recall=False)
        return [offer.id for offer in offers]


def test_on_postgresql_a_timer_run_fires_the_timers_another_holds_none_of_without_waiting_for_it(engine: Engine) -> None:
    ids = published(engine, 3)
    clock.advance(LAPSE_AFTER)
    with Session(engine) as holder, Session(engine) as runner:
        [held] = holder.scalars(select(Timer.id).order_by(Timer.id).limit(1).with_for_update())  # another run's
        runner.execute(text("SET lock_timeout = '2s'"))  # waiting for the holder (which never commits) fails the test
        done = fire_due(runner)
        assert held not in done.fired and len(done.fired) == 2 and done.void == {}
        holder.rollback()
    with Session(engine) as session:
        assert sorted(session.scalars(select(Offer.id).where(Offer.state == "lapsed"))) == ids[1:]


def waiting_at_most_2_seconds_for_a_lock(connection: Any, _: Any) -> None:
    """A new connection's lock_timeout: waiting for a lock held for good fails the test instead of hanging it."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")
    connection.commit()


def test_on_postgresql_timers_fired_one_by_one_after_a_failed_batch_skip_the_one_another_run_holds(
        engine: Engine) -> None:
    published(engine, 1, corrupt=True)  # its trigger's writes the database refuses: the batch fails
    [sound] = published(engine, 1)
    clock.advance(LAPSE_AFTER)
    with Session(engine) as session:
        sound_timer = session.scalars(select(Timer.id).where(Timer.key == str(sound))).one()
    event.listen(engine, "connect", waiting_at_most_2_seconds_for_a_lock)
    engine.dispose()
    holder = Session(engine)

    def hold_the_sound_timer_once_they_are_fired_alone(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "tidings_timers.id = " in statement and "SKIP LOCKED" in statement and not holder.in_transaction():
            holder.execute(select(Timer.id).where(Timer.id == sound_timer).with_for_update()).all()

    event.listen(engine, "before_cursor_execute", hold_the_sound_timer_once_they_are_fired_alone)
    try:
        with Session(engine) as runner:
            done = fire_due(runner)
    finally:
        event.remove(engine, "before_cursor_execute", hold_the_sound_timer_once_they_are_fired_alone)
        holder.close()
    assert done.fired == {} and len(done.void) == 1 and sound_timer not in done.void
    with Session(engine) as session:
        assert session.scalars(select(Timer.status).where(Timer.id == sound_timer)).one() == TimerStatus.PENDING


def test_on_postgresql_the_rows_of_a_timer_batch_are_locked_before_the_run_looks_at_them(engine: Engine) -> None:
    [offer_id] = published(engine, 1)
    clock.advance(LAPSE_AFTER)
    looking, looked = threading.Event(), threading.Event()

    def pause_once_the_run_looks(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "min(later.id)" in statement and not looking.is_set():  # which rows moved on since their timer
            looking.set()
            looked.wait(timeout=10)

    def a_persons_lock_meanwhile() -> str:
        assert looking.wait(timeout=10)
        try:
            with Session(engine) as person:
                person.execute(text("SET lock_timeout = '100ms'"))
                person.execute(select(Offer).where(Offer.id == offer_id).with_for_update()).all()
                return "got the row"
        except OperationalError:
            return "waited for the run"
        finally:
            looked.set()

    event.listen(engine, "before_cursor_execute", pause_once_the_run_looks)
    try:
        with ThreadPoolExecutor(1) as pool, Session(engine) as runner:
            person = pool.submit(a_persons_lock_meanwhile)
            done = fire_due(runner)
    finally:
        event.remove(engine, "before_cursor_execute", pause_once_the_run_looks)
    assert person.result() == "waited for the run" and len(done.fired) == 1


def in_kolkata(connection: Any, _: Any) -> None:
    """A new connection's session time zone: +05:30 (a server configured for its own zone)."""
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Kolkata'")
    connection.commit()


def test_on_postgresql_in_a_session_zone_other_than_utc_a_timer_is_due_at_the_transition_plus_the_timeout(
        engine: Engine) -> None:
    event.listen(engine, "connect", in_kolkata)
    engine.dispose()  # connections from now on read times in +05:30
    published(engine, 1)
    with Session(engine) as session:
        created_at = session.scalars(select(TransitionRecord.created_at)).one()
        timer = session.scalars(select(Timer)).one()
    assert created_at.utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert (timer.due_at - created_at, timer.status) == (LAPSE_AFTER, TimerStatus.PENDING)


def test_on_postgresql_the_timers_table_holds_what_the_transition_log_holds_and_times_with_their_zone(
        engine: Engine) -> None:
    found = inspect(engine)
    transitions = {c["name"]: str(c["type"]) for c in found.get_columns("tidings_transitions")}
    timers = {c["name"]: str(c["type"]) for c in found.get_columns("tidings_timers")}
    assert {name: timers[name] for name in ("model", "key", "trigger")} == {
        name: transitions[name] for name in ("model", "key", "trigger")}
    assert (timers["status"], timers["reason"], timers["due_at"], timers["created_at"], timers["updated_at"]) == (
        "VARCHAR(16)", "VARCHAR(500)", "TIMESTAMP", "TIMESTAMP", "TIMESTAMP")
    assert all(c["type"].timezone for c in found.get_columns("tidings_timers") if c["name"].endswith("_at"))
