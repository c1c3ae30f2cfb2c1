"""Structured logs: the ids of the message in hand on each record, JSON lines, masked passwords."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from dramatiq.brokers.stub import StubBroker
from jobs.worker.logs import ContextFilter, JSONFormatter, LogContext, TextFormatter
from jobs.testing import drain
from sqlalchemy.orm import Session

from tests.app import Order


@pytest.fixture
def json_lines(broker: StubBroker) -> Iterator[io.StringIO]:
    """JSON log lines of the 'jobs' loggers at DEBUG (a sent delivery's level), with the worker's message context."""
    broker.add_middleware(LogContext())
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("jobs")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_each_delivery_line_carries_its_delivery_and_transition_ids(json_lines: io.StringIO, session: Session,
                                                                     order: Order) -> None:
    order.pay()
    session.commit()
    drain()
    entries = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    fanned = [e for e in entries if e["logger"] == "jobs.fanout"]
    sent = [e for e in entries if e["logger"] == "jobs.delivery" and e.get("status") == "sent"]
    assert len(fanned) == 1 and fanned[0]["actor"] == "tidings.fan_out" and isinstance(fanned[0]["transition_id"], int)
    assert sorted(e["delivery_id"] for e in sent) == [1, 2]
    assert {e["transition_id"] for e in sent} == {fanned[0]["transition_id"]}
    # a transition's few deliveries are sent by its own fan-out message
    assert all(e["channel"] == "email" and e["actor"] == "tidings.fan_out" and e["message_id"] for e in sent)
    assert "is paid" not in json_lines.getvalue()  # the body is never logged


def test_at_info_a_sent_delivery_and_its_fan_out_write_no_line(json_lines: io.StringIO, session: Session,
                                                             order: Order) -> None:
    logging.getLogger("jobs").setLevel(logging.INFO)
    order.pay()
    session.commit()
    drain()
    entries = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert [e for e in entries if e["logger"] in ("jobs.fanout", "jobs.delivery")] == []


def test_a_line_logged_outside_any_message_has_no_ids() -> None:
    record = logging.LogRecord("jobs.sweeper", logging.WARNING, __file__, 1, "Sweeper re-enqueues %d", (3,), None)
    ContextFilter().filter(record)
    entry = json.loads(JSONFormatter().format(record))
    assert entry["message"] == "Sweeper re-enqueues 3" and "delivery_id" not in entry and "message_id" not in entry


@pytest.mark.parametrize("formatter", [JSONFormatter(), TextFormatter()])
def test_a_url_password_never_reaches_a_log_line(formatter: logging.Formatter) -> None:
    record = logging.LogRecord("jobs", logging.ERROR, __file__, 1, "cannot reach %s",
                               ("postgresql+psycopg://app:s3cret@db/app",), None)
    line = formatter.format(record)
    assert "s3cret" not in line and "postgresql+psycopg://app:***@db/app" in line
