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
