"""Operator commands: ``python -m jobs sweep | deliveries | resend``.

Configuration comes from the ``TIDINGS_*`` variables, as for the workers. Exit codes: 0 done,
1 nothing matched (``resend`` with ids that are not failed or dead), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from sqlalchemy import select

from . import actors, worker
from .delivery import reset_for_resend
from .delivery_log import Delivery, Status
from .errors import JobsError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one operator command; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                        help="application module to import first (models, notifiers)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sweep", help="re-enqueue overdue transitions and deliveries once")
    listing = commands.add_parser("deliveries", help="list deliveries by status")
    listing.add_argument("--status", default=Status.DEAD, choices=[Status.PENDING, Status.SENDING, Status.SENT,
                                                                 Status.FAILED, Status.DEAD, Status.SKIPPED])
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    resend = commands.add_parser("resend", help="send failed or dead deliveries again")
    resend.add_argument("ids", nargs="*", type=int, help="delivery ids (default: every one with --status)")
    resend.add_argument("--status", action="append", choices=[Status.FAILED, Status.DEAD])
    args = parser.parse_args(argv)
    for module in args.modules:
        importlib.import_module(module)
    try:
        return _run(args)
    except JobsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "sweep":
        found = actors.sweep()
        print(f"re-enqueued {len(found.transitions)} transitions and {len(found.deliveries)} deliveries")
        return 0
    with worker.runtime.session() as session:
        if args.command == "deliveries":
            rows = session.scalars(select(Delivery).where(Delivery.status == args.status)
                                   .order_by(Delivery.id).limit(args.limit))
            for d in rows:
                fields = {"id": d.id, "transition": d.transition_id, "channel": d.channel, "to": d.address,
                          "attempts": d.attempts, "error": d.last_error}
                print(json.dumps(fields) if args.json else
                      f"{d.id}\t{d.transition_id}\t{d.channel}\t{d.address}\t{d.attempts}\t{d.last_error or ''}")
            return 0
        ids = reset_for_resend(session, ids=args.ids or None, statuses=tuple(args.status or ()))
    for delivery_id in ids:
        actors.deliver.send(delivery_id)
    print(f"re-sent {len(ids)} deliveries")
    return 0
