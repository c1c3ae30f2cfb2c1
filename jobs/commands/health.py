"""``tidings status``: the backlog and failures, exiting 1 past a threshold (a health check)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy.orm import Session

from .. import runtime, status

__all__ = ["add_parser", "render", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status`` to the commands."""
    health = commands.add_parser("status", help="backlog and failures; exits 1 past a threshold (a health check)")
    health.add_argument("--json", action="store_true")
    health.add_argument("--max-pending", type=int, metavar="N", help="fail if more than N deliveries are pending (those scheduled for later are not)")
    health.add_argument("--max-age", type=float, metavar="SECONDS",
                        help="fail if the oldest undelivered (a pending or sending delivery, a transition not fanned "
                             "out) waits longer (those scheduled for later are not counted)")
    health.add_argument("--max-dead", type=int, metavar="N",
                        help="fail if more than N deliveries are dead or failed, the two counted together (every one "
                             "in the table, until re-sent)")


def run(args: argparse.Namespace, session: Session) -> int:
    """Print the figures; 1 if a threshold is passed, else 0."""
    figures = status.status(session, grace_seconds=runtime.current().settings.sweep_after_seconds)
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 1 if _past_thresholds(args, figures) else 0


def _past_thresholds(args: argparse.Namespace, figures: dict[str, object]) -> bool:
    counts: dict[str, int] = figures["deliveries"]  # type: ignore[assignment]
    passed = []
    if args.max_pending is not None and counts["pending"] > args.max_pending:
        passed.append(f"{counts['pending']} pending > {args.max_pending}")
    if args.max_age is not None and float(figures["oldest_undelivered_seconds"]) > args.max_age:  # type: ignore[arg-type]
        passed.append(f"oldest undelivered {figures['oldest_undelivered_seconds']} s > {args.max_age} s")
    if args.max_dead is not None and counts["dead"] + counts["failed"] > args.max_dead:
        passed.append(f"{counts['dead'] + counts['failed']} dead or failed > {args.max_dead}")
    for line in passed:
        print(f"unhealthy: {line}", file=sys.stderr)
    return bool(passed)


def render(figures: dict[str, Any]) -> str:
    """The figures as a few lines of text."""
    counts = ", ".join(f"{name} {count}" for name, count in figures["deliveries"].items())
    lines = [f"deliveries: {counts}",
             f"transitions not fanned out: {figures['transitions_not_fanned_out']}"
             + (f" ({figures['transitions_held']} held back)" if figures["transitions_held"] else ""),
             *(f"  held: {held['count']} x {held['reason']}" for held in figures["held_by_reason"]),
             f"oldest undelivered: {figures['oldest_undelivered_seconds']} s",
             "held for a time: {scheduled} scheduled, {due} due, {overdue} overdue".format(**figures["timed"]),
             "timers: scheduled {scheduled}, due {due}, overdue {overdue}".format(**figures["timers"]),
             *(["digests: {open} open, {due} due, {overdue} overdue, {events} events held".format(**figures["digests"])]
               if any(figures["digests"].values()) else []),
             f"sent per minute (last 5 min): {figures['sent_per_minute_last_5']}"]
    for failure in figures["failures_by_reason"]:
        lines.append(f"  {failure['count']} x {failure['reason']}")
    lines += [f"provider {p['provider']}: sent {p['sent']}, failed {p['failed']}, dead {p['dead']}, "
              f"retrying {p['retrying']}" for p in figures.get("by_provider", [])]
    return "\n".join(lines)
