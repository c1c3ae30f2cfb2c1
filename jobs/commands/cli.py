"""The ``tidings`` command: ``worker | status | explain | graph | deliveries | resend | refan | preview | check | sweep | webhooks | prune | suppress | console | demo``.

(``python -m jobs`` is the same.) Configuration comes from the ``TIDINGS_*`` variables, as for
the workers; options given on the command line win. Exit codes: 0 done; 1 a threshold of
``status`` was passed, ``resend`` or ``refan`` named an id that is not there, ``unsuppress`` an
address that is not suppressed, ``webhooks enable``
an endpoint that is not disabled, the database (or
the worker's broker) did not answer, or a worker process had to be killed at the shutdown
deadline; 2 bad arguments, an application module that does not import, a setting that is
invalid, a database without Tidings' tables, or a worker with no notifier or refused credentials.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import sys
from collections.abc import Sequence

from dramatiq.brokers.stub import StubBroker
from sqlalchemy.exc import SQLAlchemyError

from .. import actors, inprocess, notifier_modules, preflight
from ..errors import ConfigurationError, JobsError
from ..runtime import current
from . import check, console, deliveries, demo, explain, graph, health, preview, prune, refan, resend, suppressions, webhooks, worker

__all__ = ["main", "main_exit"]

_STUB_WAIT = 30.0  # seconds a command on the StubBroker waits for what it enqueued (retries included)

def main(argv: Sequence[str] | None = None) -> int:
    """Run one operator command; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "worker":
        return worker.run(args)
    sys.path.insert(0, os.path.abspath(args.path))
    if args.command == "demo":
        return demo.run(args)
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


def _parser() -> argparse.ArgumentParser:
    """The command line: the global options and one sub-command per module of this package."""
    parser = argparse.ArgumentParser(
        prog="tidings", description="Run and operate Tidings: workers, backlog, timelines, re-sends.",
        epilog="Settings come from the TIDINGS_* variables (TIDINGS_NOTIFIERS: the modules declaring your notifiers). "
               "Exit codes: 0 done; 1 a status threshold passed, resend or refan named an id that is not there, the "
               "database did not answer, or a worker process had to be killed at the shutdown deadline; 2 bad "
               "arguments or settings, a module that does not import, or a database without Tidings' tables.")
    parser.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                        help="application module to import first (models, notifiers)")
    parser.add_argument("--path", default=".", help="folder to import application modules from (default: .)")
    parser.add_argument("--version", action="version", version=f"tidings {importlib.metadata.version('tidings')}")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser("sweep", help="re-enqueue overdue transitions and deliveries once")
    sweep.add_argument("--json", action="store_true", help="the ids re-enqueued, as JSON")
    health.add_parser(commands)
    timeline = commands.add_parser("explain", help="the timeline of one record: transitions and who was told")
    timeline.add_argument("model", help="the model's name, e.g. Loan")
    timeline.add_argument("key", help="the record's primary key")
    timeline.add_argument("--json", action="store_true")
    drawing = commands.add_parser("graph", help="the declared workflows with the parties told on each transition")
    drawing.add_argument("--mermaid", action="store_true", help="a Mermaid stateDiagram instead of text")
    deliveries.add_parser(commands)
    resend.add_parser(commands)
    refan.add_command(commands)
    preview.add_parser(commands)
    check.add_parser(commands)
    webhooks.add_parser(commands)
    prune.add_parser(commands)
    suppressions.add_parser(commands)
    worker.add_parser(commands)
    demo.add_parser(commands)
    console.add_parser(commands)
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "check":
        return check.run(args)
    if args.command == "graph":
        print(graph.graph(mermaid=args.mermaid))
        return 0
    if args.command == "prune":
        return prune.run(args)
    if args.command == "console":
        return console.run(args)
    if args.command == "sweep":
        found = actors.sweep()
        print(json.dumps({"transitions": found.transitions, "deliveries": found.deliveries}) if args.json else
              f"re-enqueued {len(found.transitions)} transitions and {len(found.deliveries)} deliveries")
        _run_here_on_stub(args)
        return 0
    if args.command in ("refan", "resend"):
        with current().session() as session:
            code = (refan.run(args, session, actors.deliver_each.send) if args.command == "refan" else
                    resend.run(args, session, actors.deliver.send))
        _run_here_on_stub(args)
        return code
    with current().session() as session:
        if args.command == "status":
            return health.run(args, session)
        if args.command == "preview":
            return preview.run(args, session)
        if args.command == "explain":
            entries = explain.explain(session, args.model, args.key)
            print(json.dumps(entries, indent=2) if args.json else explain.render(entries, args.model, args.key))
            return 0
        if args.command == "webhooks":
            return webhooks.run(args, session)
        if args.command in suppressions.COMMANDS:
            return suppressions.run(args, session)
        return deliveries.run(args, session)


def _run_here_on_stub(args: argparse.Namespace) -> None:
    """On the StubBroker built from ``broker_url=stub``, run here what a command enqueued: it would end with this process.

    With a real broker the workers take it, as they take every message; a StubBroker the caller
    passed to ``jobs.configure`` (a test's) keeps it for the caller's ``drain()``.
    """
    broker = actors.deliver.broker
    if (not isinstance(broker, StubBroker) or broker not in sys.modules["jobs"]._built
            or not any(queue.unfinished_tasks for queue in broker.queues.values())):
        return
    note = sys.stderr if args.json else sys.stdout
    try:
        inprocess.drain(broker, timeout=_STUB_WAIT)
    except TimeoutError:
        print(f"note: broker_url=stub: what is still waiting for a retry after {_STUB_WAIT:g} s is left to the "
              "sweeper of the next process on this database (set TIDINGS_BROKER_URL to hand it to workers).",
              file=note)
        return
    print("delivered in this process: broker_url=stub has no workers to take the messages (set TIDINGS_BROKER_URL "
          "to hand them to workers).", file=note)


def main_exit() -> None:
    """The ``tidings`` console script (and ``python -m jobs``).

    Output to a pipe whose reader has gone (``tidings status | head -1``) ends the command
    quietly, with exit 0 as for ``head`` itself: no BrokenPipeError traceback.
    """
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the interpreter's last flush is quiet too
        code = 0
    sys.exit(code)
