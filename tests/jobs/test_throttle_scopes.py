"""Throttle scopes: one budget across notifiers (scope="channel") or across notifiers and channels (scope="all")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import workflow
from jobs import Delivery, Status
from jobs.testing import Kit
from notifiers import RegistrationError, Throttle
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from workflow import clock, utcnow

from tests.throttle_app import HOUR, Agent, Base, HelpCase


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'throttle.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def case(session: Session) -> HelpCase:
    now = utcnow()  # 12:05 UTC: a window just began
    clock.advance((now.replace(hour=12, minute=5, second=0, microsecond=0) - now) % dt.timedelta(days=1))
    case = HelpCase(owner=Agent(name="Ann", email="ann@example.com", phone="+49 30 1234567"))
    session.add(case)
    session.commit()
    return case


def fire(session: Session, case: HelpCase, *triggers: str) -> None:
    for trigger in triggers:
        case.fire(trigger)
        session.commit()


def test_a_throttle_of_scope_all_counts_every_notifier_and_channel_against_one_limit(
        session: Session, case: HelpCase, tidings: Kit) -> None:
    fire(session, case, "assign", "mention", "assign", "mention")
    assert [n.channel for n in tidings.run()] == ["email", "sms"]


def test_what_a_throttle_of_scope_all_holds_back_is_all_in_each_notifier_s_following_digest(
        session: Session, case: HelpCase, tidings: Kit) -> None:
    fire(session, case, "assign", "mention", "assign", "mention", "mention")
    tidings.run()
    tidings.advance(hours=1)
    [by_email] = tidings.assert_digested("ann@example.com", events=1)
    [by_sms] = tidings.assert_digested("+49301234567", events=2)
    assert by_email.throttled and by_sms.throttled
    assert {row.status for row in session.scalars(select(Delivery))} == {Status.SENT}


def test_a_throttle_of_scope_channel_counts_every_notifier_on_one_channel_against_one_limit(
        session: Session, case: HelpCase, tidings: Kit) -> None:
    fire(session, case, "label", "tag", "tag", "ping")
    assert sorted(n.subject or n.text for n in tidings.run()) == [
        f"Case {case.id} labelled", f"Case {case.id} tagged", f"Case {case.id}: ping"]
    tidings.advance(hours=1)
    tidings.assert_digested("ann@example.com", count=1, events=1)


def test_a_shared_throttle_leaves_a_throttle_of_the_default_scope_its_own_limit(
        session: Session, case: HelpCase, tidings: Kit) -> None:
    fire(session, case, "assign", "assign", "note", "note")
    assert sorted(n.subject for n in tidings.run()) == [f"Case {case.id} assigned"] * 2 + [f"Case {case.id}: a note"]


def test_each_event_of_a_shared_throttle_is_measured_against_its_own_notifier_s_limit(
        session: Session, case: HelpCase, tidings: Kit) -> None:
    fire(session, case, "assign", "assign", "assign", "escalate", "escalate")
    assert sorted(n.subject for n in tidings.run()) == [f"Case {case.id} assigned"] * 2 + [f"Case {case.id} escalated"]


def test_throttles_of_one_scope_with_another_window_keep_a_budget_of_their_own(
        session: Session, case: HelpCase, tidings: Kit) -> None:
    clock.advance(dt.timedelta(hours=12))  # 00:05 UTC: the hour's window and the day's start together
    fire(session, case, "assign", "assign", "remind", "remind")
    assert sorted(n.subject for n in tidings.run()) == [f"Case {case.id} assigned"] * 2 + [f"Case {case.id}: a reminder"]


def test_a_shared_throttle_records_why_an_event_was_held_and_what_it_counts(
        session: Session, case: HelpCase, tidings: Kit) -> None:
    fire(session, case, "label", "tag", "label", "assign", "mention", "assign")
    tidings.run()
    held = sorted(session.scalars(select(Delivery.last_error).where(Delivery.status == Status.DIGEST)))
    assert [reason.split(": told")[0] for reason in held if reason] == [
        "Over the throttle of 2 a window (shared by the notifiers on every channel)",
        "Over the throttle of 2 a window (shared by the notifiers on this channel)"]


def test_a_shared_throttle_starts_again_with_the_next_window(session: Session, case: HelpCase, tidings: Kit) -> None:
    fire(session, case, "assign", "assign", "assign")
    tidings.run()
    tidings.advance(hours=1)
    fire(session, case, "assign", "assign")
    assert len(tidings.run()) == 2


def test_a_throttle_scope_must_be_notifier_channel_or_all() -> None:
    with pytest.raises(RegistrationError, match=r"Throttle\(scope='recipient'\): give 'notifier', 'channel' or 'all'"):
        Throttle(2, per=HOUR, scope="recipient")  # type: ignore[arg-type]
