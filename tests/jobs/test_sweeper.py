"""The sweeper re-enqueues what an outage or a killed worker left behind, once."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery, Status
from jobs.actors import sweep
from jobs.fanout import fan_out, plan
from jobs.testing import drain
from notifiers import MemoryChannel
from jobs.sweeper import sweep as sweep_rows
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from tests.app import Order, Person

LONG_AGO = utcnow() - dt.timedelta(hours=1)


def age_everything(session: Session) -> None:
    session.execute(update(TransitionRecord).values(created_at=LONG_AGO))
    session.execute(update(Delivery).values(updated_at=LONG_AGO))
    session.commit()


def overdue_deliveries(session: Session, order: Order, cycles: int) -> None:
    """``cycles`` cancels and reopens of ``order``, fanned out, their deliveries' messages lost and overdue."""
    for _ in range(cycles):
        order.cancel()
        order.reopen()
    session.commit()
    for record_id in session.scalars(select(TransitionRecord.id)):
        fan_out(session, record_id)
    age_everything(session)


def test_a_transition_committed_while_the_broker_was_down_is_delivered_by_the_sweep(
        broker: StubBroker, session: Session, order: Order, mailbox: MemoryChannel,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(broker, "enqueue", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("down")))
        order.pay()
        session.commit()
    drain()
    assert mailbox.outbox == []
    age_everything(session)
    assert len(sweep().transitions) == 1
    drain()
    assert sorted(s.to.address for s in mailbox.outbox) == ["bea@example.com", "sam@example.com"]


def test_a_delivery_stuck_in_sending_past_its_lease_is_sent_again_once(
        broker: StubBroker, session: Session, order: Order, mailbox: MemoryChannel) -> None:
    record = order.pay()
    session.commit()
    fan_out(session, record.id)  # rows written, messages never enqueued: as if the worker died
    session.execute(update(Delivery).values(status=Status.SENDING, attempts=1, lease_until=LONG_AGO))
    session.commit()
    assert len(sweep().deliveries) == 2
    drain()
    assert sweep().deliveries == []
    assert sorted(s.to.address for s in mailbox.outbox) == ["bea@example.com", "sam@example.com"]


def test_a_delivery_waiting_for_its_retry_is_left_alone(broker: StubBroker, session: Session, order: Order) -> None:
    record = order.pay()
    session.commit()
    fan_out(session, record.id)
    session.execute(update(Delivery).values(updated_at=LONG_AGO, lease_until=utcnow() + dt.timedelta(minutes=5)))
    session.commit()
    assert sweep().deliveries == []


def test_a_second_sweep_right_after_the_first_takes_nothing(broker: StubBroker, session: Session,
                                                            order: Order) -> None:
    record = order.pay()
    session.commit()
    fan_out(session, record.id)
    age_everything(session)
    assert len(sweep().deliveries) == 2
    assert sweep().deliveries == []


def test_fresh_work_is_not_swept(broker: StubBroker, session: Session, order: Order) -> None:
    order.pay()
    session.commit()
    found = sweep()
    assert (found.transitions, found.deliveries) == ([], [])


def test_two_sweepers_at_once_take_each_delivery_once(broker: StubBroker, engine: object, session: Session,
                                                      order: Order) -> None:
    overdue_deliveries(session, order, 20)
    start = threading.Barrier(2)

    def one_sweep() -> list[int]:
        with Session(engine) as own:  # type: ignore[arg-type]
            start.wait(timeout=10)
            return sweep_rows(own, grace_seconds=60).deliveries

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: one_sweep(), range(2))
    assert len(first) + len(second) == 60 and not set(first) & set(second)


def test_deliveries_claimed_by_a_fan_out_that_died_are_sent_once_their_lease_runs_out(
        broker: StubBroker, session: Session, order: Order, mailbox: MemoryChannel) -> None:
    record = order.pay()
    session.commit()
    planned = plan(session, record.id, claim_up_to=10, lease_seconds=60)  # written claimed; the worker dies here
    assert len(planned.claimed) == 2 and planned.pending == []
    assert sweep().deliveries == []  # under their lease: left alone
    session.execute(update(Delivery).values(lease_until=LONG_AGO))
    session.commit()
    assert len(sweep().deliveries) == 2
    drain()
    assert sorted(s.to.address for s in mailbox.outbox) == ["bea@example.com", "sam@example.com"]
    assert {d.status for d in session.scalars(select(Delivery))} == {Status.SENT}


