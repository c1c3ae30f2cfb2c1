"""An issue tracker used by the digest tests: watchers told of comments in digests, throttled labels."""

from __future__ import annotations

import datetime as dt

from notifiers import Digest, Email, Event, Notifier, Recipient, Throttle, on
from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from workflow import Stateful, Workflow

HOUR = dt.timedelta(hours=1)


class Base(DeclarativeBase):
    pass


watching = Table("dig_watching", Base.metadata, Column("issue_id", ForeignKey("dig_issues.id"), primary_key=True),
                 Column("member_id", ForeignKey("dig_members.id"), primary_key=True))


class Member(Base):
    __tablename__ = "dig_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))
    timezone: Mapped[str | None] = mapped_column(String(64))


class Watched(Stateful, Base):
    __tablename__ = "dig_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    author_id: Mapped[int] = mapped_column(ForeignKey("dig_members.id"))
    author: Mapped[Member] = relationship(foreign_keys=[author_id])
    watchers: Mapped[list[Member]] = relationship(secondary=watching)

    workflow = Workflow(
        states=["open", "closed"],
        initial="open",
        transitions=[
            ["comment", "open", "open"],
            ["edit", "open", "open"],
            ["label", "open", "open"],
            ["nudge", "open", "open"],
            ["close", "open", "closed"],
        ],
        parties={"author": "author", "watchers": "watchers"},
    )


class WatchNotifier(Notifier):
    @on(Watched, "comment", to="watchers", digest=Digest(window=HOUR))
    def commented(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Issue {event.key}: {event.context.get('text', 'a comment')}", text="Read it.")

    @on(Watched, "edit", to="watchers", digest=Digest(window=HOUR, by="subject", mode="lead"))
    def edited(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Issue {event.key} edited", text="See the change.")

    @on(Watched, "label", to="author", throttle=Throttle(2, per=HOUR))
    def labelled(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Issue {event.key} labelled {event.context.get('label', '')}", text="A label.")

    @on(Watched, "close", to="watchers")
    def closed(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Issue {event.key} closed", text="Closed.")

    @on(Watched, "nudge", to="author", digest=Digest(window=HOUR, by="subject"), superseded_by=["close"],
        quiet_hours=("22:00", "08:00"))
    def nudged(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Issue {event.key} needs you", text="Nudge.")
