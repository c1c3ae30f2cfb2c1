"""Subclasses of a Stateful model (single-table and joined-table) share its workflow and its log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dramatiq.brokers.stub import StubBroker
from jobs.testing import drain
from notifiers import Email, Event, Notifier, Recipient, RegistrationError, on
from notifiers.channels import MemoryChannel
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from workflow import load_subject

from tests.members import Base, Guest, Member, Moderator


@pytest.fixture
def members(engine: Engine) -> Iterator[Session]:
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


@pytest.fixture
def welcome(restore_registry: None) -> None:
    class MemberNotifier(Notifier):
        @on(Member, "join", to="member")
        def joined(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject=f"Welcome, {event.model} {event.key}", text="Hello.")


@pytest.mark.parametrize("cls", [Moderator, Guest])
def test_a_subclass_row_starts_in_the_initial_state(cls: type[Member]) -> None:
    assert cls(email="m@example.com").state == "invited"


@pytest.mark.parametrize("cls", [Moderator, Guest])
def test_a_subclass_row_fires_and_logs_its_transition_under_the_workflow_name(members: Session,
                                                                           cls: type[Member]) -> None:
    row = cls(email="m@example.com")
    members.add(row)
    members.commit()
    record = row.join()
    members.commit()
    assert (row.state, record.model, record.key) == ("active", "Member", str(row.id))
    members.expunge_all()
    found = load_subject(members, record)
    assert type(found) is cls and found is not None and found.state == "active"


@pytest.mark.usefixtures("welcome")
@pytest.mark.parametrize("cls", [Moderator, Guest])
def test_a_subclass_transition_is_notified_by_the_base_models_notifier(members: Session, broker: StubBroker,
                                                                       mailbox: MemoryChannel,
                                                                       cls: type[Member]) -> None:
    row = cls(email="m@example.com")
    members.add(row)
    members.commit()
    row.join()
    members.commit()
    drain(broker)
    assert [(sent.to.address, sent.message.subject) for sent in mailbox.outbox] == [
        ("m@example.com", f"Welcome, Member {row.id}")]


def test_a_notifier_registered_on_a_subclass_is_told_to_register_on_the_model_declaring_the_workflow() -> None:
    with pytest.raises(RegistrationError, match=r"Moderator inherits the workflow of Member; register on Member"):
        on(Moderator, "join", to="member")
