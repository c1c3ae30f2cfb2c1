"""The issue tracker: issues with an author, an assignee and (many) watchers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session, relationship
from workflow import Stateful, Trigger, Workflow


#: Who hears of an issue nobody takes on (see the escalation in notifications.py).
PROJECT_LEAD = "Lea Lead <lead@example.com>"


class Base(DeclarativeBase):
    """The application's own declarative base."""


class User(Base):
    """Someone who files, fixes or watches issues; ``locale`` picks the language of what they read."""

    __tablename__ = "issues_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str | None] = mapped_column(String(35))


watching = Table(
    "issues_watching", Base.metadata,
    Column("issue_id", ForeignKey("issues_issues.id"), primary_key=True),
    Column("user_id", ForeignKey("issues_users.id"), primary_key=True),
)


class Issue(Stateful, Base):
    """An issue: updated, assigned, flagged as a security issue, closed and reopened; everyone involved is told."""

    __tablename__ = "issues_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    security: Mapped[bool] = mapped_column(default=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("issues_users.id"))
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("issues_users.id"))
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    watchers: Mapped[list[User]] = relationship(secondary=watching, order_by=User.id)

    workflow = Workflow(
        states=["new", "open", "closed"],
        initial="new",
        transitions=[
            ["file", "new", "open"],  # fired when the issue is made: the time an unassigned issue waits counts from it
            # dest "=" keeps the state: the transition is recorded (source == dest) and notifies.
            {"trigger": "update", "source": "*", "dest": "="},
            {"trigger": "assign", "source": "open", "dest": "=", "before": "take_assignee"},
            {"trigger": "flag_security", "source": "*", "dest": "=", "unless": "is_security",
             "before": "mark_security"},
            ["close", "open", "closed"],
            ["reopen", "closed", "open"],
        ],
        parties={"author": "author", "assignee": "assignee", "watchers": "watchers", "lead": lambda issue: PROJECT_LEAD},
    )

    if TYPE_CHECKING:  # the trigger methods the Workflow generates, spelled out for the type checker
        file: Trigger
        update: Trigger
        assign: Trigger
        flag_security: Trigger
        close: Trigger
        reopen: Trigger

    def take_assignee(self, assignee_id: int) -> None:
        """``issue.assign(actor=ann, assignee_id=bob.id)``: the id is kept in the transition's context too.

        Raises:
            ValueError: no user has this id (the issue keeps its state and assignee).
        """
        session = object_session(self)
        assignee = session.get(User, assignee_id) if session is not None else None
        if assignee is None:
            raise ValueError(f"Issue {self.id} cannot be assigned to user {assignee_id}: no such user.")
        self.assignee = assignee

    def is_security(self) -> bool:
        """An issue is flagged as a security issue once."""
        return self.security

    def mark_security(self) -> None:
        """From now on its details are embargoed."""
        self.security = True
