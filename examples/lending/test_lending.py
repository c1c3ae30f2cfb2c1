"""The lending example, as its users would test it: each step tells the right party."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jobs
import pytest
import workflow
from dramatiq.brokers.stub import StubBroker
from jobs.testing import drain, stop_workers
from notifiers import MemoryChannel
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from examples.lending.models import Base, Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[MemoryChannel]:
    engine = create_engine(f"sqlite:///{tmp_path / 'lending.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    broker = StubBroker()
    broker.emit_after("process_boot")
    channel = MemoryChannel()
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, channels={"email": channel})
    with Session(engine) as session:
        ann, bob = User(name="Ann", email="ann@example.com"), User(name="Bob", email="bob@example.com")
        session.add(Loan(item=Item(title="ladder", owner=ann), borrower=bob))
        session.commit()
        channel.session = session  # type: ignore[attr-defined]
        yield channel
    stop_workers()
    broker.flush_all()
    engine.dispose()


def step(mailbox: MemoryChannel, trigger: str, **context: object) -> list[tuple[str, str]]:
    session: Session = mailbox.session  # type: ignore[attr-defined]
    loan = session.query(Loan).one()
    loan.fire(trigger, **context)
    session.commit()
    drain()
    sent = sorted((s.to.address, s.message.subject) for s in mailbox.outbox)
    mailbox.clear()
    return sent


def test_a_request_tells_the_lender(mailbox: MemoryChannel) -> None:
    assert step(mailbox, "request", note="for Saturday") == [("ann@example.com", "Bob would like to borrow your ladder")]


def test_accepting_tells_the_borrower_with_the_lenders_note(mailbox: MemoryChannel) -> None:
    step(mailbox, "request")
    session: Session = mailbox.session  # type: ignore[attr-defined]
    session.query(Loan).one().accept(note="see you Friday")
    session.commit()
    drain()
    [sent] = mailbox.outbox
    assert sent.to.address == "bob@example.com" and 'They wrote: "see you Friday"' in sent.message.text


def test_handing_over_tells_both_parties_each_in_their_own_words(mailbox: MemoryChannel) -> None:
    step(mailbox, "request")
    step(mailbox, "accept")
    session: Session = mailbox.session  # type: ignore[attr-defined]
    session.query(Loan).one().hand_over()
    session.commit()
    drain()
    texts = {s.to.address: s.message.text for s in mailbox.outbox}
    assert "Take good care of it" in texts["bob@example.com"]
    assert "You will hear from us" in texts["ann@example.com"]


def test_an_item_already_lent_cannot_be_handed_over(mailbox: MemoryChannel) -> None:
    step(mailbox, "request")
    step(mailbox, "accept")
    session: Session = mailbox.session  # type: ignore[attr-defined]
    loan = session.query(Loan).one()
    loan.item.available = False
    with pytest.raises(workflow.ConditionFailed, match="item_available"):
        loan.hand_over()
    assert loan.state == "accepted"


def test_declining_tells_the_borrower_only(mailbox: MemoryChannel) -> None:
    step(mailbox, "request")
    assert step(mailbox, "decline") == [("bob@example.com", "Your request for ladder was declined")]
