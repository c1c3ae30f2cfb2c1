"""The baseline worker: a bare Dramatiq actor sending the same mail with smtplib.

One SMTP connection per worker thread, reused, as a careful hand-written worker would do.
``bare_send`` does the work Tidings' SMTP channel does for a plain ASCII mail: it writes the
message's bytes (the same header fields, CRLF line endings) and hands them to ``sendmail``.
``bare_send_mime`` builds the message through ``EmailMessage`` and sends it with
``send_message``, as most hand-written workers do; it is reported beside it.

Loaded by ``dramatiq bench.bare_actor:broker`` from ``bench/throughput.py``. Its broker is its
own, not Dramatiq's global one, so importing it in the bench's process leaves ``jobs`` alone.
"""

from __future__ import annotations

import os
import smtplib
import threading
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from .app import mail_text

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
_local = threading.local()
_QUEUE = os.environ.get("BENCH_QUEUE", "bench_bare")
_FROM = "tidings@localhost"


def _connection() -> smtplib.SMTP:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = smtplib.SMTP(os.environ["BENCH_SMTP_HOST"],
                                                      int(os.environ["BENCH_SMTP_PORT"]), timeout=10)
    return connection


@dramatiq.actor(broker=broker, queue_name=_QUEUE, max_retries=0)
def bare_send(number: int) -> None:
    """Send mail ``number`` to the bench's SMTP sink, written as bytes (as Tidings writes a plain mail)."""
    subject, text = mail_text(number)
    to = f"w{number}@example.com"
    data = (f"Subject: {subject}\r\nFrom: Tidings <{_FROM}>\r\nTo: {to}\r\n"
            f"Date: {format_datetime(datetime.now(timezone.utc))}\r\nMessage-ID: <bare{number}@localhost>\r\n"
            f'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: 7bit\r\n\r\n{text}\r\n").encode("ascii")
    send(_connection(), to, data)


@dramatiq.actor(broker=broker, queue_name=f"{_QUEUE}_mime", max_retries=0)
def bare_send_mime(number: int) -> None:
    """Send mail ``number`` built through ``EmailMessage`` (the header registry, the generator)."""
    subject, text = mail_text(number)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = f"Tidings <{_FROM}>"
    message["To"] = f"w{number}@example.com"
    message.set_content(text)
    _connection().send_message(message)


def send(connection: smtplib.SMTP, to: str, data: bytes) -> None:
    """Hand the message to the server (its own function, so the profile run can time it)."""
    connection.sendmail(_FROM, [to], data)
