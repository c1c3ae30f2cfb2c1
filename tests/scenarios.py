"""Data the tests start from: paid orders, the lending example's tables, deliveries by status."""

from __future__ import annotations

from collections import Counter

import workflow
from jobs import Delivery
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.app import Order, Person


def paid_orders(session: Session, count: int) -> list[int]:
    """``count`` new orders (buyer b<n>@, seller s<n>@example.com), each paid and committed; the transitions' ids."""
    orders = [Order(buyer=Person(name=f"B{n}", email=f"b{n}@example.com"),
                    seller=Person(name=f"S{n}", email=f"s{n}@example.com")) for n in range(count)]
    session.add_all(orders)
    session.commit()
    ids = [order.pay().id for order in orders]
    session.commit()
    return ids


def create_lending_tables(engine: Engine) -> None:
    """The lending example's tables and Tidings' own."""
    from examples.lending.models import Base as LendingBase

    LendingBase.metadata.create_all(engine)
    workflow.metadata.create_all(engine)


def delivery_statuses(engine: Engine) -> Counter[str]:
    """How many deliveries are in each status, read in a fresh session; those held for later are not counted.

    (The lending example holds a reminder and a pick-up nudge, due days or an hour after their transition.)
    """
    with Session(engine) as session:
        return Counter(session.scalars(select(Delivery.status).where(Delivery.status != "scheduled")))
