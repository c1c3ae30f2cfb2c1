"""Models with timeouts, for the timer tests: an offer that lapses, one told nobody, one whose notifier is missing."""

from __future__ import annotations

import datetime as dt

from notifiers import Email, Event, Notifier, Recipient, on
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workflow import Stateful, Workflow

LAPSE_AFTER = dt.timedelta(days=3)


class Base(DeclarativeBase):
    pass


class Offer(Stateful, Base):
    """Published, an offer lapses after three days unless taken, withdrawn or pinned."""

    __tablename__ = "timed_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(320), default="olga@example.com")
    pinned: Mapped[bool] = mapped_column(default=False)
    broken: Mapped[bool] = mapped_column(default=False)
    corrupt: Mapped[bool] = mapped_column(default=False)

    workflow = Workflow(
        states=["draft", "open", "taken", "withdrawn", "lapsed"],
        initial="draft",
        transitions=[
            ["publish", "draft", "open"],
            ["take", "open", "taken"],
            ["withdraw", "open", "withdrawn"],
            ["reopen", ["withdrawn", "lapsed"], "open"],
            {"trigger": "lapse", "source": "open", "dest": "lapsed", "timeout": LAPSE_AFTER,
             "unless": "is_pinned", "after": "check_broken"},
        ],
        parties={"owner": "owner"},
    )

    def is_pinned(self) -> bool:
        return self.pinned

    def check_broken(self) -> None:
        if self.broken:
            raise RuntimeError("the offer's archive is unreachable")
        if self.corrupt:
            self.owner = None  # type: ignore[assignment]  # NOT NULL: the database refuses it at the flush


class Silent(Stateful, Base):
    """Told to nobody (no party, no notifier), yet it times out."""

    __tablename__ = "timed_silent"

    id: Mapped[int] = mapped_column(primary_key=True)

    workflow = Workflow(states=["new", "waiting", "gone"], initial="new",
                        transitions=[["wait", "new", "waiting"],
                                     {"trigger": "go", "source": "waiting", "dest": "gone",
                                      "timeout": dt.timedelta(hours=1)}])


class Unheard(Stateful, Base):
    """Has a party but no notifier anywhere: its transitions are held back, and it still times out."""

    __tablename__ = "timed_unheard"

    id: Mapped[int] = mapped_column(primary_key=True)

    workflow = Workflow(states=["new", "waiting", "gone"], initial="new",
                        transitions=[["wait", "new", "waiting"],
                                     {"trigger": "go", "source": "waiting", "dest": "gone",
                                      "timeout": dt.timedelta(hours=1)}],
                        parties={"keeper": lambda row: "keeper@example.com"})


class OfferNotifier(Notifier):
    """Tells the owner when the offer is taken or lapses."""

    @on(Offer, "take", to="owner")
    def taken(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Offer {event.key} was taken", text="Someone took it.")

    @on(Offer, "lapse", to="owner")
    def lapsed(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Offer {event.key} lapsed", text="Nobody took it in three days.")
