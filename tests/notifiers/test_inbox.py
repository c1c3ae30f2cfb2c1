"""The in-app channel and inbox: items written once per delivery, listed, counted and marked read."""

from __future__ import annotations

import pytest
from dramatiq.brokers.stub import StubBroker
from jobs.testing import drain
from notifiers import Email, Event, Inbox, InAppChannel, Recipient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.app import Account, Person

ANN = Recipient("ann@example.com", "Ann", ref="Person:1")
BOB = Recipient("bob@example.com", "Bob", ref="Person:2")


@pytest.fixture
def channel(engine: Engine) -> InAppChannel:
    return InAppChannel(engine)


def send(channel: InAppChannel, to: Recipient, subject: str, key: str) -> None:
    channel.send(Email(subject=subject, text=f"{subject}!"), to, key=key)


def test_a_notification_lands_unread_in_the_recipients_inbox(channel: InAppChannel, session: Session) -> None:
    send(channel, ANN, "Issue 7 assigned to you", "k1")
    [item] = Inbox(session, ANN).items()
    assert (item.subject, item.text, item.unread) == ("Issue 7 assigned to you", "Issue 7 assigned to you!", True)


def test_the_same_delivery_sent_twice_leaves_one_item(channel: InAppChannel, session: Session) -> None:
    send(channel, ANN, "Once", "k1")
    send(channel, ANN, "Once", "k1")
    assert Inbox(session, ANN).unread_count() == 1


def test_items_come_newest_first_a_page_at_a_time(channel: InAppChannel, session: Session) -> None:
    for n in range(5):
        send(channel, ANN, f"n{n}", f"k{n}")
    inbox = Inbox(session, ANN)
    first = inbox.items(limit=2)
    assert [i.subject for i in first] == ["n4", "n3"]
    assert [i.subject for i in inbox.items(limit=2, before=first[-1].id)] == ["n2", "n1"]


def test_marking_read_lowers_the_unread_count(channel: InAppChannel, session: Session) -> None:
    send(channel, ANN, "a", "k1")
    send(channel, ANN, "b", "k2")
    inbox = Inbox(session, ANN)
    assert inbox.mark_read([inbox.items()[0].id]) == 1
    session.commit()
    assert (inbox.unread_count(), [i.subject for i in inbox.items(unread_only=True)]) == (1, ["a"])


def test_marking_all_read_and_one_unread_again(channel: InAppChannel, session: Session) -> None:
    send(channel, ANN, "a", "k1")
    send(channel, ANN, "b", "k2")
    inbox = Inbox(session, ANN)
    assert inbox.mark_read() == 2
    assert inbox.mark_unread([inbox.items()[-1].id]) == 1
    assert inbox.unread_count() == 1


def test_nobody_can_mark_another_recipients_items(channel: InAppChannel, session: Session) -> None:
    send(channel, BOB, "for Bob", "k1")
    [bobs] = Inbox(session, BOB).items()
    assert Inbox(session, ANN).mark_read([bobs.id]) == 0
    assert Inbox(session, BOB).unread_count() == 1


def test_an_inbox_is_opened_for_a_row_by_its_ref(channel: InAppChannel, session: Session) -> None:
    ann = Person(name="Ann", email="ann@example.com")
    session.add(ann)
    session.commit()
    send(channel, Recipient("ann@example.com", ref=f"Person:{ann.id}"), "hi", "k1")
    assert Inbox(session, ann).unread_count() == 1


def test_a_transition_notifies_in_app_through_the_worker(broker: StubBroker, session: Session) -> None:
    account = Account(owner=Person(name="Ann", email="ann@example.com"), state="locked")
    session.add(account)
    session.commit()
    account.unlock()
    session.commit()
    drain()
    [item] = Inbox(session, account.owner).items()
    assert (item.subject, item.model, item.trigger, item.party) == ("Your account is open again", "Account",
                                                                     "unlock", "owner")


def test_an_event_is_stored_with_its_record(channel: InAppChannel, session: Session) -> None:
    import datetime as dt

    event = Event(9, "Issue", "7", "close", "open", "closed", None, {}, dt.datetime.now(dt.timezone.utc), None)
    channel.send(Email(subject="closed", text="done"), ANN, key="k1", event=event)
    [item] = Inbox(session, ANN).items()
    assert (item.transition_id, item.model, item.record_key, item.trigger) == (9, "Issue", "7", "close")
