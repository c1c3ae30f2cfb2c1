"""Operator commands: ``tidings status | explain | graph | deliveries | resend | sweep``.

(``python -m jobs`` is the same.) Configuration comes from the ``TIDINGS_*`` variables, as for
the workers. Exit codes: 0 done; 1 a threshold of ``status`` was passed, or ``resend`` named an id
that is not failed or dead; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence

from sqlalchemy import select

from . import actors, explain, graph, status, worker
from .delivery import reset_for_resend
from .delivery_log import Delivery, Status
from .errors import JobsError

__all__ = ["main", "main_exit"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one operator command; return the exit code."""
    parser = argparse.ArgumentParser(prog="tidings", description="Operate Tidings: backlog, timelines, re-sends.")
    parser.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                        help="application module to import first (models, notifiers)")
    parser.add_argument("--path", default=".", help="folder to import application modules from (default: .)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sweep", help="re-enqueue overdue transitions and deliveries once")
    health = commands.add_parser("status", help="backlog and failures; exits 1 past a threshold (a health check)")
    health.add_argument("--json", action="store_true")
    health.add_argument("--max-pending", type=int, metavar="N", help="fail if more deliveries are pending")
    health.add_argument("--max-age", type=float, metavar="SECONDS", help="fail if one waits longer")
    health.add_argument("--max-dead", type=int, metavar="N", help="fail if more deliveries are dead or failed")
    timeline = commands.add_parser("explain", help="the timeline of one record: transitions and who was told")
    timeline.add_argument("model", help="the model's name, e.g. Loan")
    timeline.add_argument("key", help="the record's primary key")
    timeline.add_argument("--json", action="store_true")
    drawing = commands.add_parser("graph", help="the declared workflows with the parties told on each transition")
    drawing.add_argument("--mermaid", action="store_true", help="a Mermaid stateDiagram instead of text")
    listing = commands.add_parser("deliveries", help="list deliveries by status")
    listing.add_argument("--status", default=Status.DEAD, choices=[Status.PENDING, Status.SENDING, Status.SENT,
                                                                 Status.FAILED, Status.DEAD, Status.SKIPPED])
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    resend = commands.add_parser("resend", help="send failed or dead deliveries again")
    resend.add_argument("ids", nargs="*", type=int, help="delivery ids (default: every one with --status)")
    resend.add_argument("--status", action="append", choices=[Status.FAILED, Status.DEAD])
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.path))
    for module in args.modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            print(f"error: cannot import {module!r} from {args.path!r}: {error}", file=sys.stderr)
            return 2
    try:
        return _run(args)
    except JobsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "graph":
        print(graph.graph(mermaid=args.mermaid))
        return 0
    if args.command == "sweep":
        found = actors.sweep()
        print(f"re-enqueued {len(found.transitions)} transitions and {len(found.deliveries)} deliveries")
        return 0
    with worker.runtime.session() as session:
        if args.command == "status":
            figures = status.status(session)
            print(json.dumps(figures, indent=2) if args.json else status.render(figures))
            return 1 if _past_thresholds(args, figures) else 0
        if args.command == "explain":
            entries = explain.explain(session, args.model, args.key)
            print(json.dumps(entries, indent=2) if args.json else explain.render(entries, args.model, args.key))
            return 0
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


def main_exit() -> None:
    """The ``tidings`` console script."""
    sys.exit(main())
