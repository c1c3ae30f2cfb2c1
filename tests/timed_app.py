"""A help desk used by the time tests: tickets wait for an agent; delays, reminders, supersession, quiet hours."""

from __future__ import annotations

import datetime as dt

from notifiers import LEFT, Email, Event, Notifier, Recipient, on, remind
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from workflow import Stateful, Workflow


class Base(DeclarativeBase):
    pass


class Member(Base):
    __tablename__ = "desk_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))
    timezone: Mapped[str | None] = mapped_column(String(64))


class Case(Stateful, Base):
    __tablename__ = "desk_tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("desk_members.id"))
    author: Mapped[Member] = relationship(foreign_keys=[author_id])
    agent_id: Mapped[int] = mapped_column(ForeignKey("desk_members.id"))
    agent: Mapped[Member] = relationship(foreign_keys=[agent_id])

    workflow = Workflow(
        states=["new", "open", "answered", "closed"],
        initial="new",
        transitions=[
            ["open", "new", "open"],
            ["note", "open", "open"],
            ["answer", "open", "answered"],
            ["reopen", "answered", "open"],
            ["close", "*", "closed"],
        ],
        parties={"author": "author", "agent": "agent"},
    )


class TicketNotifier(Notifier):
    @on(Case, "open", to="author", delay=dt.timedelta(minutes=10), superseded_by=LEFT)
    def survey(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Ticket {event.key}: did we help?", text="Tell us.")

    @on(Case, "answer", to="author", delay=dt.timedelta(hours=1))
    def answered(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Ticket {event.key} answered", text="See the answer.")

    @on(Case, "answer", to="agent", delay=dt.timedelta(hours=2), superseded_by=["close"])
    def follow_up(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Ticket {event.key}: follow up", text="Still open?")

    @on(Case, "note", to="agent", delay=dt.timedelta(minutes=30), superseded_by=["note"])
    def noted(self, event: Event, recipient: Recipient) -> Email:
        """Told once the notes have stopped for 30 minutes: a later note voids the mail of the one before."""
        return Email(subject=f"Ticket {event.key}: new notes", text="Read them.")

    @remind(Case, "open", after=dt.timedelta(days=2), every=dt.timedelta(days=1), times=3, to="agent")
    def waiting(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Ticket {event.key} still waits", text="Please answer.")

    @on(Case, "close", to="author", quiet_hours=("22:00", "08:00"))
    def closed(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Ticket {event.key} closed", text="Bye.")

    @on(Case, "close", to="agent", quiet_hours=("22:00", "08:00"), required=True)
    def closed_for_agent(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Ticket {event.key} closed (agent)", text="Done.")
