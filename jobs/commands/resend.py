"""Re-sending: select failed or dead deliveries by id, status, notifier, channel and time, and send them again."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session
from workflow import utcnow

from ..claims import reset_for_resend
from ..delivery_log import Delivery, Status
from ..errors import ConfigurationError, DeliveryNotFound

__all__ = ["add_parser", "add_window", "delivery_criteria", "parse_time", "resend", "run", "select_for_resend"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PROGRESS_EVERY = 500  # deliveries per transaction, and one progress line each past the first


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
    query = query.where(*delivery_criteria(notifier=notifier, channel=channel, since=since, until=until))
    return list(session.scalars(query))


def delivery_criteria(*, notifier: str | None = None, channel: str | None = None, since: dt.datetime | None = None,
                      until: dt.datetime | None = None, at: Any = Delivery.updated_at) -> list[ColumnElement[bool]]:
    """The WHERE clauses selecting deliveries by notifier, channel and time (``at``: when they last changed).

    ``notifier`` matches the recorded name, its class or its class and method, as for ``resend``;
    the console's deliveries list filters with the same clauses, on when they were written
    (``at=Delivery.created_at``, which has no index: the console bounds it by the ids, see docs/console.md).
    """
    found: list[ColumnElement[bool]] = []
    if notifier:
        found.append(or_(Delivery.notifier == notifier,
                         Delivery.notifier.endswith(f".{notifier}", autoescape=True),
                         Delivery.notifier.contains(f".{notifier}.", autoescape=True)))
    if channel:
        found.append(Delivery.channel == channel)
    if since is not None:
        found.append(at >= since)
    if until is not None:
        found.append(at < until)
    return found


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


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``resend`` to the commands."""
    again = commands.add_parser("resend", help="send failed or dead deliveries again, selected by id and filters")
    again.add_argument("ids", nargs="*", type=int, help="delivery ids (default: every one matching the filters)")
    again.add_argument("--status", action="append", choices=[Status.FAILED, Status.DEAD],
                       help="only this status (repeatable; default: failed and dead)")
    again.add_argument("--notifier", help="only this notifier: LoanNotifier, LoanNotifier.accepted or its full name")
    again.add_argument("--channel", help="only this channel, e.g. email")
    add_window(again, happened="failed", dry_run="list what would be re-sent, change nothing")


def add_window(parser: argparse.ArgumentParser, *, happened: str, dry_run: str) -> None:
    """``--since``, ``--until``, ``--dry-run`` and ``--json``, as ``resend`` and ``refan`` take them."""
    parser.add_argument("--since", metavar="TIME", help=f"{happened} at or after TIME: ISO 8601 (UTC) or an age (2h)")
    parser.add_argument("--until", metavar="TIME", help=f"{happened} before TIME: ISO 8601 (UTC) or an age (30m)")
    parser.add_argument("--dry-run", action="store_true", help=dry_run)
    parser.add_argument("--json", action="store_true", help="the result as JSON")


def run(args: argparse.Namespace, session: Session, send: Callable[[int], object]) -> int:
    """Re-send what the arguments select (or list it, with ``--dry-run``).

    Raises:
        DeliveryNotFound: an id given names no failed or dead delivery the filters select.
    """
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    ids = select_for_resend(session, ids=args.ids, statuses=args.status or (), notifier=args.notifier,
                                   channel=args.channel, since=since, until=until)
    missing = sorted(set(args.ids) - set(ids))
    if missing:
        raise DeliveryNotFound(f"No failed or dead delivery has id {', '.join(map(str, missing))}"
                               f"{' among those the filters select' if _filtered(args) else ''}.")
    if args.dry_run:
        print(json.dumps({"would_resend": ids}) if args.json else f"would re-send {len(ids)} deliveries: "
              + " ".join(map(str, ids)))
        return 0
    done = 0
    for done in resend(session, ids, send, batch=_PROGRESS_EVERY, statuses=args.status or ()):
        if len(ids) > _PROGRESS_EVERY:  # long runs: one progress line per batch, on stderr
            print(f"re-sent {done}/{len(ids)}", file=sys.stderr, flush=True)
    print(json.dumps({"resent": done}) if args.json else f"re-sent {done} deliveries")
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.status, args.notifier, args.channel, args.since, args.until))
