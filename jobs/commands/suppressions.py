"""``tidings suppress | unsuppress | suppressions``: the suppression list, by hand or from a bounce on stdin."""

from __future__ import annotations

import argparse
import json
import sys

from notifiers import REASONS, NotifierError, record_dsn, suppress, suppressed, unsuppress
from sqlalchemy.orm import Session

__all__ = ["COMMANDS", "add_parser", "run"]

COMMANDS = ("suppress", "unsuppress", "suppressions")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``suppress ADDRESS --reason R``, ``suppress --dsn``, ``unsuppress ADDRESS`` and ``suppressions``."""
    adding = commands.add_parser("suppress", help="stop sending to an address (or read a bounce report from stdin)")
    adding.add_argument("address", nargs="?", help="the address to suppress")
    adding.add_argument("--reason", choices=sorted(REASONS), default="manual",
                        help="why (default: manual); all but 'unsubscribed' suppress required notifications too")
    adding.add_argument("--detail", default="", help="a note kept with it, e.g. the server's reply")
    adding.add_argument("--dsn", action="store_true",
                        help="read a delivery status notification (RFC 3464) from stdin; suppress its hard bounces")
    removing = commands.add_parser("unsuppress", help="send to a suppressed address again")
    removing.add_argument("address", help="the address, as `tidings suppressions` shows it (any case)")
    listing = commands.add_parser("suppressions", help="the suppressed addresses, the oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    for parser in (adding, removing, listing):
        parser.add_argument("--channel", default=None if parser is listing else "email",
                            help="the channel (default: email; for the list, every channel)")


def run(args: argparse.Namespace, session: Session) -> int:
    """Change or show the list; exit 1 when ``unsuppress`` names an address that is not suppressed, 2 on bad input."""
    if args.command == "suppressions":
        return _list(args, session)
    if args.command == "unsuppress":
        removed = unsuppress(session, args.address, channel=args.channel)
        session.commit()
        if removed is None:
            print(f"{args.address!r} is not suppressed on channel {args.channel!r}; `tidings suppressions` lists those that are")
            return 1
        print(f"unsuppressed {removed.address} ({removed.channel}), {removed.describe()}")
        return 0
    if args.dsn == (args.address is not None):
        print("error: give an ADDRESS to suppress, or --dsn to read a bounce report from stdin", file=sys.stderr)
        return 2
    try:
        rows = (record_dsn(session, sys.stdin.buffer.read()) if args.dsn else
                [suppress(session, args.address, args.reason, channel=args.channel, detail=args.detail)])
    except NotifierError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    session.commit()
    for row in rows:
        print(f"suppressed {row.address} ({row.channel}): {row.describe()}")
    if not rows:
        print("the report names no hard bounce; nothing suppressed")
    return 0


def _list(args: argparse.Namespace, session: Session) -> int:
    rows = suppressed(session, channel=args.channel)
    if not args.json:
        print(f"{len(rows)} suppressed address(es): address, channel, reason, since, detail")
    for row in rows:
        fields = {"address": row.address, "channel": row.channel, "reason": row.reason,
                  "since": row.since.isoformat(), "detail": row.detail}
        print(json.dumps(fields) if args.json else "\t".join(fields.values()))
    return 0
