"""Deliveries in time, through the test kit: delays, reminders, supersession, quiet hours (docs/time.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import workflow
from jobs import Delivery, Status
from jobs.testing import Kit
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from workflow import clock, utcnow

from tests.timed_app import Base, Member, Case

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def noon() -> None:
    """Move the clock to the next 12:00 UTC, so quiet hours (22:00-08:00) are far."""
    now = utcnow()
    target = now.replace(hour=12, minute=0, second=0, microsecond=0)
    clock.advance((target - now) % dt.timedelta(days=1))


@pytest.fixture
def ticket(session: Session) -> Case:
    noon()
    ticket = Case(author=Member(name="Ann", email="ann@example.com"),
                    agent=Member(name="Al", email="al@example.com", timezone="Europe/Berlin"))
    session.add(ticket)
    session.commit()
    return ticket


def fire(session: Session, ticket: Case, *triggers: str) -> None:
    for trigger in triggers:
        ticket.fire(trigger)
        session.commit()


def test_a_delayed_notification_is_not_sent_before_its_delay(session: Session, ticket: Case, tidings: Kit) -> None:
    fire(session, ticket, "open", "answer")
    assert tidings.notifications(trigger="answer") == []
    assert tidings.advance(minutes=59) == []


def test_a_delayed_notification_is_sent_once_due(session: Session, ticket: Case, tidings: Kit) -> None:
    fire(session, ticket, "open", "answer")
    sent = tidings.advance(hours=1)
    assert [n.subject for n in sent] == [f"Ticket {ticket.id} answered"]
    assert f"Ticket {ticket.id} answered" not in [n.subject for n in tidings.advance(hours=5)]


def test_a_delay_is_counted_from_the_transition_not_from_the_fan_out(session: Session, ticket: Case,
                                                                      tidings: Kit) -> None:
    ticket.fire("open")
    ticket.fire("answer")
    session.flush()
    clock.advance(dt.timedelta(minutes=50))
    session.commit()  # planned only now, 50 minutes after the transitions' time
    fired_at = session.scalars(select(workflow.TransitionRecord.created_at)
                               .where(workflow.TransitionRecord.trigger == "answer")).one()
    [scheduled] = tidings.scheduled("ann@example.com", trigger="answer")
    assert scheduled.due_at - fired_at.replace(tzinfo=dt.timezone.utc) == HOUR
    assert [n.trigger for n in tidings.advance(minutes=10)] == ["answer"]


def test_the_kit_lists_what_is_scheduled_with_its_due_time(session: Session, ticket: Case, tidings: Kit) -> None:
    fire(session, ticket, "open")
    opened = utcnow()
    found = {(s.notifier.rsplit(".", 1)[1], s.to): s.due_at - opened for s in tidings.scheduled()}
    assert set(found) == {("survey", "ann@example.com"), ("waiting", "al@example.com")}
    assert dt.timedelta(minutes=9) < found[("survey", "ann@example.com")] <= dt.timedelta(minutes=10)


def test_a_delivery_superseded_by_leaving_the_state_is_skipped_with_the_reason(
        session: Session, ticket: Case, tidings: Kit) -> None:
    fire(session, ticket, "open")
    clock.advance(dt.timedelta(minutes=5))
    fire(session, ticket, "answer")
    assert tidings.advance(minutes=10) == []
    [skipped] = tidings.skipped("ann@example.com", trigger="open")
    assert skipped.reason.startswith("superseded by answer at ") and skipped.reason.endswith(" UTC")


def test_a_self_loop_does_not_supersede_a_delivery_of_its_state(session: Session, ticket: Case,
                                                                 tidings: Kit) -> None:
    fire(session, ticket, "open", "note")
    sent = tidings.advance(minutes=10)
    assert [n.subject for n in sent] == [f"Ticket {ticket.id}: did we help?"]


def test_a_delivery_superseded_by_a_named_trigger_is_skipped(session: Session, ticket: Case,
                                                             tidings: Kit) -> None:
    fire(session, ticket, "open", "answer", "close")
    sent = tidings.advance(hours=3)
    assert "follow up" not in " ".join(n.subject for n in sent)
    assert [s.reason[:24] for s in tidings.skipped("al@example.com", trigger="answer")] == ["superseded by close at 2"]


def test_a_delivery_superseded_by_its_own_trigger_is_void_only_by_a_later_firing_of_it(
        session: Session, ticket: Case, tidings: Kit) -> None:
    fire(session, ticket, "open", "note")
    clock.advance(dt.timedelta(minutes=10))
    fire(session, ticket, "note")
    sent = tidings.advance(minutes=30)  # the first note's mail due 20 minutes ago, the second's now
    assert [n.subject for n in sent if "new notes" in n.subject] == [f"Ticket {ticket.id}: new notes"]
    [skipped] = tidings.skipped("al@example.com", trigger="note")
    assert skipped.reason.startswith("superseded by note at ")


def test_a_delivery_whose_claim_ran_out_after_its_row_moved_on_is_skipped_when_claimed_again(
        session: Session, ticket: Case, tidings: Kit) -> None:
    from jobs.claims import claim
    from jobs.due import take_due

    fire(session, ticket, "open")
    tidings.run()
    clock.advance(dt.timedelta(minutes=10))
    [survey] = take_due(session)
    assert claim(session, survey, lease_seconds=60) is not None  # claimed before the answer; its worker dies
    fire(session, ticket, "answer")
    clock.advance(dt.timedelta(minutes=2))
    assert claim(session, survey, lease_seconds=60) is None
    status, error = session.execute(select(Delivery.status, Delivery.last_error).where(Delivery.id == survey)).one()
    assert status == Status.SKIPPED and error.startswith("superseded by answer at ")


def test_the_reason_of_a_void_delivery_tells_the_superseding_time_in_utc_whatever_zone_it_was_read_in() -> None:
    from zoneinfo import ZoneInfo

    from jobs.supersession import reason

    at_berlin = dt.datetime(2026, 12, 1, 11, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # PostgreSQL in a server's zone
    at_naive_utc = dt.datetime(2026, 12, 1, 10, 0)  # SQLite's naive UTC
    assert reason("close", at_berlin) == reason("close", at_naive_utc) == "superseded by close at 2026-12-01 10:00 UTC"


def test_a_delay_without_supersession_still_sends_after_the_row_moved_on(session: Session, ticket: Case,
                                                                         tidings: Kit) -> None:
    fire(session, ticket, "open", "answer", "close")
    tidings.advance(hours=3)
    tidings.assert_notified("ann@example.com", trigger="answer", count=1)


def test_a_reminder_is_repeated_while_the_row_stays_in_its_state(session: Session, ticket: Case,
                                                                 tidings: Kit) -> None:
    fire(session, ticket, "open")
    assert [n for n in tidings.advance(days=1, hours=23) if "still waits" in n.subject] == []
    for _ in range(3):
        assert [n.to for n in tidings.advance(days=1) if "still waits" in n.subject] == ["al@example.com"]
    assert tidings.advance(days=5) == [] and tidings.scheduled() == []


def test_a_reminder_stops_once_the_row_left_its_state(session: Session, ticket: Case, tidings: Kit) -> None:
    fire(session, ticket, "open")
    tidings.advance(days=2)
    fire(session, ticket, "answer")
    sent = tidings.advance(days=5)
    assert [n for n in sent if "still waits" in n.subject] == []
    assert len(tidings.skipped("al@example.com", trigger="open", reason="superseded by answer")) == 2


def test_entering_the_state_again_plans_the_reminders_again(session: Session, ticket: Case, tidings: Kit) -> None:
    fire(session, ticket, "open", "answer", "reopen")
    sent = tidings.advance(days=2)
    assert [(n.trigger, n.to) for n in sent if "still waits" in n.subject] == [("reopen", "al@example.com")]


def test_a_self_loop_does_not_plan_the_reminders_again(session: Session, ticket: Case, tidings: Kit) -> None:
    fire(session, ticket, "open", "note")
    assert len([s for s in tidings.scheduled() if s.notifier.endswith(".waiting")]) == 3


def test_a_delivery_due_in_the_quiet_hours_waits_for_their_end(session: Session, ticket: Case,
                                                               tidings: Kit) -> None:
    clock.advance(dt.timedelta(hours=11))  # 23:00 UTC, the author has no zone: UTC
    fire(session, ticket, "close")
    [waiting] = tidings.scheduled("ann@example.com")
    assert (waiting.due_at.hour, waiting.due_at.minute) == (8, 0)
    assert [n.to for n in tidings.advance(hours=9)] == ["ann@example.com"]


def test_a_required_notification_is_sent_in_the_quiet_hours(session: Session, ticket: Case,
                                                            tidings: Kit) -> None:
    clock.advance(dt.timedelta(hours=11))  # 00:00 in Berlin
    fire(session, ticket, "close")
    tidings.assert_notified("al@example.com", trigger="close", count=1)


def test_quiet_hours_are_the_recipients_own_time(session: Session, ticket: Case, tidings: Kit) -> None:
    ticket.author.timezone = "America/New_York"  # 23:00 UTC is 18:00 or 19:00 in New York
    session.commit()
    clock.advance(dt.timedelta(hours=11))
    fire(session, ticket, "close")
    tidings.assert_notified("ann@example.com", trigger="close", count=1)


def test_a_recipient_with_an_unknown_time_zone_fails_with_its_name(session: Session, ticket: Case,
                                                                    tidings: Kit) -> None:
    ticket.author.timezone = "Mars/Olympus"
    session.commit()
    fire(session, ticket, "close")
    [failed] = tidings.failed(trigger="close", party="author")
    assert "'Mars/Olympus' is not an IANA time zone" in failed.reason


def test_a_delivery_is_not_claimed_before_its_due_time(session: Session, ticket: Case, tidings: Kit) -> None:
    from jobs.claims import claim

    fire(session, ticket, "open", "answer")
    tidings.run()
    delivery_id = session.scalars(select(Delivery.id).where(Delivery.notifier.endswith(".answered"))).one()
    assert claim(session, delivery_id, lease_seconds=60) is None
    assert session.get(Delivery, delivery_id).status == Status.SCHEDULED  # type: ignore[union-attr]


def test_each_repetition_of_a_reminder_has_its_own_key_and_other_keys_are_unchanged() -> None:
    import hashlib

    from jobs.delivery_log import delivery_key

    plain = hashlib.sha256(b"inst|42|n|ann@example.com|email").hexdigest()[:32]
    assert delivery_key(42, "n", "Ann@example.com", "email", installation="inst") == plain
    repeated = {delivery_key(42, "n", "ann@example.com", "email", installation="inst", repetition=k) for k in (1, 2, 3)}
    assert len(repeated) == 3 and plain not in repeated
