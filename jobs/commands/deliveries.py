"""``tidings deliveries``: list deliveries by status, oldest first."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select
from workflow.clock import aware
from sqlalchemy.orm import Session

from ..delivery_log import Delivery, Status
from .resend import delivery_criteria

__all__ = ["add_parser", "listing", "run"]


def listing(session: Session, *, statuses: Sequence[str] = (), notifier: str | None = None, channel: str | None = None,
            since: dt.datetime | None = None, until: dt.datetime | None = None, before: int | None = None,
            after: int | None = None, newest_first: bool = False, limit: int = 50) -> list[Delivery]:
    """One page of deliveries matching the filters, by id: keyset paging (``before``/``after`` an id), never OFFSET.

    ``since`` and ``until`` bound when a delivery was written (``created_at``), through id bounds
    (:func:`_id_range`). The command lists the oldest first; the console the newest first. The
    primary key is walked in order (PostgreSQL takes a rare status from the status index and sorts
    its few rows instead).
    """
    query = select(Delivery).where(*delivery_criteria(notifier=notifier, channel=channel, since=since, until=until,
                                                      at=Delivery.created_at))
    if statuses:
        query = query.where(Delivery.status.in_(list(statuses)) if len(statuses) > 1 else Delivery.status == statuses[0])
    if before is not None:
        query = query.where(Delivery.id < before)
    if after is not None:
        query = query.where(Delivery.id > after)
    query = query.where(*_id_range(session, since, until))
    ascending = not newest_first if before is None and after is None else after is not None
    rows = list(session.scalars(query.order_by(Delivery.id if ascending else Delivery.id.desc()).limit(limit)))
    return sorted(rows, key=lambda d: d.id, reverse=newest_first)


_DRIFT = dt.timedelta(minutes=1)  # how far out of id order two deliveries' created_at may be (commit lag: far less)


def _id_range(session: Session, since: dt.datetime | None, until: dt.datetime | None) -> list[ColumnElement[bool]]:
    """Bounds on the id that hold every delivery written in [since, until), found by bisecting the primary key.

    Ids grow with the time a delivery is written (within ``_DRIFT``), so a page walks the id index
    (as without a time) between these bounds instead of past every row outside the window; the
    time filter itself stays exact. About 20 primary-key probes per bound, and no index on the
    time to keep up on every write.
    """
    bounds: list[ColumnElement[bool]] = []
    if since is not None:
        bounds.append(Delivery.id >= _first_written(session, since - _DRIFT))
    if until is not None:
        bounds.append(Delivery.id < _first_written(session, until + _DRIFT))
    return bounds


def _first_written(session: Session, moment: dt.datetime) -> int:
    """The smallest id written at or after ``moment`` (one past the largest id when none is)."""
    low, high = session.execute(select(func.min(Delivery.id), func.max(Delivery.id))).one()
    if low is None:
        return 0
    high += 1
    while low < high:  # ids below low were written before moment; the first id from high on, at or after it
        middle = (low + high) // 2
        found = session.execute(select(Delivery.id, Delivery.created_at).where(Delivery.id >= middle)
                                .order_by(Delivery.id).limit(1)).first()
        if found is None or aware(found[1]) >= moment:
            high = middle  # the first id from middle on is at or after moment (or there is none)
        else:
            low = found[0] + 1
    return int(low)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``deliveries`` to the commands."""
    parser = commands.add_parser("deliveries", help="list deliveries by status (default: the dead ones)")
    parser.add_argument("--status", default=Status.DEAD,
                         choices=[Status.SCHEDULED, Status.PENDING, Status.SENDING, Status.SENT, Status.FAILED,
                                  Status.DEAD, Status.SKIPPED],
                         help="which deliveries (default: dead)")
    parser.add_argument("--limit", type=int, default=50, help="at most this many, oldest first (default: 50)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace, session: Session) -> int:
    """Print the deliveries of one status, one a line (or one JSON object a line)."""
    rows = listing(session, statuses=[args.status], limit=args.limit)
    if not args.json:
        print(f"{args.status} deliveries (--status for others), oldest first: "
              f"id, transition, channel, to, attempts, error")
    for d in rows:
        fields = {"id": d.id, "transition": d.transition_id, "channel": d.channel, "to": d.address,
                  "attempts": d.attempts, "error": d.last_error}
        print(json.dumps(fields) if args.json else
              f"{d.id}\t{d.transition_id}\t{d.channel}\t{d.address}\t{d.attempts}\t{d.last_error or ''}")
    return 0
