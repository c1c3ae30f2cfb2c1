"""A model and notifier both 0.1.0 and today's Tidings load: what the rolling-upgrade test sends across versions."""

from __future__ import annotations

from notifiers import Email, Event, Notifier, Recipient, on
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workflow import Stateful, Workflow


class Base(DeclarativeBase):
    pass


class Crate(Stateful, Base):
    __tablename__ = "rolling_crates"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))

    workflow = Workflow(states=["packed", "shipped"], initial="packed", transitions=[["ship", "packed", "shipped"]],
                        parties={"recipient": "recipient"})


class CrateMail(Notifier):
    @on(Crate, "ship", to=["recipient"])
    def shipped(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Crate {event.key} shipped", text="On its way.")
