"""``tidings webhooks``: the webhook endpoints disabled after a 410 Gone, and re-enabling one."""

from __future__ import annotations

import argparse
import json

from notifiers import disabled_endpoints, enable_endpoint
from sqlalchemy.orm import Session

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``webhooks list`` and ``webhooks enable <url>`` to the commands."""
    webhooks = commands.add_parser("webhooks", help="webhook endpoints disabled after answering 410 Gone")
    actions = webhooks.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the disabled endpoints, the longest disabled first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    enabling = actions.add_parser("enable", help="send to a disabled endpoint again")
    enabling.add_argument("url", help="the endpoint's URL, as configured or as `webhooks list` shows it")


def run(args: argparse.Namespace, session: Session) -> int:
    """List the disabled endpoints, or re-enable one (exit 1 when ``url`` is not disabled)."""
    if args.action == "enable":
        enabled = enable_endpoint(session, args.url)
        session.commit()
        if not enabled:
            print(f"no disabled endpoint {args.url!r}; `tidings webhooks list` shows those there are")
            return 1
        for row in enabled:
            print(f"enabled {row.shown} ({row.channel}), disabled since {row.disabled_at:%Y-%m-%d %H:%M:%S}")
        return 0
    rows = disabled_endpoints(session)
    if not args.json:
        print(f"{len(rows)} disabled webhook endpoint(s): url, channel, answered, since")
    for row in rows:
        fields = {"url": row.shown, "channel": row.channel, "status": row.status,
                  "disabled_at": row.disabled_at.isoformat()}
        print(json.dumps(fields) if args.json else f"{row.shown}\t{row.channel}\t{row.status}\t{fields['disabled_at']}")
    return 0
