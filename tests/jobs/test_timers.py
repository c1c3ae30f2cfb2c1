"""Timeouts on the embedded default: written by the fan-out, fired by the schedule's task, at most once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import workflow
from jobs.fanout import plan_many
from jobs.testing import Kit
from jobs import timers as timers_module
from jobs.timers import ACTOR, Fired, Timer, TimerStatus, fire_due
from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from tests.timed import LAPSE_AFTER, Base, Offer, Silent, Unheard


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'timed.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def published(session: Session, count: int = 1, **fields: object) -> list[Offer]:
    """``count`` offers, each published in its own committed transaction."""
    offers = [Offer(**fields) for _ in range(count)]
    session.add_all(offers)
    session.commit()
    for offer in offers:
        offer.publish(actor="olga")
        session.commit()
    return offers


def timers(session: Session) -> list[Timer]:
    session.expire_all()
    return list(session.scalars(select(Timer).order_by(Timer.id)))


def test_the_request_writes_no_timer_its_fan_out_writes_one_due_at_the_transition_plus_the_timeout(
        session: Session, tidings: Kit) -> None:
    [offer] = published(session)
    assert timers(session) == [] and tidings.queued == 1
    [timer] = tidings.timers("Offer", offer.id)
    record = session.scalars(select(TransitionRecord).where(TransitionRecord.trigger == "publish")).one()
    assert (timer.transition_id, timer.trigger, timer.status) == (record.id, "lapse", TimerStatus.PENDING)
    assert timer.due_at.replace(tzinfo=dt.timezone.utc) == record.created_at.replace(tzinfo=dt.timezone.utc) + LAPSE_AFTER


def test_a_row_left_in_the_state_fires_its_timeout_once_with_the_timeout_actor(session: Session, tidings: Kit) -> None:
    [offer] = published(session)
    assert tidings.advance(LAPSE_AFTER - dt.timedelta(minutes=1)) == []
    [lapsed] = tidings.advance(minutes=1)
    assert (lapsed.to, lapsed.trigger, lapsed.subject) == ("olga@example.com", "lapse", f"Offer {offer.id} lapsed")
    assert tidings.advance(days=10) == []
    session.refresh(offer)
    record = session.scalars(select(TransitionRecord).where(TransitionRecord.trigger == "lapse")).one()
    [timer] = tidings.timers(status=TimerStatus.FIRED)
    assert (offer.state, record.actor, timer.fired_transition_id) == ("lapsed", ACTOR, record.id)
    assert record.context == {"timer": timer.id}


def test_an_overdue_timer_fires_once_however_long_the_workers_were_down(session: Session, tidings: Kit) -> None:
    published(session)
    fired = tidings.advance(days=365)
    assert [n.trigger for n in fired] == ["lapse"]


def test_a_row_that_left_the_state_voids_its_timer_with_the_reason(session: Session, tidings: Kit) -> None:
    [offer] = published(session)
    offer.take(actor="tom")
    session.commit()
    tidings.clear()
    assert tidings.advance(days=4) == []
    [timer] = tidings.timers(status=TimerStatus.VOID)
    assert timer.reason is not None and f"Offer {offer.id} left the state by transition" in timer.reason
    assert "('take' to 'taken')" in timer.reason


def test_re_entering_the_state_restarts_the_timeout(session: Session, tidings: Kit) -> None:
    [offer] = published(session)
    tidings.advance(days=2)
    offer.withdraw()
    offer.reopen()
    session.commit()
    assert tidings.advance(days=2) == []  # three days after the publish: the first timer is void
    [lapsed] = tidings.advance(days=1)  # three days after the reopen
    assert lapsed.trigger == "lapse"
    assert [t.status for t in tidings.timers(status=None)] == [TimerStatus.VOID, TimerStatus.FIRED]


def test_a_condition_refusing_the_timeout_voids_it_and_changes_nothing(session: Session, tidings: Kit) -> None:
    [offer] = published(session, pinned=True)
    tidings.clear()
    assert tidings.advance(days=4) == []
    session.refresh(offer)
    [timer] = tidings.timers(status=TimerStatus.VOID)
    assert offer.state == "open" and timer.reason is not None and "condition 'unless is_pinned' refused" in timer.reason


def test_a_row_deleted_voids_its_timer(session: Session, tidings: Kit) -> None:
    [offer] = published(session)
    tidings.run()
    session.delete(offer)
    session.commit()
    tidings.advance(days=4)
    [timer] = tidings.timers(status=TimerStatus.VOID)
    assert timer.reason == f"Offer {timer.key} no longer exists."


def test_a_trigger_whose_callback_raises_voids_its_timer_once_and_the_others_still_fire(
        session: Session, tidings: Kit) -> None:
    [broken] = published(session, broken=True)
    [sound] = published(session)
    tidings.clear()
    fired = tidings.advance(days=4)
    assert [n.key for n in fired] == [str(sound.id)]
    session.refresh(broken)
    [timer] = tidings.timers(str(Offer.__name__), broken.id, status=TimerStatus.VOID)
    assert broken.state == "open"
    assert timer.reason == "The trigger raised RuntimeError: the offer's archive is unreachable"
    assert tidings.advance(days=4) == []


def test_timers_are_written_and_fired_for_a_model_told_to_nobody(session: Session, tidings: Kit) -> None:
    row = Silent()
    session.add(row)
    session.commit()
    row.wait()
    session.commit()
    assert [t.trigger for t in tidings.timers("Silent")] == ["go"]
    tidings.advance(hours=1)
    session.refresh(row)
    assert row.state == "gone"


def test_timers_are_written_for_a_transition_held_back_and_its_retries_write_no_other(
        session: Session, tidings: Kit) -> None:
    row = Unheard()
    session.add(row)
    session.commit()
    row.wait()
    session.commit()
    [timer] = tidings.timers("Unheard")
    held = session.scalars(select(TransitionRecord).where(TransitionRecord.id == timer.transition_id)).one()
    assert held.fanned_out_at is None and held.held_reason is not None
    plan_many(session, [held.id])  # the sweeper's retry
    assert session.scalar(select(func.count()).select_from(Timer)) == 1
    tidings.advance(hours=1)
    session.refresh(row)
    assert row.state == "gone"


def test_due_timers_are_taken_in_batches_until_none_is_left(session: Session, tidings: Kit) -> None:
    ids = [offer.id for offer in published(session, 5)]
    tidings.run()
    workflow.clock.advance(LAPSE_AFTER)
    done = fire_due(session, batch=2)
    assert len(done.fired) == 5 and done.void == {}
    assert dict(session.execute(select(Offer.id, Offer.state)).all()) == dict.fromkeys(ids, "lapsed")


def test_a_run_fires_the_due_timers_500_per_transaction(session: Session) -> None:
    offers = [Offer(state="open") for _ in range(501)]
    session.add_all(offers)
    session.flush()
    records = [TransitionRecord(model="Offer", key=str(offer.id), trigger="publish", source="draft", dest="open",
                                actor="olga", context={}, created_at=utcnow()) for offer in offers]
    session.add_all(records)
    session.flush()
    timers_module.schedule(session.connection(), records)
    session.commit()
    workflow.clock.advance(LAPSE_AFTER)
    marked: list[int] = []

    def count_marks(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.startswith("UPDATE tidings_timers SET status=?, reason=?"):  # the marks, not the write lock
            marked.append(len(parameters) if many else 1)

    event.listen(session.get_bind(), "before_cursor_execute", count_marks)
    try:
        done = fire_due(session)
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", count_marks)
    assert len(done.fired) == 501 and marked == [500, 1]


def test_on_sqlite_a_run_started_while_another_is_between_its_reads_and_its_writes_fires_none_of_its_timers(
        session: Session, tidings: Kit) -> None:
    published(session, 2)
    tidings.run()
    workflow.clock.advance(LAPSE_AFTER)
    engine = session.get_bind()
    first_read, second_read = threading.Event(), threading.Event()
    holder: list[int] = []

    def hold_the_first_before_it_writes(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == holder[0] and statement.startswith("UPDATE timed_offers SET state"):
            first_read.set()
            second_read.wait(timeout=1)  # the second run reads now, unless the write lock holds it back

    def one_run(hold: bool) -> Fired:
        if hold:
            holder.append(threading.get_ident())
        else:
            assert first_read.wait(timeout=10)
        with Session(engine) as own:
            done = fire_due(own)
        if not hold:
            second_read.set()
        return done

    event.listen(engine, "before_cursor_execute", hold_the_first_before_it_writes)
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(one_run, [True, False])
    finally:
        event.remove(engine, "before_cursor_execute", hold_the_first_before_it_writes)
    assert len(first.fired) == 2 and (second.fired, second.void) == ({}, {})


def test_a_timer_not_yet_due_is_left_pending(session: Session, tidings: Kit) -> None:
    published(session)
    tidings.run()
    done = fire_due(session)
    assert (done.fired, done.void) == ({}, {})
    [timer] = tidings.timers()
    assert timer.due_at.replace(tzinfo=dt.timezone.utc) > utcnow()


def test_a_timer_whose_trigger_the_model_no_longer_has_is_void_with_the_reason(session: Session, tidings: Kit) -> None:
    [offer] = published(session)
    [timer] = tidings.timers()
    session.execute(update(Timer).where(Timer.id == timer.id).values(trigger="vanish"))
    session.commit()
    tidings.advance(days=4)
    [void] = tidings.timers(status=TimerStatus.VOID)
    assert void.reason is not None and f"Offer {offer.id} has no trigger 'vanish'" in void.reason


def test_a_trigger_whose_writes_the_database_refuses_voids_its_timer_and_holds_back_no_other(
        session: Session, tidings: Kit) -> None:
    [corrupt] = published(session, corrupt=True)
    [sound] = published(session)
    tidings.clear()
    fired = tidings.advance(days=4)
    assert [n.key for n in fired] == [str(sound.id)]
    [void] = tidings.timers(status=TimerStatus.VOID)
    assert void.key == str(corrupt.id)
    assert void.reason is not None and void.reason.startswith("The trigger failed in the database: IntegrityError")
    session.refresh(corrupt)
    assert corrupt.state == "open"