def test_overdue_transitions_are_enqueued_a_few_per_message(broker: StubBroker, session: Session,
                                                            mailbox: MemoryChannel,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    orders = [Order(buyer=Person(name="Bea", email="bea@example.com"),
                    seller=Person(name="Sam", email="sam@example.com")) for _ in range(40)]
    session.add_all(orders)
    session.commit()
    with monkeypatch.context() as patch:
        patch.setattr(broker, "enqueue", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("down")))
        for order in orders:
            order.pay()
        session.commit()
    age_everything(session)
    enqueued: list[Any] = []
    real = broker.enqueue
    monkeypatch.setattr(broker, "enqueue",
                        lambda message, **options: enqueued.append(message) or real(message, **options))
    assert len(sweep().transitions) == 40
    assert 1 < len(enqueued) < 40 and all(m.actor_name == "tidings.fan_out" for m in enqueued)
    assert all(m.kwargs == {"swept": True} for m in enqueued)  # read again whatever a worker remembers planning
    drain()
    assert len(mailbox.outbox) == 80


def test_overdue_deliveries_are_enqueued_a_few_per_message(broker: StubBroker, session: Session, order: Order,
                                                           mailbox: MemoryChannel,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    overdue_deliveries(session, order, 20)
    enqueued: list[Any] = []
    real = broker.enqueue
    monkeypatch.setattr(broker, "enqueue",
                        lambda message, **options: enqueued.append(message) or real(message, **options))
    assert len(sweep().deliveries) == 60
    assert 1 < len(enqueued) < 60 and all(m.actor_name == "tidings.deliver_each" for m in enqueued)
    assert sorted(i for m in enqueued for i in m.args[0]) == sorted(session.scalars(select(Delivery.id)))
    drain()
    assert len(mailbox.outbox) == 60
    assert {d.status for d in session.scalars(select(Delivery))} == {Status.SENT}


def unfanned_transition(session: Session, order: Order, *, retried: dt.datetime | None) -> int:
    """An order's payment, committed long ago and never fanned out, last re-enqueued at ``retried``."""
    record_id = order.pay().id
    session.commit()
    session.execute(update(TransitionRecord).values(created_at=LONG_AGO, retried_at=retried))
    session.commit()
    return record_id


def test_a_transition_the_sweeper_took_is_not_taken_again_within_the_grace_period(session: Session,
                                                                                   order: Order) -> None:
    record_id = unfanned_transition(session, order, retried=None)
    assert sweep_rows(session, grace_seconds=60).transitions == [record_id]
    assert sweep_rows(session, grace_seconds=60).transitions == []


def test_a_transition_still_unfanned_a_grace_period_after_its_last_sweep_is_taken_again(session: Session,
                                                                                        order: Order) -> None:
    record_id = unfanned_transition(session, order, retried=LONG_AGO)
    assert sweep_rows(session, grace_seconds=60).transitions == [record_id]


def test_one_sweep_takes_at_most_1000_deliveries_and_the_next_one_the_rest(session: Session, order: Order) -> None:
    order.watchers = [f"w{n}@example.com" for n in range(1000)]
    record = order.cancel()
    session.commit()
    fan_out(session, record.id)  # 1,001 rows (the buyer and the watchers), their messages never enqueued
    age_everything(session)
    assert len(sweep_rows(session, grace_seconds=60).deliveries) == 1000
    assert len(sweep_rows(session, grace_seconds=60).deliveries) == 1  # the 1,000 taken wait a grace period again


def test_on_sqlite_a_sweep_started_while_another_is_between_its_reads_and_its_writes_takes_none_of_its_rows(
        broker: StubBroker, engine: Any, session: Session, order: Order) -> None:
    overdue_deliveries(session, order, 5)
    first_read, second_read = threading.Event(), threading.Event()
    holder: list[int] = []

    def hold_the_first_before_it_writes(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == holder[0] and statement.startswith("UPDATE tidings_deliveries SET status"):
            first_read.set()
            second_read.wait(timeout=1)  # the second sweep reads now, unless the write lock holds it back

    def one_sweep(hold: bool) -> list[int]:
        if hold:
            holder.append(threading.get_ident())
        else:
            assert first_read.wait(timeout=10)
        with Session(engine) as own:
            found = sweep_rows(own, grace_seconds=60).deliveries
        if not hold:
            second_read.set()
        return found

    event.listen(engine, "before_cursor_execute", hold_the_first_before_it_writes)
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(one_sweep, [True, False])
    finally:
        event.remove(engine, "before_cursor_execute", hold_the_first_before_it_writes)
    assert sorted(first) == sorted(session.scalars(select(Delivery.id))) and second == []
