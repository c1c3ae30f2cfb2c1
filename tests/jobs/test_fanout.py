"""Fan-out: one delivery row per (transition, notifier, recipient, channel), written once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from jobs import Delivery, Status, TransitionNotFound
from jobs.fanout import fan_out, plan
from notifiers import opt_out
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from tests.app import Account, Order, Person


def test_one_delivery_per_party_recipient_and_channel(session: Session, order: Order) -> None:
    record = order.cancel()
    session.commit()
    fan_out(session, record.id)
    rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.party, d.address, d.status) for d in rows] == [
        ("buyer", "bea@example.com", "pending"), ("watchers", "w1@example.com", "pending"),
        ("watchers", "w2@example.com", "pending")]
    assert session.get(TransitionRecord, record.id).fanned_out_at is not None  # type: ignore[union-attr]


def test_running_the_fan_out_twice_writes_nothing_new(session: Session, order: Order,
                                                      count: Callable[[type], int]) -> None:
    record = order.pay()
    session.commit()
    assert len(fan_out(session, record.id)) == 2
    assert fan_out(session, record.id) == []
    assert count(Delivery) == 2


def test_a_transition_nobody_listens_to_writes_no_delivery(session: Session, order: Order,
                                                           count: Callable[[type], int]) -> None:
    record = order.reopen()
    session.commit()
    assert fan_out(session, record.id) == []
    assert count(Delivery) == 0


def test_an_unknown_transition_is_a_clear_error(session: Session) -> None:
    with pytest.raises(TransitionNotFound, match="Transition 999 does not exist"):
        fan_out(session, 999)


def test_a_party_without_an_address_is_recorded_as_failed(session: Session, order: Order) -> None:
    order.buyer.email = None
    record = order.pay()
    session.commit()
    assert len(fan_out(session, record.id)) == 1
    failed = session.scalars(select(Delivery).where(Delivery.status == Status.FAILED)).one()
    assert failed.party == "buyer" and "has no email address" in (failed.last_error or "")


def test_an_opted_out_recipient_gets_a_skipped_delivery_with_the_reason(session: Session) -> None:
    account = Account(owner=Person(name="Ann", email="ann@example.com"))
    session.add(account)
    session.commit()
    opt_out(session, account.owner, channel="email")
    account.lock()
    session.commit()
    account.unlock()
    session.commit()
    for record in session.scalars(select(TransitionRecord).order_by(TransitionRecord.id)).all():
        fan_out(session, record.id)
    rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.notifier.rsplit(".", 1)[1], d.channel, d.status, d.last_error) for d in rows] == [
        ("locked", "email", Status.PENDING, None), ("locked", "inapp", Status.PENDING, None),
        ("unlocked", "email", Status.SKIPPED, "Opted out of email."), ("unlocked", "inapp", Status.PENDING, None)]


def test_a_few_deliveries_are_written_claimed_for_the_fan_out_to_send_itself(session: Session, order: Order) -> None:
    record = order.pay()
    session.commit()
    planned = plan(session, record.id, claim_up_to=2, lease_seconds=60)
    assert sorted(c.address for c in planned.claimed) == ["bea@example.com", "sam@example.com"]
    assert planned.pending == [] and planned.loaded is not None and planned.loaded[1] is order
    rows = session.scalars(select(Delivery)).all()
    assert {(d.status, d.attempts) for d in rows} == {(Status.SENDING, 1)}
    assert all(d.lease_until is not None for d in rows)


def test_more_deliveries_than_it_may_claim_are_written_pending(session: Session, order: Order) -> None:
    record = order.pay()
    session.commit()
    planned = plan(session, record.id, claim_up_to=1, lease_seconds=60)
    assert planned.claimed == [] and len(planned.pending) == 2


def test_a_second_fan_out_claims_nothing(session: Session, order: Order) -> None:
    record = order.pay()
    session.commit()
    first = plan(session, record.id, claim_up_to=0)
    session.execute(delete(Delivery).where(Delivery.id == first.pending[0]))  # as if one row were lost
    session.commit()
    again = plan(session, record.id, claim_up_to=10)
    assert again.claimed == [] and len(again.pending) == 1
