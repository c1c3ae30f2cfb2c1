"""The baseline worker: a bare Dramatiq actor sending the same mail with smtplib.

One SMTP connection per worker thread, reused, as a careful hand-written worker would do.
Loaded by ``dramatiq bench.bare_actor:broker`` from ``bench/throughput.py``. Its broker is its
own, not Dramatiq's global one, so importing it in the bench's process leaves ``jobs`` alone.
"""

from __future__ import annotations

import os
import smtplib
import threading
from email.message import EmailMessage

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from .app import mail_text

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
_local = threading.local()


@dramatiq.actor(broker=broker, queue_name=os.environ.get("BENCH_QUEUE", "bench_bare"), max_retries=0)
def bare_send(number: int) -> None:
    """Send mail ``number`` to the bench's SMTP sink."""
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = smtplib.SMTP(os.environ["BENCH_SMTP_HOST"],
                                                      int(os.environ["BENCH_SMTP_PORT"]), timeout=10)
    subject, text = mail_text(number)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Tidings <tidings@localhost>"
    message["To"] = f"w{number}@example.com"
    message.set_content(text)
    send(connection, message)


def send(connection: smtplib.SMTP, message: EmailMessage) -> None:
    """Hand the message to the server (its own function, so the profile run can time it)."""
    connection.send_message(message)
