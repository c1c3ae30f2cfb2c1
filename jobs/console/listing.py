"""The deliveries page: filters (status, notifier, channel, time) and keyset paging on the id.

The query is ``tidings deliveries``' own (:func:`jobs.commands.deliveries.listing`); the page
never counts or skips rows (no OFFSET): "older" is the rows before the last id shown, "newer"
the rows after the first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..commands.deliveries import listing
from ..commands.resend import parse_time
from ..delivery_log import Delivery, Status
from ..errors import ConfigurationError
from .http import Request

__all__ = ["PAGE", "STATUSES", "context"]

PAGE = 50
STATUSES = (Status.SCHEDULED, Status.PENDING, Status.SENDING, Status.SENT, Status.FAILED, Status.DEAD,
            Status.SKIPPED, Status.DIGEST)
_FILTERS = ("status", "notifier", "channel", "since", "until")


def _cursor(request: Request, name: str) -> int | None:
    """The id a page starts past (``before``, ``after``).

    Raises:
        ConfigurationError: the value is not a whole number.
    """
    text = request.arg(name)
    if text and not text.isdigit():
        raise ConfigurationError(f"{name}={text!r} is not a delivery id: give a whole number, as the "
                                 "'older' and 'newer' links do.")
    return int(text) if text else None


def _statuses(request: Request, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The statuses asked for.

    Raises:
        ConfigurationError: one the page does not show, named with those it does.
    """
    asked = tuple(request.query.get("status", []))
    unknown = [s for s in asked if s not in allowed]
    if unknown:
        raise ConfigurationError(f"Unknown status {unknown[0]!r}: this page shows {', '.join(allowed)}.")
    return asked


def context(session: Session, request: Request, *, statuses: tuple[str, ...] = (), page: int = PAGE) -> dict[str, Any]:
    """One page of deliveries for the request's filters (``statuses``: those the page is limited to, if any)."""
    filters = {name: request.arg(name) for name in _FILTERS}
    problem = None
    try:
        chosen = _statuses(request, statuses or STATUSES)
        since = parse_time(filters["since"]) if filters["since"] else None
        until = parse_time(filters["until"]) if filters["until"] else None
        before, after = _cursor(request, "before"), _cursor(request, "after")
    except ConfigurationError as error:  # a hand-edited address: say what is wrong, show the unfiltered page
        problem, chosen, since, until, before, after = str(error), (), None, None, None, None
    rows = listing(session, statuses=chosen or statuses, notifier=filters["notifier"] or None,
                   channel=filters["channel"] or None, since=since, until=until, before=before, after=after,
                   newest_first=True, limit=page + 1)
    more = len(rows) > page  # one row past the page says whether there is a next one
    if after is not None:
        rows = rows[-page:] if more else rows
    else:
        rows = rows[:page]
    kept = [(name, value) for name, value in filters.items() if value and name != "status"]
    kept += [("status", s) for s in chosen]
    return {"rows": [_row(d) for d in rows], "given": filters, "chosen": chosen, "statuses": statuses or STATUSES,
            "problem": problem, "kept": kept,
            "older": rows[-1].id if rows and (more or after is not None) else None,
            "newer": rows[0].id if rows and (before is not None or (after is not None and more)) else None}


def _row(d: Delivery) -> dict[str, Any]:
    """What a list shows of a delivery: never its message (the body is rendered on the timeline, for operators)."""
    return {"id": d.id, "transition": d.transition_id, "status": d.status, "notifier": d.notifier, "party": d.party,
            "channel": d.channel, "to": d.address, "attempts": d.attempts, "error": d.last_error,
            "updated": d.updated_at, "sent": d.sent_at, "due": d.due_at}
