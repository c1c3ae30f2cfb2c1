"""Structured logs: the ids of the message in hand on every record, a JSON formatter, and masking.

The library itself never configures logging (an application owns its handlers); only the
``tidings`` command, an application entry point, calls :func:`setup`. While a worker thread
processes a message, :class:`LogContext` remembers it, and :class:`ContextFilter` copies onto
each record logged from that thread: ``message_id``, ``actor``, and ``delivery_id`` (for
``tidings.deliver``) or ``transition_id`` (for ``tidings.fan_out``). A record that already
carries one of these (``extra=``) keeps its own. Log lines carry ids, statuses, channels and
addresses, never a message body; URL passwords are masked in every formatted line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from ..config import mask_url

__all__ = ["CONTEXT_FIELDS", "ContextFilter", "JSONFormatter", "LogContext", "TextFormatter", "setup"]

#: The record attributes the JSON formatter writes when present.
CONTEXT_FIELDS = ("message_id", "actor", "transition_id", "delivery_id", "channel", "status", "worker_pid")

# actor name -> the record attribute its first argument is
_ID_ARGUMENT = {"tidings.deliver": "delivery_id", "tidings.fan_out": "transition_id"}
_current = threading.local()


class LogContext(dramatiq.Middleware):
    """Remembers, per worker thread, which message is being processed (for :class:`ContextFilter`)."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Remember the message's id, actor and the delivery or transition id it names."""
        fields: dict[str, Any] = {"message_id": message.message_id, "actor": message.actor_name}
        name = _ID_ARGUMENT.get(message.actor_name)
        if name and message.args and isinstance(message.args[0], int):  # a batch's lines name their own
            fields[name] = message.args[0]
        _current.fields = fields

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        """Forget the message."""
        _current.fields = None

    after_skip_message = after_process_message


class ContextFilter(logging.Filter):
    """Adds the current message's ids to each record, unless the record carries its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields; never drops a record."""
        for name, value in (getattr(_current, "fields", None) or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """Plain lines, ids appended as ``key=value``, URL passwords masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line, with the record's context fields appended."""
        line = super().format(record)
        context = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if hasattr(record, name))
        if context:
            head, newline, rest = line.partition("\n")  # keep a traceback below the first line
            line = f"{head} [{context}]{newline}{rest}"
        return mask_url(line)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, process, message, the context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return mask_url(json.dumps(entry, default=str))


def setup(log_format: str = "text", level: str = "INFO") -> None:
    """Send every log record to stderr, as text or JSON lines, with the message context (entry points only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Pika and the HTTP client log every connection at INFO; keep them to warnings.
    for noisy in ("pika", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
