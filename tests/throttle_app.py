"""A help desk used by the throttle scope tests: throttles sharing one budget across notifiers and channels."""

from __future__ import annotations

import datetime as dt

from notifiers import Email, Event, Notifier, Recipient, Text, Throttle, on
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from workflow import Stateful, Workflow

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


class Base(DeclarativeBase):
    pass


class Agent(Base):
    __tablename__ = "thr_agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(32))


class HelpCase(Stateful, Base):
    __tablename__ = "thr_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("thr_agents.id"))
    owner: Mapped[Agent] = relationship()

    workflow = Workflow(
        states=["open"],
        initial="open",
        transitions=[[trigger, "open", "open"] for trigger in ("assign", "mention", "escalate", "remind", "label", "tag",
                                                                     "ping", "note")],
        parties={"owner": "owner"},
    )


class DeskNotifier(Notifier):
    # One budget of 2 an hour for the owner across these two, on email and on SMS.
    @on(HelpCase, "assign", to="owner", throttle=Throttle(2, per=HOUR, scope="all"))
    def assigned(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Case {event.key} assigned", text="Yours.")

    @on(HelpCase, "mention", to="owner", channels=["sms"], throttle=Throttle(2, per=HOUR, scope="all"))
    def mentioned(self, event: Event, recipient: Recipient) -> Text:
        return Text(body=f"Case {event.key}: you were mentioned")

    # The same budget as those two, measured against a limit of its own: sent alone while fewer than 3 were.
    @on(HelpCase, "escalate", to="owner", throttle=Throttle(3, per=HOUR, scope="all"))
    def escalated(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Case {event.key} escalated", text="Urgent.")

    # Another window: a budget of its own (1 a day), not the hourly one.
    @on(HelpCase, "remind", to="owner", throttle=Throttle(1, per=DAY, scope="all"))
    def reminded(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Case {event.key}: a reminder", text="Still open.")

    # One budget of 2 an hour per channel across these three: two on email, one on SMS.
    @on(HelpCase, "label", to="owner", throttle=Throttle(2, per=HOUR, scope="channel"))
    def labelled(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Case {event.key} labelled", text="A label.")

    @on(HelpCase, "tag", to="owner", throttle=Throttle(2, per=HOUR, scope="channel"))
    def tagged(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Case {event.key} tagged", text="A tag.")

    @on(HelpCase, "ping", to="owner", channels=["sms"], throttle=Throttle(2, per=HOUR, scope="channel"))
    def pinged(self, event: Event, recipient: Recipient) -> Text:
        return Text(body=f"Case {event.key}: ping")

    # The default scope: a budget of its own, whatever the others sent.
    @on(HelpCase, "note", to="owner", throttle=Throttle(1, per=HOUR))
    def noted(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Case {event.key}: a note", text="A note.")
