"""Rows for the retention tests, written straight into Tidings' tables: transitions, deliveries, timers, inbox,
digests and shared throttles' windows."""

from __future__ import annotations

import datetime as dt
import itertools

from jobs import Delivery, DigestRow
from jobs.throttle_log import ThrottleRow
from jobs.timers import Timer
from notifiers.inbox import InboxItem
from sqlalchemy import Engine, func, insert, select
from workflow import TransitionRecord, utcnow

_ids = itertools.count(1)
OLD = dt.timedelta(days=100)


def transition(engine: Engine, *, key: str = "1", age: dt.timedelta = OLD, fanned_out: bool = True) -> int:
    """A transition of ``Shipment`` ``key``, ``age`` ago."""
    at = utcnow() - age
    with engine.begin() as connection:
        return int(connection.execute(insert(TransitionRecord).values(
            model="Shipment", key=key, trigger="ship", source="packed", dest="shipped", context={}, created_at=at,
            fanned_out_at=at if fanned_out else None).returning(TransitionRecord.id)).scalar_one())


def delivery(engine: Engine, transition_id: int, status: str, *, age: dt.timedelta = OLD,
             digest_id: int | None = None) -> int:
    """A delivery of ``transition_id`` last changed ``age`` ago, in ``status`` (a member of ``digest_id``, if given)."""
    at = utcnow() - age
    with engine.begin() as connection:
        return int(connection.execute(insert(Delivery).values(
            key=f"{next(_ids):032d}", transition_id=transition_id, notifier="ShipmentMail", party="recipient",
            channel="email", address="ann@example.com", recipient_ref="", status=status, attempts=1, created_at=at,
            updated_at=at, digest_id=digest_id).returning(Delivery.id)).scalar_one())


def digest(engine: Engine, status: str, *, age: dt.timedelta = OLD) -> int:
    """A digest to Ann of a window ``age`` ago, last changed then, in ``status``."""
    at = utcnow() - age
    with engine.begin() as connection:
        return int(connection.execute(insert(DigestRow).values(
            key=f"{next(_ids):032d}", notifier="ShipmentMail", party="recipient", channel="email",
            address="ann@example.com", recipient_ref="", group_key="", window_start=at, due_at=at, status=status,
            throttled=0, alone=0, events=0, attempts=1, created_at=at, updated_at=at).returning(DigestRow.id)).scalar_one())


def throttle_window(engine: Engine, *, age: dt.timedelta = OLD) -> None:
    """A shared throttle's row for Ann of a window that ended ``age`` ago."""
    end = utcnow() - age
    with engine.begin() as connection:
        connection.execute(insert(ThrottleRow).values(
            key=f"{next(_ids):032d}", scope="all", recipient_ref="ann@example.com", channel="*",
            window_start=end - dt.timedelta(hours=1), window_end=end, sent=2, created_at=end))


def timer(engine: Engine, transition_id: int, status: str, *, key: str = "1") -> None:
    """A timer of ``transition_id`` on ``Shipment`` ``key``."""
    at = utcnow() - OLD
    with engine.begin() as connection:
        connection.execute(insert(Timer).values(transition_id=transition_id, model="Shipment", key=key,
                                                trigger=f"t{next(_ids)}", due_at=at, status=status, created_at=at,
                                                updated_at=at))


def inbox(engine: Engine, *, read_age: dt.timedelta | None) -> None:
    """An inbox item, read ``read_age`` ago (``None``: unread)."""
    with engine.begin() as connection:
        connection.execute(insert(InboxItem).values(
            key=f"{next(_ids):032d}", recipient="ann", subject="Shipped", created_at=utcnow() - OLD,
            read_at=None if read_age is None else utcnow() - read_age))


def count(engine: Engine, model: type[object]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)
