"""`tidings refan`: transitions planned again, only their missing deliveries written, by id, record or time."""

from __future__ import annotations

import datetime as dt
import json

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.commands import refan
from jobs.commands.cli import main
from jobs.testing import drain
from notifiers import Email, Event, MemoryChannel, Notifier, Recipient, on, registry
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from tests.app import Order, Person


def fanned_out_to_nobody(broker: StubBroker, engine: Engine, session: Session, count: int) -> list[Order]:
    """``count`` paid orders whose transitions were marked fanned out with no delivery, as a worker
    without the notifiers left them (each order: buyer b<n>@, seller s<n>@example.com)."""
    orders = [Order(buyer=Person(name=f"B{n}", email=f"b{n}@example.com"),
                    seller=Person(name=f"S{n}", email=f"s{n}@example.com")) for n in range(count)]
    session.add_all(orders)
    session.commit()
    for order in orders:
        order.pay()
    session.commit()
    broker.flush_all()  # their fan-out messages went to that worker
    with Session(engine) as fresh:
        fresh.execute(update(TransitionRecord).values(fanned_out_at=utcnow()))
        fresh.commit()
    return orders


def addresses(engine: Engine) -> list[str]:
    with Session(engine) as fresh:
        return sorted(fresh.scalars(select(Delivery.address)))


def test_refan_by_id_writes_the_missing_deliveries_and_a_second_run_writes_none(
        broker: StubBroker, engine: Engine, session: Session, mailbox: MemoryChannel,
        capsys: pytest.CaptureFixture[str]) -> None:
    orders = fanned_out_to_nobody(broker, engine, session, 2)
    first = session.scalars(select(TransitionRecord.id).order_by(TransitionRecord.id)).first()
    assert main(["refan", str(first)]) == 0
    assert capsys.readouterr().out.strip() == "re-planned 1 transitions: 2 new deliveries"
    drain()
    assert sorted(m.to.address for m in mailbox.outbox) == ["b0@example.com", "s0@example.com"]
    assert main(["refan", str(first)]) == 0
    assert capsys.readouterr().out.strip() == "re-planned 1 transitions: 0 new deliveries"
    drain()
    assert len(mailbox.outbox) == 2 and addresses(engine) == ["b0@example.com", "s0@example.com"]
    assert orders


def test_refan_by_model_and_key_plans_only_that_record(broker: StubBroker, engine: Engine, session: Session) -> None:
    orders = fanned_out_to_nobody(broker, engine, session, 3)
    assert main(["refan", "--model", "Order", "--key", str(orders[1].id)]) == 0
    assert addresses(engine) == ["b1@example.com", "s1@example.com"]


def test_refan_by_trigger_plans_only_that_trigger(broker: StubBroker, engine: Engine, session: Session) -> None:
    orders = fanned_out_to_nobody(broker, engine, session, 2)
    orders[0].cancel()
    session.commit()
    broker.flush_all()
    with Session(engine) as fresh:
        fresh.execute(update(TransitionRecord).values(fanned_out_at=utcnow()))
        fresh.commit()
    assert main(["refan", "--model", "Order", "--trigger", "cancel"]) == 0
    assert addresses(engine) == ["b0@example.com"]  # the cancel notifier tells the buyer and the watchers (none)


def test_refan_by_time_range_plans_the_transitions_committed_in_it(broker: StubBroker, engine: Engine,
                                                                   session: Session) -> None:
    fanned_out_to_nobody(broker, engine, session, 3)
    with Session(engine) as fresh:  # the first committed three hours ago, the second two, the third now
        for hours, transition_id in zip((3, 2), fresh.scalars(select(TransitionRecord.id).order_by(TransitionRecord.id))):
            fresh.execute(update(TransitionRecord).where(TransitionRecord.id == transition_id)
                          .values(created_at=utcnow() - dt.timedelta(hours=hours)))
        fresh.commit()
    assert main(["refan", "--since", "150m", "--until", "1h"]) == 0
    assert addresses(engine) == ["b1@example.com", "s1@example.com"]


