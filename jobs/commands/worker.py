"""``tidings worker``: start the supervisor of the worker processes (:mod:`jobs.worker`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from ..errors import ConfigurationError
from ..runtime import current
from ..worker import logs
from ..worker.supervisor import Supervisor

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def run(args: argparse.Namespace) -> int:
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
        logging.getLogger(__name__).info("Settings: %s", ", ".join(f"{k}={v}" for k, v in settings.masked().items()))
        try:
            return supervisor.run()
        finally:  # on the way out: a late SIGTERM must not turn the exit code into 143
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
