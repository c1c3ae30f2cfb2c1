"""The ``tidings`` command: ``worker | status | explain | graph | deliveries | resend | refan | preview | check | sweep | demo``.

(``python -m jobs`` is the same.) Configuration comes from the ``TIDINGS_*`` variables, as for
the workers; options given on the command line win. Exit codes: 0 done; 1 a threshold of
``status`` was passed, ``resend`` or ``refan`` named an id that is not there, the database (or
the worker's broker) did not answer, or a worker process had to be killed at the shutdown
deadline; 2 bad arguments, an application module that does not import, a setting that is
invalid, a database without Tidings' tables, or a worker with no notifier or refused credentials.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from . import actors, check, explain, graph, notifier_modules, preflight, preview, refan, resend, status
from .delivery_log import Delivery, Status
from .errors import ConfigurationError, DeliveryNotFound, JobsError
from .runtime import current
from .worker import logs
from .worker.supervisor import Supervisor

__all__ = ["main", "main_exit"]

_PROGRESS_EVERY = 500  # resend: deliveries per transaction, and one progress line each past the first


def main(argv: Sequence[str] | None = None) -> int:
    """Run one operator command; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="tidings", description="Run and operate Tidings: workers, backlog, timelines, re-sends.",
        epilog="Settings come from the TIDINGS_* variables (TIDINGS_NOTIFIERS: the modules declaring your notifiers). "
               "Exit codes: 0 done; 1 a status threshold passed, resend or refan named an id that is not there, the "
               "database did not answer, or a worker process had to be killed at the shutdown deadline; 2 bad "
               "arguments or settings, a module that does not import, or a database without Tidings' tables.")
    parser.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                        help="application module to import first (models, notifiers)")
    parser.add_argument("--path", default=".", help="folder to import application modules from (default: .)")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser("sweep", help="re-enqueue overdue transitions and deliveries once")
    sweep.add_argument("--json", action="store_true", help="the ids re-enqueued, as JSON")
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
    listing = commands.add_parser("deliveries", help="list deliveries by status (default: the dead ones)")
    listing.add_argument("--status", default=Status.DEAD, choices=[Status.PENDING, Status.SENDING, Status.SENT,
                                                                 Status.FAILED, Status.DEAD, Status.SKIPPED],
                         help="which deliveries (default: dead)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many, oldest first (default: 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    again = commands.add_parser("resend", help="send failed or dead deliveries again, selected by id and filters")
    again.add_argument("ids", nargs="*", type=int, help="delivery ids (default: every one matching the filters)")
    again.add_argument("--status", action="append", choices=[Status.FAILED, Status.DEAD],
                       help="only this status (repeatable; default: failed and dead)")
    again.add_argument("--notifier", help="only this notifier: LoanNotifier, LoanNotifier.accepted or its full name")
    again.add_argument("--channel", help="only this channel, e.g. email")
    again.add_argument("--since", metavar="TIME", help="failed at or after TIME: ISO 8601 (UTC) or an age (2h)")
    again.add_argument("--until", metavar="TIME", help="failed before TIME: ISO 8601 (UTC) or an age (30m)")
    again.add_argument("--dry-run", action="store_true", help="list what would be re-sent, change nothing")
    again.add_argument("--json", action="store_true", help="the result as JSON")
    refan.add_command(commands)
    preview.add_parser(commands)
    check.add_parser(commands)
    _add_worker(commands)
    demo = commands.add_parser("demo", help="the lending example on SQLite and an in-process worker (make demo)")
    demo.add_argument("--keep", metavar="DIR", help="keep the database and .eml files in DIR (default: a temp dir)")
    demo.add_argument("--path", default=argparse.SUPPRESS, help="folder holding examples/ (default: .)")
    args = parser.parse_args(argv)
    if args.command == "worker":
        return _worker(args)
    sys.path.insert(0, os.path.abspath(args.path))
    if args.command == "demo":
        return _demo(args)
    for module in args.modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            print(f"error: cannot import {module!r} from {args.path!r}: {error}", file=sys.stderr)
            return 2
    try:
        notifier_modules.load()  # TIDINGS_NOTIFIERS: the same notifiers as the workers
        return _run(args)
    except SQLAlchemyError as error:
        problem = preflight.database_problem(current().engine)
        if problem is None:
            raise
        print(f"error: {problem[1]}", file=sys.stderr)
        return problem[0]
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except JobsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "check":
        return check.run(args)
    if args.command == "graph":
        print(graph.graph(mermaid=args.mermaid))
        return 0
    if args.command == "sweep":
        found = actors.sweep()
        print(json.dumps({"transitions": found.transitions, "deliveries": found.deliveries}) if args.json else
              f"re-enqueued {len(found.transitions)} transitions and {len(found.deliveries)} deliveries")
        return 0
    with current().session() as session:
        if args.command == "status":
            figures = status.status(session)
            print(json.dumps(figures, indent=2) if args.json else status.render(figures))
            return 1 if _past_thresholds(args, figures) else 0
        if args.command == "preview":
            return preview.run(args, session)
        if args.command == "explain":
            entries = explain.explain(session, args.model, args.key)
            print(json.dumps(entries, indent=2) if args.json else explain.render(entries, args.model, args.key))
            return 0
        if args.command == "deliveries":
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
        if args.command == "refan":
            return refan.run(args, session, actors.deliver_each.send)
        return _resend(args, session)


def _resend(args: argparse.Namespace, session: Session) -> int:
    since = resend.parse_time(args.since) if args.since else None
    until = resend.parse_time(args.until) if args.until else None
    ids = resend.select_for_resend(session, ids=args.ids, statuses=args.status or (), notifier=args.notifier,
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
    for done in resend.resend(session, ids, actors.deliver.send, batch=_PROGRESS_EVERY, statuses=args.status or ()):
        if len(ids) > _PROGRESS_EVERY:  # long runs: one progress line per batch, on stderr
            print(f"re-sent {done}/{len(ids)}", file=sys.stderr, flush=True)
    print(json.dumps({"resent": done}) if args.json else f"re-sent {done} deliveries")
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.status, args.notifier, args.channel, args.since, args.until))


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


