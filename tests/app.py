"""A small shop used by the tests: orders with a buyer, a seller and watchers."""

from __future__ import annotations

from typing import Any

from notifiers import Email, Event, Notifier, Recipient, on
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from workflow import Stateful, Workflow


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "shop_people"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))


class Order(Stateful, Base):
    __tablename__ = "shop_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("shop_people.id"))
    buyer: Mapped[Person] = relationship(foreign_keys=[buyer_id])
    seller_id: Mapped[int] = mapped_column(ForeignKey("shop_people.id"))
    seller: Mapped[Person] = relationship(foreign_keys=[seller_id])
    watchers: Mapped[list[str]] = mapped_column(JSON, default=list)
    paid_in_full: Mapped[bool] = mapped_column(default=True)
    calls: Mapped[list[str]] = mapped_column(JSON, default=list)

    workflow = Workflow(
        states=["new", "paid", "shipped", "cancelled"],
        initial="new",
        transitions=[
            {"trigger": "pay", "source": "new", "dest": "paid", "conditions": "is_paid_in_full",
             "before": "note_before", "after": "note_after"},
            {"trigger": "ship", "source": "paid", "dest": "shipped", "unless": ["is_blocked"],
             "after": "greet_buyer"},
            {"trigger": "cancel", "source": ["new", "paid"], "dest": "cancelled"},
            ["reopen", "*", "new"],
            ["explode", "new", "paid", None, None, "blow_up"],
        ],
        parties={"buyer": "buyer", "seller": "seller", "watchers": "watchers", "nobody": lambda order: None},
    )

    def is_paid_in_full(self) -> bool:
        return self.paid_in_full

    def is_blocked(self, **context: Any) -> bool:
        return bool(context.get("blocked"))

    def note_before(self, actor: object = None) -> None:
        self.calls = [*self.calls, f"before:{actor}"]

    def note_after(self, **context: Any) -> None:
        self.calls = [*self.calls, f"after:{sorted(context)}"]

    def greet_buyer(self) -> None:
        self.calls = [*self.calls, f"greet:{self.buyer.name}"]  # a lazy load: the session autoflushes

    def blow_up(self) -> None:
        raise RuntimeError("after-callback failed")


class OrderNotifier(Notifier):
    templates = "templates"

    @on(Order, "pay", to=["buyer", "seller"])
    def paid(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Order {event.key} paid", text=f"Hello {recipient.name}, order {event.key} is paid.")

    @on(Order, "ship", to="buyer")
    def shipped(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Order {event.key} shipped", template=event.context.get("template", "shipped"))

    @on(Order, "cancel", to=["buyer", "watchers", "nobody"])
    def cancelled(self, event: Event, recipient: Recipient) -> Email | None:
        if event.context.get("quiet"):
            return None
        return Email(subject=event.context.get("subject", "Order cancelled"), text="It is cancelled.")


class Account(Stateful, Base):
    """A member's account: locking it is security mail (required), unlocking it is not."""

    __tablename__ = "shop_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("shop_people.id"))
    owner: Mapped[Person] = relationship()

    workflow = Workflow(
        states=["active", "locked"],
        initial="active",
        transitions=[["lock", "active", "locked"], ["unlock", "locked", "active"]],
        parties={"owner": "owner"},
    )


class AccountNotifier(Notifier):
    @on(Account, "lock", to="owner", channels=["email", "inapp"], required=True)
    def locked(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject="Your account is locked", text="Someone tried your password too often.")

    @on(Account, "unlock", to="owner", channels=["email", "inapp"])
    def unlocked(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject="Your account is open again", text="Welcome back.")


class Parcel(Stateful, Base):
    """A parcel whose courier's system is told by webhook when it is ready to be picked up."""

    __tablename__ = "shop_parcels"

    id: Mapped[int] = mapped_column(primary_key=True)
    courier_id: Mapped[int] = mapped_column(ForeignKey("shop_people.id"))
    courier: Mapped[Person] = relationship()

    workflow = Workflow(
        states=["packing", "ready"],
        initial="packing",
        transitions=[["release", "packing", "ready"]],
        parties={"courier": "courier"},
    )


class ParcelNotifier(Notifier):
    @on(Parcel, "release", to="courier", channels=["webhook"])
    def released(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Parcel {event.key} is ready", text="Pick it up at the back door.")
