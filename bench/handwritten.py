"""The hand-written alternative: what users of SQLAlchemy and Dramatiq write today to mail on a state change.

The request assigns the state column, notes ``(row id, party)`` in ``session.info`` and commits;
a session ``after_commit`` hook then calls ``notify.send(row_id, party)`` once per party noted,
inside ``commit()``. The actor opens a session, loads the row and the party's members, builds an
``EmailMessage`` for each and sends it with smtplib over a connection kept per thread.

Loaded by ``dramatiq bench.handwritten:broker`` (``bench/versus.py``). Its broker is its own,
not Dramatiq's global one, so importing it in the bench's process leaves ``jobs`` alone.
"""

from __future__ import annotations

import os
import smtplib
import threading
from email.message import EmailMessage
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .app import HandTask, mail_text

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
_local = threading.local()
_QUEUE = os.environ.get("BENCH_QUEUE", "bench_hand")
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


class HandSession(Session):
    """The application's session class, with the after-commit hook below listening on it."""


@event.listens_for(HandSession, "after_commit")
def _after_commit(session: Session) -> None:
    """Send one message per (row, party) the request noted: inside ``commit()``, as the seed pattern does."""
    for row_id, party in session.info.pop("notify", ()):
        notify.send(row_id, party)


def finish(session: Session, task: HandTask) -> None:
    """The request's change: the state, and the party to tell once it is committed."""
    task.state = "done"
    session.info.setdefault("notify", []).append((task.id, "watchers"))


def _engine() -> Engine:
    url = os.environ["BENCH_DATABASE_URL"]
    with _lock:
        if url not in _engines:
            _engines[url] = create_engine(url, pool_size=10)
        return _engines[url]


def _connection() -> smtplib.SMTP:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = smtplib.SMTP(os.environ["BENCH_SMTP_HOST"],
                                                      int(os.environ["BENCH_SMTP_PORT"]), timeout=10)
    return connection


@dramatiq.actor(broker=broker, queue_name=_QUEUE, max_retries=0)
def notify(row_id: int, party: str) -> None:
    """Load the row and the party's members; mail each one an ``EmailMessage``."""
    with Session(_engine()) as session:
        task = session.get(HandTask, row_id)
        if task is None:
            return
        members: list[Any] = getattr(task, party)
        subject, text = mail_text(task.id)
        for member in members:
            message = EmailMessage()
            message["Subject"] = subject
            message["From"] = "Tidings <tidings@localhost>"
            message["To"] = member.email
            message.set_content(text)
            _connection().send_message(message)
