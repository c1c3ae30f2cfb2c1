"""The baseline worker: a bare Dramatiq actor sending the same mail with smtplib.

One SMTP connection per worker thread, reused, as a careful hand-written worker would do.
Loaded by ``dramatiq bench.bare_actor`` from ``bench/throughput.py``.
"""

from __future__ import annotations

import os
import smtplib
import threading
from email.message import EmailMessage

import dramatiq
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")))
_local = threading.local()


@dramatiq.actor(queue_name=os.environ.get("BENCH_QUEUE", "bench_bare"), max_retries=0)
def bare_send(number: int) -> None:
    """Send mail ``number`` to the bench's SMTP sink."""
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = smtplib.SMTP(os.environ["BENCH_SMTP_HOST"],
                                                      int(os.environ["BENCH_SMTP_PORT"]), timeout=10)
    message = EmailMessage()
    message["Subject"] = f"Task {number} finished"
    message["From"] = "Tidings <tidings@localhost>"
    message["To"] = f"w{number}@example.com"
    message.set_content(f"Hello, task {number} is finished.")
    connection.send_message(message)
