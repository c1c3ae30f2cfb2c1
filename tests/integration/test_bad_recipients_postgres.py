"""On PostgreSQL, one recipient's bad data fails that recipient's delivery alone; the others are sent."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import jobs
import pytest
import workflow
from dramatiq.brokers.stub import StubBroker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobs import Delivery, Status
from jobs.fanout import plan
from jobs.testing import drain, stop_workers
from notifiers import Email, Event, Notifier, Recipient, on
from notifiers.channels import MemoryChannel
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from workflow import Stateful, TransitionRecord, Workflow

pytestmark = pytest.mark.integration

#: What the party "guest" yields, set by each test.
GIVEN: dict[str, object] = {}


def guest(invite: object) -> object:
    given = GIVEN["guest"]
    if isinstance(given, Exception):
        raise given
    return given


class Broken:
    """A recipient whose address and repr both raise."""

    @property
    def email(self) -> str:
        raise KeyError("no email loaded")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class Base(DeclarativeBase):
    pass


class Invite(Stateful, Base):
    __tablename__ = "bad_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow = Workflow(states=["draft", "sent"], initial="draft", transitions=[["send", "draft", "sent"]],
                        parties={"host": lambda invite: "Hostess <host@example.com>", "guest": guest})


@pytest.fixture
def invites(pg_url: str, restore_registry: None, restore_jobs: None) -> Iterator[tuple[Engine, MemoryChannel]]:
    """Invites and Tidings' tables on PostgreSQL, a worker sending to a mailbox, a notifier for host and guest."""

    class InviteNotifier(Notifier):
        @on(Invite, "send", to=["host", "guest"])
        def invited(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject="You are invited", text="Come.")

    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    broker, mailbox = StubBroker(), MemoryChannel()
    broker.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, channels={"email": mailbox}, sweep_interval=0,
                   max_retries=0)
    yield engine, mailbox
    stop_workers()
    GIVEN.clear()
    engine.dispose()


def fired_invite(session: Session) -> int:
    """A new invite committed, then ``send`` fired on it and committed; the transition's id."""
    invite = Invite()
    session.add(invite)
    session.commit()
    record = invite.send()
    session.commit()
    return record.id


def send_invite(engine: Engine, given: object) -> int:
    """Fire ``send`` on a new invite whose guest is ``given``, commit, and run the worker; the transition's id."""
    GIVEN["guest"] = given
    with Session(engine) as session:
        transition_id = fired_invite(session)
        drain()
        return transition_id


def deliveries(engine: Engine) -> dict[str, tuple[str, str | None]]:
    """Each party's delivery: its status and error."""
    with Session(engine) as session:
        return {d.party: (d.status, d.last_error) for d in session.scalars(select(Delivery))}


BAD = {
    "an address longer than its column": "x" * 320 + "@example.com",
    "a name longer than its column": "N" * 300 + " <guest@example.com>",
    "an address whose ref is longer than its column": "r" * 290 + "@example.com",
    "a locale longer than its column": SimpleNamespace(email="guest@example.com", locale="x" * 40),
    "an int": 42,
    "a bytes address": b"guest@example.com",
    "a name that is not a string": SimpleNamespace(email="guest@example.com", name=42),
    "a lone surrogate in the name": SimpleNamespace(email="guest@example.com", name="Gu\ud800est"),
    "a lone surrogate in the address": "gu\ud800est@example.com",
    "a NUL in the name": SimpleNamespace(email="guest@example.com", name="Gu\x00est"),
    "a NUL in the locale": SimpleNamespace(email="guest@example.com", locale="e\x00n"),
    "a lone surrogate in the locale": SimpleNamespace(email="guest@example.com", locale="e\ud800n"),
    "an object whose address and repr raise": Broken(),
    "a party callable that raises": LookupError("guest list unreachable"),
    "a party callable that raises with a NUL in its message": LookupError("guest\x00list \ud800unreachable"),
}


@pytest.mark.parametrize("given", BAD.values(), ids=BAD.keys())
def test_one_recipients_bad_data_fails_their_delivery_and_the_others_are_sent(
        invites: tuple[Engine, MemoryChannel], given: object) -> None:
    engine, mailbox = invites
    transition_id = send_invite(engine, given)
    rows = deliveries(engine)
    assert rows["host"] == (Status.SENT, None)
    assert rows["guest"][0] == Status.FAILED and rows["guest"][1]
    assert [s.to.address for s in mailbox.outbox] == ["host@example.com"]
    with Session(engine) as session:
        assert session.get(TransitionRecord, transition_id).fanned_out_at is not None  # type: ignore[union-attr]


def test_one_bad_element_of_a_partys_list_fails_alone(invites: tuple[Engine, MemoryChannel]) -> None:
    engine, mailbox = invites
    send_invite(engine, ["ann@example.com", "x" * 320 + "@example.com", "bob@example.com"])
    with Session(engine) as session:
        guests = session.scalars(select(Delivery).where(Delivery.party == "guest")).all()
    assert sorted(d.status for d in guests) == [Status.FAILED, Status.SENT, Status.SENT]
    assert sorted(s.to.address for s in mailbox.outbox) == ["ann@example.com", "bob@example.com", "host@example.com"]


def planned_invite(engine: Engine) -> list[Delivery]:
    """An invite sent and committed, then planned by a fan-out in this process; its delivery rows."""
    with Session(engine) as session:
        transition_id = fired_invite(session)
        plan(session, transition_id)
        return list(session.scalars(select(Delivery).where(Delivery.transition_id == transition_id)))


_TEXT = st.one_of(st.text(st.characters(exclude_categories=()), max_size=10),  # surrogates and NUL included
                  st.text(st.characters(exclude_categories=()), min_size=30, max_size=400))
_ADDRESS = st.builds("{}@example.com".format, st.text("abcdefghij", min_size=1, max_size=400))  # some too long
_GUEST = st.one_of(st.none(), st.integers(), st.binary(max_size=40), _TEXT, _ADDRESS,
                   st.builds(SimpleNamespace, email=st.one_of(_ADDRESS, _TEXT),
                             name=st.one_of(st.none(), st.integers(), _TEXT), locale=st.one_of(st.none(), _TEXT)))
_GUESTS = st.one_of(_GUEST, st.lists(_GUEST, max_size=3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(given=_GUESTS)
def test_whatever_a_party_yields_the_transition_is_planned_and_the_host_told(
        invites: tuple[Engine, MemoryChannel], given: object) -> None:
    engine, _ = invites
    GIVEN["guest"] = given
    rows = planned_invite(engine)
    assert [d.status for d in rows if d.party == "host"] == [Status.PENDING]
    assert {d.status for d in rows if d.party == "guest"} <= {Status.PENDING, Status.FAILED}


#: Guests enough for the deliveries to be written many at once (a few go in a statement of their own).
_CROWD = [f"guest{n}@example.com" for n in range(60)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(given=_GUESTS)
def test_whatever_one_of_many_guests_is_the_others_are_planned(
        invites: tuple[Engine, MemoryChannel], given: object) -> None:
    engine, _ = invites
    GIVEN["guest"] = [*_CROWD, *(given if isinstance(given, list) else [given])]
    rows = planned_invite(engine)
    assert [d.status for d in rows if d.party == "host"] == [Status.PENDING]
    assert sorted(d.address for d in rows if d.status == Status.PENDING and d.address in _CROWD) == sorted(_CROWD)
    assert {d.status for d in rows if d.party == "guest"} <= {Status.PENDING, Status.FAILED}
