"""What a worker or a command checks before it starts: Tidings' tables (and columns) exist, the broker lets it in.

Each problem is one line naming the database or broker (password masked) and what to do, and an
exit code: 2 when retrying cannot help (no tables, credentials refused), 1 when it may (a
service that does not answer yet).
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError
from workflow import metadata

from .config import mask_url

__all__ = ["Problem", "broker_problem", "database_problem"]

_TABLES = ("tidings_transitions", "tidings_deliveries", "tidings_timers", "tidings_digests", "tidings_throttles",
           "tidings_suppressions")
_CREATE = ("create them with `alembic upgrade heads`, Tidings' version location jobs:migrations listed in "
           "version_locations (docs/operations.md, Schema changes), or in a test or demo with "
           "`import jobs, workflow; workflow.metadata.create_all(engine)`")

#: An exit code and the one line that says why.
Problem = tuple[int, str]


def database_problem(bind: Engine | Connection) -> Problem | None:
    """Why the database cannot serve Tidings (unreachable, or without its tables), or ``None``."""
    url = mask_url(str((bind.engine if isinstance(bind, Connection) else bind).url.render_as_string(False)))
    try:
        inspector: Any = inspect(bind)
        missing = [name for name in _TABLES if not inspector.has_table(name)]
        older = {name: sorted(set(metadata.tables[name].columns.keys())
                              - {column["name"] for column in inspector.get_columns(name)})
                 for name in _TABLES if name not in missing}
    except SQLAlchemyError as error:
        return 1, f"Cannot reach the database {url}: {_first_line(error)}"
    if missing:
        return 2, f"The database {url} has no table {', '.join(missing)}: {_CREATE}."
    lacking = [f"{table}.{column}" for table, columns in older.items() for column in columns]
    if lacking:
        return 2, (f"The database {url} lacks the columns {', '.join(lacking)} of this version of Tidings: add them "
                   f"with `alembic upgrade heads` (a database 0.1.0's create_all made: `alembic stamp tidings_0001` first; "
                   f"see Schema changes in docs/operations.md).")
    return None


def broker_problem(broker: dramatiq.Broker, url: str) -> Problem | None:
    """Why ``broker`` does not let us in (refused, unreachable, credentials), or ``None``."""
    shown = mask_url(url)
    try:
        _connect(broker)
    except Exception as error:  # each client has its own errors; the names tell which kind
        kind = type(error).__name__
        if "Auth" in kind or "AccessDenied" in kind or "WRONGPASS" in str(error) or "NOAUTH" in str(error):
            return 2, f"The broker {shown} refused the credentials ({kind}): check TIDINGS_BROKER_URL."
        return 1, f"Cannot connect to the broker {shown} ({kind}: {_first_line(error) or 'no answer'}): is it " \
                  f"running, and is TIDINGS_BROKER_URL right?"
    return None


def _connect(broker: dramatiq.Broker) -> None:
    client = getattr(broker, "client", None)
    if client is not None:  # Redis
        client.ping()
        return
    if hasattr(broker, "parameters"):  # RabbitMQ: opening the connection logs in
        import pika  # type: ignore[import-untyped]

        quiet = logging.getLogger("pika")  # it logs each failure five times, with a traceback: we say it once
        level, quiet.level = quiet.level, logging.CRITICAL + 1
        try:
            pika.BlockingConnection(broker.parameters).close()
        finally:
            quiet.setLevel(level)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else ""
