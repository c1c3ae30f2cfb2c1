"""Re-sending: select failed or dead deliveries by id, status, notifier, channel and time, and send them again."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from workflow import utcnow

from .delivery import reset_for_resend
from .delivery_log import Delivery, Status
from .errors import ConfigurationError

__all__ = ["parse_time", "resend", "select_for_resend"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """An aware UTC time from ISO 8601 (``2026-11-24T01:00``, UTC when no offset) or an age (``90s``, ``2h``, ``3d``).

    Raises:
        ConfigurationError: neither form, naming what was given.
    """
    text = text.strip()
    if match := _AGO.match(text):
        return (now or utcnow()) - dt.timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"{text!r} is not a time: give ISO 8601 (2026-11-24T01:00, UTC unless an offset "
                                 f"is given) or an age (90s, 30m, 2h, 3d).") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def select_for_resend(session: Session, *, ids: Sequence[int] = (), statuses: Sequence[str] = (),
                      notifier: str | None = None, channel: str | None = None, since: dt.datetime | None = None,
                      until: dt.datetime | None = None) -> list[int]:
    """The ids of the failed or dead deliveries that match every criterion given, in id order.

    ``notifier`` matches the recorded name (``myapp.notifications.LoanNotifier.accepted``), its
    class (``LoanNotifier``) or its class and method (``LoanNotifier.accepted``). ``since`` and
    ``until`` bound when the delivery failed or died (its last update).
    """
    allowed = [s for s in (statuses or (Status.FAILED, Status.DEAD)) if s in (Status.FAILED, Status.DEAD)]
    query = select(Delivery.id).where(Delivery.status.in_(allowed)).order_by(Delivery.id)
    if ids:
        query = query.where(Delivery.id.in_(list(ids)))
    if notifier:
        query = query.where(or_(Delivery.notifier == notifier,
                                Delivery.notifier.endswith(f".{notifier}", autoescape=True),
                                Delivery.notifier.contains(f".{notifier}.", autoescape=True)))
    if channel:
        query = query.where(Delivery.channel == channel)
    if since is not None:
        query = query.where(Delivery.updated_at >= since)
    if until is not None:
        query = query.where(Delivery.updated_at < until)
    return list(session.scalars(query))


def resend(session: Session, ids: Sequence[int], send: Callable[[int], object], *, batch: int = 500,
           statuses: Sequence[str] = ()) -> Iterator[int]:
    """Put ``ids`` back to ``pending`` and ``send`` each, a batch per transaction; yield the count done after each batch.

    Raises:
        DeliveryNotFound: an id is no longer failed or dead (e.g. re-sent meanwhile by someone else).
    """
    done = 0
    for start in range(0, len(ids), batch):
        reset = reset_for_resend(session, ids=list(ids[start:start + batch]), statuses=tuple(statuses))
        for delivery_id in reset:
            send(delivery_id)
        done += len(reset)
        yield done
