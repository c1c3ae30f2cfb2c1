"""``tidings deliveries``: list deliveries by status, oldest first."""

from __future__ import annotations

import argparse
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..delivery_log import Delivery, Status

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``deliveries`` to the commands."""
    listing = commands.add_parser("deliveries", help="list deliveries by status (default: the dead ones)")
    listing.add_argument("--status", default=Status.DEAD,
                         choices=[Status.SCHEDULED, Status.PENDING, Status.SENDING, Status.SENT, Status.FAILED,
                                  Status.DEAD, Status.SKIPPED],
                         help="which deliveries (default: dead)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many, oldest first (default: 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace, session: Session) -> int:
    """Print the deliveries of one status, one a line (or one JSON object a line)."""
    rows = session.scalars(select(Delivery).where(Delivery.status == args.status)
                           .order_by(Delivery.id).limit(args.limit))
    if not args.json:
        print(f"{args.status} deliveries (--status for others), oldest first: "
              f"id, transition, channel, to, attempts, error")
    for d in rows:
        fields = {"id": d.id, "transition": d.transition_id, "channel": d.channel, "to": d.address,
                  "attempts": d.attempts, "error": d.last_error}
        print(json.dumps(fields) if args.json else
              f"{d.id}\t{d.transition_id}\t{d.channel}\t{d.address}\t{d.attempts}\t{d.last_error or ''}")
    return 0