def test_refan_dry_run_says_what_it_would_write_and_writes_nothing(broker: StubBroker, engine: Engine,
                                                                   session: Session,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fanned_out_to_nobody(broker, engine, session, 2)
    assert main(["refan", "--model", "Order", "--dry-run", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["would_write"].values()) == [2, 2]
    assert addresses(engine) == []


def test_refan_serves_a_notifier_added_after_the_fact_and_leaves_what_was_sent_alone(
        broker: StubBroker, engine: Engine, session: Session, order: Order, mailbox: MemoryChannel,
        restore_registry: None) -> None:
    # Given a paid order whose buyer and seller were told
    order.pay()
    session.commit()
    drain()
    assert len(mailbox.outbox) == 2

    # When a notifier for the same transition is added, and its transitions re-planned
    class Receipts(Notifier):
        @on(Order, "pay", to="buyer")
        def receipt(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject="Your receipt", text="Thank you.")

    assert main(["refan", "--model", "Order"]) == 0
    drain()

    # Then only the new notifier's delivery is written and sent
    assert [(m.to.address, m.message.subject) for m in mailbox.outbox[2:]] == [("bea@example.com", "Your receipt")]
    with Session(engine) as fresh:
        assert fresh.scalar(select(func.count()).select_from(Delivery)) == 3


def test_a_long_refan_shows_its_progress(broker: StubBroker, engine: Engine, session: Session,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fanned_out_to_nobody(broker, engine, session, 5)
    monkeypatch.setattr(refan, "BATCH", 2)
    assert main(["refan", "--model", "Order"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["re-planned 2/5 transitions, 4 new deliveries",
                                         "re-planned 4/5 transitions, 8 new deliveries",
                                         "re-planned 5/5 transitions, 10 new deliveries"]
    assert captured.out.strip() == "re-planned 5 transitions: 10 new deliveries"


def test_refan_in_a_process_without_the_notifiers_refuses_rather_than_write_nothing(
        broker: StubBroker, engine: Engine, session: Session, restore_registry: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    fanned_out_to_nobody(broker, engine, session, 1)
    registry._by_name.clear()
    registry._by_transition.clear()
    assert main(["refan", "--model", "Order"]) == 2
    assert "tidings refan: no notifier for Order is registered here: set TIDINGS_NOTIFIERS" in capsys.readouterr().err
    assert addresses(engine) == []


@pytest.mark.parametrize("argv, code, says", [
    (["refan"], 2, "tidings refan needs transitions to re-plan"),
    (["refan", "--key", "1"], 2, "--key needs --model"),
    (["refan", "999"], 1, "No transition has id 999"),
])
def test_refan_refuses_to_guess_what_to_re_plan(broker: StubBroker, argv: list[str], code: int, says: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    assert says in capsys.readouterr().err


def test_refan_does_not_write_again_a_delivery_whose_key_was_made_before_keys_carried_the_installation(
        broker: StubBroker, engine: Engine, session: Session, mailbox: MemoryChannel,
        capsys: pytest.CaptureFixture[str]) -> None:
    fanned_out_to_nobody(broker, engine, session, 1)
    first = session.scalars(select(TransitionRecord.id)).one()
    assert main(["refan", str(first)]) == 0
    drain()
    with Session(engine) as fresh:  # as an older version keyed them: another hash of the same delivery
        fresh.execute(update(Delivery).values(key=func.substr(Delivery.key, 2) + "0"))
        fresh.commit()
    capsys.readouterr()
    assert main(["refan", str(first)]) == 0
    assert capsys.readouterr().out.strip() == "re-planned 1 transitions: 0 new deliveries"
    drain()
    assert len(mailbox.outbox) == 2 and addresses(engine) == ["b0@example.com", "s0@example.com"]