def _add_worker(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "worker", help="run worker processes under a supervisor: recycling, graceful stop, metrics",
        description="Start worker processes for the application MODULEs (models, notifiers) and the modules "
                    "TIDINGS_NOTIFIERS names. Each runs a Dramatiq worker with the sweeper inside; a process past "
                    "its memory or message limit is replaced after finishing its messages, one that dies is replaced "
                    "after a backoff. SIGTERM or SIGINT: every "
                    "process finishes the messages in hand within --shutdown-timeout, then the command exits 0. "
                    "Defaults come from the TIDINGS_* variables.",
        epilog="Exit codes: 0 stopped on SIGTERM/SIGINT with every message finished; 1 a process had to be killed "
               "at the deadline (its messages are redelivered), or the database or broker did not answer at start; "
               "2 bad option or setting, the stub broker, a module that does not import, no notifier registered "
               "(pass MODULEs or set TIDINGS_NOTIFIERS), no Tidings tables, or broker credentials refused.")
    run.add_argument("app_modules", nargs="*", metavar="MODULE", help="application module to import in each process")
    run.add_argument("--path", default=argparse.SUPPRESS, help="folder to import the MODULEs from (default: .)")
    run.add_argument("--processes", "-p", type=int, metavar="N",
                     help="worker processes (TIDINGS_WORKER_PROCESSES; default: one per CPU)")
    run.add_argument("--threads", "-t", type=int, metavar="N", help="threads per process (TIDINGS_WORKER_THREADS; 8)")
    run.add_argument("--queues", "-Q", nargs="+", default=[], metavar="QUEUE",
                     help="consume only these queues (default: every declared queue)")
    run.add_argument("--shutdown-timeout", type=float, metavar="SECONDS",
                     help="time to finish the messages in hand on stop (TIDINGS_SHUTDOWN_TIMEOUT; 30)")
    run.add_argument("--max-memory", type=int, metavar="MB",
                     help="replace a process whose memory (RSS) passes MB (TIDINGS_MAX_MEMORY_MB; 0: never)")
    run.add_argument("--max-messages", type=int, metavar="N",
                     help="replace a process after N messages (TIDINGS_MAX_MESSAGES; 0: never)")
    run.add_argument("--metrics-port", type=int, metavar="PORT",
                     help="serve Prometheus metrics on PORT (TIDINGS_METRICS_PORT; 0: off)")
    run.add_argument("--metrics-host", metavar="HOST", help="address to serve metrics on (TIDINGS_METRICS_HOST)")
    run.add_argument("--log-format", choices=["text", "json"], help="log lines as text or JSON (TIDINGS_LOG_FORMAT)")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="TIDINGS_LOG_LEVEL; INFO")


def _worker(args: argparse.Namespace) -> int:
    given = {"worker_processes": args.processes, "worker_threads": args.threads,
             "shutdown_timeout": args.shutdown_timeout, "max_memory_mb": args.max_memory,
             "max_messages": args.max_messages, "metrics_port": args.metrics_port, "metrics_host": args.metrics_host,
             "log_format": args.log_format, "log_level": args.log_level}
    try:
        settings = current().settings.replace(**{k: v for k, v in given.items() if v is not None})
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if settings.broker_url.startswith("stub") and not settings.app_broker:
        print("error: tidings worker needs a shared broker: set TIDINGS_BROKER_URL to redis://... or amqp://..., or "
              "TIDINGS_APP_BROKER to your own (the stub broker reaches only workers in the same process).",
              file=sys.stderr)
        return 2
    logs.setup(settings.log_format, settings.log_level)  # an application entry point: it may configure logging
    try:
        supervisor = Supervisor([*args.modules, *args.app_modules], processes=settings.worker_processes or os.cpu_count() or 1,
                                threads=settings.worker_threads, queues=args.queues, paths=[args.path],
                                shutdown_timeout=settings.shutdown_timeout, max_memory_mb=settings.max_memory_mb,
                                max_messages=settings.max_messages, metrics_port=settings.metrics_port,
                                metrics_host=settings.metrics_host, log_format=settings.log_format,
                                log_level=settings.log_level)
        problem = supervisor.check()  # said once, in one line, by a process importing what the workers will
        if problem:
            return problem
        logging.getLogger("jobs.cli").info("Settings: %s", ", ".join(f"{k}={v}" for k, v in settings.masked().items()))
        try:
            return supervisor.run()
        finally:  # on the way out: a late SIGTERM must not turn the exit code into 143
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    try:
        demo = importlib.import_module("examples.lending.demo")
    except ImportError as error:
        print(f"error: tidings demo runs examples/lending from a Tidings checkout; run it from the repository root "
              f"or pass --path to it ({error}).", file=sys.stderr)
        return 2
    if args.keep:
        folder = Path(args.keep)
        folder.mkdir(parents=True, exist_ok=True)
        return int(demo.main(folder))
    with tempfile.TemporaryDirectory(prefix="tidings-demo-") as tmp:
        return int(demo.main(Path(tmp)))


def main_exit() -> None:
    """The ``tidings`` console script."""
    sys.exit(main())
