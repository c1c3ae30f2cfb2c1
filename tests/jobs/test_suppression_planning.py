"""Suppression at planning: a delivery to a suppressed address is skipped with the reason, in one query per fan-out."""

from __future__ import annotations

import datetime as dt

import pytest
from jobs import Delivery
from jobs.delivery import deliver
from jobs.fanout import fan_out, plan_many
from jobs.retries import RetryPolicy
from notifiers import MemoryChannel, RegistrationError, suppress, suppressed, unsuppress
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from tests.app import Account, Order, Person

AT = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone.utc)


def outcomes(session: Session, transition_id: int) -> dict[tuple[str, str], tuple[str, str | None]]:
    rows = session.execute(select(Delivery.channel, Delivery.address, Delivery.status, Delivery.last_error)
                           .where(Delivery.transition_id == transition_id))
    return {(channel, address): (status, error) for channel, address, status, error in rows}


@pytest.fixture
def account(session: Session) -> Account:
    account = Account(owner=Person(name="Ann", email="ann@example.com"))
    session.add(account)
    session.commit()
    return account


def test_a_delivery_to_a_suppressed_address_is_skipped_with_the_reason(session: Session, order: Order) -> None:
    suppress(session, "bea@example.com", "bounced", detail="550 5.1.1 user unknown", since=AT)
    record = order.pay()
    session.commit()
    fan_out(session, record.id)
    found = outcomes(session, record.id)
    assert found[("email", "bea@example.com")] == (
        "skipped", "suppressed: bounced 550 5.1.1 user unknown at 2026-03-01 09:30:00Z")
    assert [status for (_, address), (status, _) in found.items() if address != "bea@example.com"] == ["pending"]


def test_a_suppressed_address_is_matched_in_any_case(session: Session, order: Order) -> None:
    suppress(session, " Bea@Example.COM", "complained")
    record = order.pay()
    session.commit()
    fan_out(session, record.id)
    assert outcomes(session, record.id)[("email", "bea@example.com")][0] == "skipped"


def test_a_required_notification_is_suppressed_for_a_hard_bounce(session: Session, account: Account) -> None:
    suppress(session, "ann@example.com", "bounced")
    record = account.lock()
    session.commit()
    fan_out(session, record.id)
    status, reason = outcomes(session, record.id)[("email", "ann@example.com")]
    assert status == "skipped" and reason is not None and reason.startswith("suppressed: bounced")


def test_a_required_notification_is_sent_to_an_address_that_unsubscribed(session: Session, account: Account) -> None:
    suppress(session, "ann@example.com", "unsubscribed")
    record = account.lock()
    session.commit()
    fan_out(session, record.id)
    assert outcomes(session, record.id)[("email", "ann@example.com")] == ("pending", None)


def test_an_unsubscribed_address_is_skipped_for_a_notification_that_is_not_required(
        session: Session, account: Account) -> None:
    suppress(session, "ann@example.com", "unsubscribed")
    account.lock()
    record = account.unlock()
    session.commit()
    fan_out(session, record.id)
    assert outcomes(session, record.id)[("email", "ann@example.com")][0] == "skipped"


def test_a_suppression_of_email_leaves_the_other_channels_alone(session: Session, account: Account) -> None:
    suppress(session, "ann@example.com", "bounced")
    record = account.lock()
    session.commit()
    fan_out(session, record.id)
    assert [status for (channel, _), (status, _) in outcomes(session, record.id).items() if channel == "inapp"] == [
        "pending"]


def test_an_unsuppressed_address_is_sent_to_again(session: Session, order: Order) -> None:
    suppress(session, "bea@example.com", "manual")
    session.commit()
    assert [s.reason for s in suppressed(session, "bea@example.com")] == ["manual"]
    assert unsuppress(session, "BEA@example.com") is not None
    record = order.pay()
    session.commit()
    fan_out(session, record.id)
    assert outcomes(session, record.id)[("email", "bea@example.com")] == ("pending", None)


def test_suppressing_again_updates_the_reason(session: Session) -> None:
    suppress(session, "bea@example.com", "manual")
    suppress(session, "bea@example.com", "bounced", detail="5.1.1")
    session.commit()
    assert [(s.reason, s.detail) for s in suppressed(session)] == [("bounced", "5.1.1")]


def test_an_unknown_reason_is_refused_naming_the_known_ones(session: Session) -> None:
    with pytest.raises(RegistrationError, match="'spam' is not one of bounced, complained, manual, unsubscribed"):
        suppress(session, "bea@example.com", "spam")


def test_a_fan_out_of_several_transitions_reads_the_suppressions_once(session: Session, engine: Engine) -> None:
    orders = [Order(buyer=Person(name=f"B{i}", email=f"b{i}@example.com"),
                    seller=Person(name=f"S{i}", email=f"s{i}@example.com")) for i in range(3)]
    session.add_all(orders)
    session.commit()
    records = [order.pay() for order in orders]
    session.commit()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    plan_many(session, [record.id for record in records])
    assert len([s for s in statements if "tidings_suppressions" in s]) == 1


def test_a_delivery_planned_before_the_address_was_suppressed_is_still_sent(
        session: Session, order: Order, mailbox: MemoryChannel) -> None:
    record = order.pay()
    session.commit()
    planned = fan_out(session, record.id)
    suppress(session, "bea@example.com", "bounced")
    session.commit()
    assert [deliver(session, delivery_id, channel_for=lambda _: mailbox, lease_seconds=60,
                    retry=RetryPolicy(max_retries=0)) for delivery_id in planned] == ["sent", "sent"]
