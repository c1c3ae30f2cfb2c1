"""The lending example, tested as its users would: with the ``tidings`` fixture Tidings installs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import workflow
from jobs.testing import Kit
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from examples.lending.models import Base, Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back after the test."""
    engine = create_engine(f"sqlite:///{tmp_path / 'lending.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with engine.connect() as connection:
        outer = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        outer.rollback()
    engine.dispose()


@pytest.fixture
def loan(session: Session) -> Loan:
    """Bob asks Ann for her ladder (nothing committed yet)."""
    ann, bob = User(name="Ann", email="ann@example.com"), User(name="Bob", email="bob@example.com")
    loan = Loan(item=Item(title="ladder", owner=ann), borrower=bob)
    session.add(loan)
    session.commit()
    return loan


def fire(session: Session, loan: Loan, *triggers: str, **context: object) -> None:
    for trigger in triggers:
        loan.fire(trigger, **context)
        session.commit()


def test_a_request_tells_the_lender(session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request", note="for Saturday")
    tidings.assert_notified("ann@example.com", trigger="request", subject="Bob would like to borrow your ladder",
                            body='They wrote: "for Saturday"', count=1)
    tidings.assert_sent_count(1)


def test_accepting_tells_the_borrower_with_the_lenders_note(session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request")
    fire(session, loan, "accept", note="see you Friday")
    [accepted] = tidings.notifications(trigger="accept")
    assert (accepted.to, accepted.party) == ("bob@example.com", "borrower")
    assert 'They wrote: "see you Friday"' in accepted.text and "<blockquote>see you Friday</blockquote>" in accepted.html


def test_handing_over_tells_both_parties_each_in_their_own_words(session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request", "accept", "hand_over")
    tidings.assert_notified("bob@example.com", trigger="hand_over", body="Take good care of it")
    tidings.assert_notified("ann@example.com", trigger="hand_over", body="You will hear from us")


def test_an_item_already_lent_cannot_be_handed_over(session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request", "accept")
    loan.item.available = False
    with pytest.raises(workflow.ConditionFailed, match="item_available"):
        loan.hand_over()
    assert loan.state == "accepted"
    session.rollback()
    assert tidings.notifications(trigger="hand_over") == []


def test_declining_tells_the_borrower_only(session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request")
    tidings.clear()
    fire(session, loan, "decline")
    tidings.assert_notified("bob@example.com", subject="Your request for ladder was declined", count=1)
    tidings.assert_sent_count(1)


def test_a_rolled_back_request_tells_nobody(session: Session, loan: Loan, tidings: Kit) -> None:
    loan.request()
    session.rollback()
    tidings.assert_nothing_sent()


def test_a_lender_who_has_not_answered_in_two_days_is_reminded(session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request")
    tidings.run()  # the request itself
    assert tidings.advance(days=1, hours=23) == []
    [reminder] = tidings.advance(hours=1)
    assert (reminder.to, reminder.subject) == ("ann@example.com", "Bob is still waiting for your answer")


def test_a_lender_who_answered_is_not_reminded(session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request", "decline")
    tidings.run()
    assert tidings.advance(days=3) == []
    tidings.assert_skipped("ann@example.com", trigger="request", reason="superseded by decline at ", count=1)


def test_an_hour_after_the_yes_the_borrower_is_asked_to_pick_the_item_up(session: Session, loan: Loan,
                                                                          tidings: Kit) -> None:
    fire(session, loan, "request", "accept")
    tidings.run()
    [nudge] = tidings.advance(hours=1)
    assert (nudge.to, nudge.subject) == ("bob@example.com", "Have you picked up the ladder?")


def test_no_pick_up_nudge_once_the_item_was_handed_over(session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request", "accept", "hand_over")
    tidings.run()
    assert tidings.advance(hours=1) == []
    tidings.assert_skipped("bob@example.com", trigger="accept", reason="superseded by hand_over at ", count=1)


def test_a_request_left_unanswered_for_a_week_expires_and_tells_the_borrower(
        session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request")
    tidings.clear()
    waited = tidings.advance(days=6, hours=23)  # the lender's reminder (day 2), no expiry yet
    assert [n.trigger for n in waited] == ["request"]
    [expired] = tidings.advance(hours=1)
    assert (expired.to, expired.trigger, expired.subject) == ("bob@example.com", "expire",
                                                              "Your request for ladder expired")
    assert "did not answer your request for the ladder within a week" in expired.text
    session.refresh(loan)
    assert loan.state == "expired"


def test_an_answered_request_does_not_expire(session: Session, loan: Loan, tidings: Kit) -> None:
    fire(session, loan, "request", "accept")
    tidings.clear()
    assert [n for n in tidings.advance(days=8) if n.trigger == "expire"] == []
    session.refresh(loan)
    assert loan.state == "accepted"
