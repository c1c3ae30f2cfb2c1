"""Members, and two kinds of them: a Stateful model with a single-table and a joined-table subclass."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workflow import Stateful, Workflow


class Base(DeclarativeBase):
    pass


class Member(Stateful, Base):
    __tablename__ = "inh_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(320))
    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "member"}

    workflow = Workflow(states=["invited", "active"], initial="invited", transitions=[["join", "invited", "active"]],
                        parties={"member": lambda member: member})


class Moderator(Member):  # single-table: no table of its own
    __mapper_args__ = {"polymorphic_identity": "moderator"}


class Guest(Member):  # joined-table
    __tablename__ = "inh_guests"

    id: Mapped[int] = mapped_column(ForeignKey("inh_members.id"), primary_key=True)
    sponsor: Mapped[str | None] = mapped_column(String(100))
    __mapper_args__ = {"polymorphic_identity": "guest"}
