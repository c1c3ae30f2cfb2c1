"""Operator commands on deliveries held for a time: status counts them, explain shows due times, graph draws them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import actors
from jobs.commands.cli import main
from jobs.testing import drain
from notifiers import MemoryChannel
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from workflow import clock

from tests.timed_app import Base, Member, Case


@pytest.fixture
def ticket(broker: StubBroker, engine: Engine) -> Iterator[Case]:
    """A ticket opened and answered at noon UTC: a survey (10 min), reminders (2, 3, 4 days), mails (1 h, 2 h)."""
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
        yield ticket
    clock.reset()


def test_status_counts_deliveries_scheduled_due_and_overdue(ticket: Case, capsys: pytest.CaptureFixture[str]) -> None:
    clock.advance(dt.timedelta(hours=1, minutes=30))  # the survey and the answer mail are due, not yet taken
    assert main(["status", "--json"]) == 0
    # Due later: the follow-up (2 h) and the 3 reminders; due: the survey (void, recorded once taken) and the answer mail.
    assert json.loads(capsys.readouterr().out)["timed"] == {"scheduled": 4, "due": 2, "overdue": 2}


def test_a_health_check_does_not_count_scheduled_deliveries_as_pending(ticket: Case) -> None:
    assert main(["status", "--max-pending", "0", "--max-age", "60"]) == 0


def test_explain_shows_each_deliverys_due_time_and_why_one_was_dropped(
        ticket: Case, capsys: pytest.CaptureFixture[str]) -> None:
    clock.advance(dt.timedelta(minutes=15))
    actors.send_due()
    drain()
    assert main(["explain", "Case", str(ticket.id)]) == 0
    out = capsys.readouterr().out
    assert "author <ann@example.com> by email, due " in out
    assert "skipped, 0 attempt(s) (superseded by answer at " in out


def test_graph_shows_delays_supersession_and_reminders(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph"]) == 0
    out = capsys.readouterr().out
    assert "new -> open on open: author (email, after 10 minutes, void once left)" in out
    assert "open -> answered on answer: author (email, after 1 hour); agent (email, after 2 hours, void on close)" in out
    assert "still open after 2 days, every 1 day, 3 times: remind agent (email)" in out
    assert "author (email, not 22:00-08:00)" in out


def test_refan_plans_delayed_deliveries_due_from_the_transitions_time_not_from_now(
        ticket: Case, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    from jobs import Delivery, Status
    from sqlalchemy import delete, select
    from workflow import TransitionRecord

    with Session(engine) as session:
        answer = session.scalars(select(TransitionRecord).where(TransitionRecord.trigger == "answer")).one()
        answer_id, at = answer.id, answer.created_at.replace(tzinfo=None)
        session.execute(delete(Delivery).where(Delivery.transition_id == answer_id))
        session.commit()
    clock.advance(dt.timedelta(minutes=30))  # refan runs later than the transition
    assert main(["refan", str(answer_id)]) == 0
    drain()
    with Session(engine) as session:
        rows = session.scalars(select(Delivery).where(Delivery.transition_id == answer_id)).all()
        made = {row.notifier.rsplit(".", 1)[1]: (row.status, row.due_at) for row in rows}
    assert {name: (status, due.replace(tzinfo=None) - at if due else None) for name, (status, due) in made.items()} == {
        "answered": (Status.SCHEDULED, dt.timedelta(hours=1)), "follow_up": (Status.SCHEDULED, dt.timedelta(hours=2))}


def test_resend_of_a_delivery_whose_row_moved_on_records_it_superseded_and_sends_nothing(
        ticket: Case, engine: Engine, mailbox: MemoryChannel, capsys: pytest.CaptureFixture[str]) -> None:
    from jobs import Delivery, Status
    from sqlalchemy import select, update

    clock.advance(dt.timedelta(minutes=15))  # the survey is due; the ticket was answered since it was planned
    with Session(engine) as session:
        survey = session.scalars(select(Delivery.id).where(Delivery.notifier.endswith(".survey"))).one()
        session.execute(update(Delivery).where(Delivery.id == survey)
                        .values(status=Status.FAILED, last_error="550 mailbox full"))
        session.commit()
    assert main(["resend", str(survey)]) == 0
    drain()
    with Session(engine) as session:
        after = session.get(Delivery, survey)
        assert after is not None
        assert (after.status, (after.last_error or "").startswith("superseded by answer at ")) == (Status.SKIPPED, True)
    assert [sent.message.subject for sent in mailbox.outbox if "did we help" in sent.message.subject] == []
