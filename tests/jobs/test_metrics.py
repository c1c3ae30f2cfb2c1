"""Metrics: what the delivery and the sweeper record, counted in-process here (the worker
processes of `tidings worker` count the same into the supervisor's folder)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import actors, metrics
from jobs.testing import drain
from prometheus_client import CollectorRegistry
from sqlalchemy import update
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from tests.app import Order


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[CollectorRegistry]:
    """Worker metrics turned on in this process, readable through a registry of their own."""
    worker = metrics._WorkerMetrics()
    monkeypatch.setattr(metrics, "_worker", worker)
    registry = CollectorRegistry()
    for metric in (worker.deliveries, worker.latency, worker.reenqueued):
        registry.register(metric)
    yield registry


def test_each_delivery_outcome_and_its_latency_from_the_commit_are_counted(
        recorded: CollectorRegistry, broker: StubBroker, session: Session, order: Order) -> None:
    order.pay()
    session.commit()
    drain()
    assert recorded.get_sample_value("tidings_deliveries_total", {"channel": "email", "status": "sent"}) == 2
    assert recorded.get_sample_value("tidings_delivery_latency_seconds_count", {"channel": "email"}) == 2
    assert 0 < recorded.get_sample_value("tidings_delivery_latency_seconds_sum", {"channel": "email"}) < 60  # type: ignore[operator]


def test_what_the_sweeper_re_enqueues_is_counted_by_kind(
        recorded: CollectorRegistry, broker: StubBroker, session: Session, order: Order) -> None:
    order.pay()
    session.commit()  # enqueued, but no worker runs: the transition stays unfanned
    session.execute(update(TransitionRecord).values(created_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    session.commit()
    found = actors.sweep()
    assert len(found.transitions) == 1
    assert recorded.get_sample_value("tidings_sweeper_reenqueued_total", {"kind": "transition"}) == 1
    assert recorded.get_sample_value("tidings_sweeper_reenqueued_total", {"kind": "delivery"}) is None


def test_without_metrics_the_hooks_do_nothing() -> None:
    assert metrics._worker is None
    metrics.delivery_finished("email", "sent")
    metrics.delivery_sent("email", datetime.now(timezone.utc))
    metrics.swept(1, 1)
