"""A user's application, as the test kit's users write one: members who sign up and get activated."""

from __future__ import annotations

from notifiers import Email, Event, Notifier, Recipient, on
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from workflow import Stateful, Workflow


class Base(DeclarativeBase):
    pass


class Member(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))


class Signup(Stateful, Base):
    __tablename__ = "signups"
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    member: Mapped[Member] = relationship()

    workflow = Workflow(states=["pending", "active", "closed"], initial="pending",
                        transitions=[["activate", "pending", "active"], ["close", "*", "closed"]],
                        parties={"member": "member"}, name="SampleSignup")


class SignupNotifier(Notifier):
    @on(Signup, "activate", to="member")
    def welcome(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Welcome, {recipient.name}", text="Your account is active.")

    @on(Signup, "close", to="member")
    def goodbye(self, event: Event, recipient: Recipient) -> Email:
        if event.context.get("reason") == "bug":
            raise RuntimeError("the goodbye template service is down")
        return Email(subject="Goodbye", text=f"Closed: {event.context.get('reason', 'no reason')}.")
