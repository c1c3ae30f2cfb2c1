"""The lending marketplace: people lend items to each other; a loan moves through states."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from workflow import Stateful, Workflow


class Base(DeclarativeBase):
    """The application's own declarative base."""


class User(Base):
    """A member: lends items, borrows items."""

    __tablename__ = "lending_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))


class Item(Base):
    """Something a member owns and lends."""

    __tablename__ = "lending_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("lending_users.id"))
    owner: Mapped[User] = relationship()
    available: Mapped[bool] = mapped_column(default=True)


class Loan(Stateful, Base):
    """A borrower asks for an item; its owner, the lender, accepts or declines; it is handed over and returned.

    A request nobody answers expires after a week by itself (a timeout, fired by the workers).
    """

    __tablename__ = "lending_loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("lending_items.id"))
    item: Mapped[Item] = relationship()
    borrower_id: Mapped[int] = mapped_column(ForeignKey("lending_users.id"))
    borrower: Mapped[User] = relationship()

    workflow = Workflow(
        states=["draft", "requested", "accepted", "declined", "expired", "handed_over", "returned"],
        initial="draft",
        transitions=[
            ["request", "draft", "requested"],
            ["accept", "requested", "accepted"],
            ["decline", "requested", "declined"],
            {"trigger": "expire", "source": "requested", "dest": "expired", "timeout": dt.timedelta(days=7)},
            {"trigger": "hand_over", "source": "accepted", "dest": "handed_over",
             "conditions": "item_available", "after": "mark_lent"},
            {"trigger": "give_back", "source": "handed_over", "dest": "returned", "after": "mark_back"},
        ],
        parties={"borrower": "borrower", "lender": lambda loan: loan.item.owner},
    )

    def item_available(self) -> bool:
        """An item already lent to someone else cannot be handed over."""
        return self.item.available

    def mark_lent(self) -> None:
        self.item.available = False

    def mark_back(self) -> None:
        self.item.available = True
