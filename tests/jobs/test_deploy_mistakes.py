"""A deploy mistake never loses a notification silently: transitions held back when their model has no
notifier where they are planned, `explain` telling why, `tidings refan`, and the commands' one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.commands.cli import main
from jobs.testing import drain
from notifiers import Email, Event, MemoryChannel, Notifier, Recipient, on, registry
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from workflow import Stateful, TransitionRecord, Workflow, utcnow

from tests.app import Order

TIDINGS = str(Path(sys.executable).with_name("tidings"))


class _LampBase(DeclarativeBase):
    pass


class Lamp(Stateful, _LampBase):
    """A model whose workflow names no party: its transitions notify nobody by design."""

    __tablename__ = "deploy_lamps"
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow = Workflow(states=["off", "on"], initial="off", transitions=[["switch", "off", "on"]])


def forget(model: str) -> Callable[[], None]:
    """Unregister every notifier of ``model`` (as in a worker that never imported them); a function that brings them back."""
    by_name, by_transition = dict(registry._by_name), {k: list(v) for k, v in registry._by_transition.items()}
    for key in [k for k in registry._by_transition if k[0] == model]:
        del registry._by_transition[key]
    for key in [k for k in registry._by_name if k[1] == model]:
        del registry._by_name[key]

    def bring_back() -> None:
        registry._by_name.update(by_name)
        registry._by_transition.update(by_transition)

    return bring_back


def transition(engine: Engine, transition_id: int) -> TransitionRecord:
    with Session(engine) as fresh:
        record = fresh.get(TransitionRecord, transition_id)
        assert record is not None
        return record


def deliveries(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as fresh:
        return sorted((d.notifier.rsplit(".", 1)[1], d.address) for d in fresh.scalars(select(Delivery)))


@pytest.fixture
def bring_back(restore_registry: None) -> Callable[[], None]:
    """Order's notifiers forgotten; calling it registers them again."""
    return forget("Order")


@pytest.fixture
def held(broker: StubBroker, engine: Engine, session: Session, order: Order, bring_back: Callable[[], None]) -> int:
    """An order paid while the worker had no notifier for Order: the transition's id."""
    record = order.pay()
    session.commit()
    drain()
    return record.id


# --- held back, counted, explained --------------------------------------------------------------------------


def test_a_transition_whose_model_has_no_notifier_where_it_is_planned_is_held_back_with_its_reason(
        held: int, engine: Engine) -> None:
    record = transition(engine, held)
    assert record.fanned_out_at is None
    assert record.held_reason is not None and record.held_reason.startswith("No notifier for Order is registered")
    assert "TIDINGS_NOTIFIERS" in record.held_reason and deliveries(engine) == []


def test_status_counts_a_held_transition_and_its_health_check_fails(held: int, engine: Engine,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with Session(engine) as fresh:  # held for ten minutes
        fresh.execute(update(TransitionRecord).values(created_at=utcnow() - dt.timedelta(minutes=10)))
        fresh.commit()
    assert main(["status", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["transitions_held"] == 1 and figures["transitions_not_fanned_out"] == 1
    assert figures["held_by_reason"][0]["reason"].startswith("No notifier for Order")
    assert main(["status", "--max-age", "300", "--max-dead", "0"]) == 1
    captured = capsys.readouterr()
    age = re.search(r"^unhealthy: oldest undelivered ([0-9.]+) s > 300.0 s$", captured.err, re.M)
    assert age is not None and 600 <= float(age.group(1)) < 900  # ten minutes, and however long the test took
    assert captured.out.splitlines()[1:3] == ["transitions not fanned out: 1 (1 held back)",
                                              f"  held: 1 x {figures['held_by_reason'][0]['reason']}"]


def test_explain_says_a_held_transition_was_held_back_and_why(held: int, order: Order,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "Order", str(order.id)]) == 0
    out = capsys.readouterr().out
    assert "nobody told: held back, not fanned out: No notifier for Order is registered" in out
    assert "resolved to nobody" not in out


def test_a_held_transition_is_delivered_once_a_worker_with_its_notifiers_takes_it(
        held: int, engine: Engine, mailbox: MemoryChannel, bring_back: Callable[[], None]) -> None:
    bring_back()
    jobs.actors.fan_out.send(held, swept=True)  # the sweeper's message
    drain()
    assert transition(engine, held).fanned_out_at is not None and transition(engine, held).held_reason is None
    assert sorted(m.to.address for m in mailbox.outbox) == ["bea@example.com", "sam@example.com"]


def test_a_model_whose_workflow_names_no_party_notifies_nobody_and_is_done(broker: StubBroker, engine: Engine,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _LampBase.metadata.create_all(engine)
    with Session(engine) as session:
        lamp = Lamp()
        session.add(lamp)
        session.commit()
        record_id = lamp.switch().id
        session.commit()
    drain()
    assert transition(engine, record_id).fanned_out_at is not None
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["transitions_held"] == 0


def test_a_transition_with_notifiers_for_its_model_but_none_for_its_trigger_is_done(
        broker: StubBroker, engine: Engine, session: Session, order: Order) -> None:
    record = order.reopen()
    session.commit()
    drain()
    assert transition(engine, record.id).fanned_out_at is not None and transition(engine, record.id).held_reason is None


def test_explain_tells_deliveries_due_but_never_written_rather_than_nobody(
        broker: StubBroker, engine: Engine, session: Session, order: Order, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a transition marked fanned out with no delivery, as a worker without its notifiers left it
    record = order.pay()
    session.commit()
    with Session(engine) as fresh:
        fresh.execute(update(TransitionRecord).values(fanned_out_at=record.created_at))
        fresh.commit()
    assert main(["explain", "Order", str(order.id)]) == 0
    out = capsys.readouterr().out
    assert f"2 deliveries are due by the notifiers registered here, but none was written" in out
    assert f"tidings refan {record.id}" in out and "resolved to nobody" not in out
