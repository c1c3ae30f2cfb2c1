"""The console's record of actions (``tidings_console_actions``): who re-sent or re-planned what, when, and what came of it.

A table of the pipeline's level, as the delivery log is, so that creating Tidings' tables never imports the console.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from workflow import Id, TidingsBase, utcnow

__all__ = ["ConsoleAction", "record", "recent"]


class ConsoleAction(TidingsBase):
    """One action taken in the console (``resend``, ``refan``), by the operator the host named."""

    __tablename__ = "tidings_console_actions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    operator: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    #: What it acted on: ``deliveries 12, 14`` or ``transition 7``.
    target: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)


def record(session: Session, operator: str, action: str, target: str, outcome: str) -> int:
    """Write one action and commit it; its id."""
    row = ConsoleAction(operator=operator, action=action, target=target, outcome=outcome)
    session.add(row)
    session.commit()
    return row.id


def recent(session: Session, limit: int = 100) -> list[ConsoleAction]:
    """The latest actions, newest first."""
    return list(session.scalars(select(ConsoleAction).order_by(ConsoleAction.id.desc()).limit(limit)))
