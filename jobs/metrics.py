"""Prometheus metrics counted by the worker processes: deliveries, latency, what the sweeper re-enqueued.

Needs the ``prometheus`` extra (``prometheus-client``); nothing here imports it until metrics are
turned on, and the hooks the delivery and the sweeper call are no-ops until then.

How it fits the supervisor (``jobs.worker.supervisor``, which serves them with
``jobs.worker.exposition``): the worker processes come and go (recycled,
crashed, replaced), so each writes its counters to files in a folder the supervisor owns
(prometheus-client's multiprocess mode, the one Dramatiq's own ``Prometheus`` middleware uses,
and which each worker process also runs for the message-level ``dramatiq_*`` metrics). The
supervisor serves them all, summed across processes, living and dead, so counters do not go
back when a process is replaced. The backlog is the database's, not one process's: it is read
when Prometheus scrapes, once per scrape, by the supervisor.

Metrics:

- ``tidings_deliveries_total{channel,status}``: outcomes recorded by the workers (``sent``,
  ``failed``, ``dead``, ``skipped``; ``pending`` means a transient failure, to be retried).
- ``tidings_delivery_latency_seconds{channel}``: from the transition's commit to the channel
  accepting the message.
- ``tidings_sweeper_reenqueued_total{kind}``: transitions and deliveries the sweepers re-enqueued.
- ``tidings_backlog{status}`` (pending, sending), ``tidings_backlog_oldest_seconds``,
  ``tidings_transitions_not_fanned_out``, ``tidings_delivery_log_rows{status}``,
  ``tidings_backlog_up`` (0 when the database could not be read): from the database.
- ``tidings_worker_processes``, ``tidings_worker_restarts_total{reason}`` (memory, messages,
  crash): from the supervisor.
- Dramatiq's own ``dramatiq_messages_total``, ``dramatiq_message_errors_total``,
  ``dramatiq_message_retries_total``, ``dramatiq_message_rejects_total``,
  ``dramatiq_messages_inprogress``, ``dramatiq_message_duration_milliseconds`` and
  ``dramatiq_delayed_messages_inprogress``, by queue and actor.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import dramatiq
from workflow import utcnow
from workflow.clock import aware

from .errors import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

__all__ = ["delivery_finished", "delivery_sent", "enable_in_worker", "require_client", "swept"]


_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, float("inf"))


class _WorkerMetrics:
    """The metrics one worker process records (in multiprocess mode, so the supervisor can sum them)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.deliveries: Counter = Counter("tidings_deliveries", "Delivery outcomes recorded by the workers.",
                                           ["channel", "status"], registry=None)
        self.latency: Histogram = Histogram("tidings_delivery_latency_seconds",
                                            "Seconds from the transition's commit to the channel accepting it.",
                                            ["channel"], buckets=_LATENCY_BUCKETS, registry=None)
        self.reenqueued: Counter = Counter("tidings_sweeper_reenqueued",
                                           "Transitions and deliveries the sweepers re-enqueued.",
                                           ["kind"], registry=None)


_worker: _WorkerMetrics | None = None


def require_client() -> None:
    """Check that prometheus-client is installed.

    Raises:
        ConfigurationError: it is not; the message says how to install it or turn metrics off.
    """
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ConfigurationError("Metrics need prometheus-client: pip install 'tidings[prometheus]', or set "
                                 "TIDINGS_METRICS_PORT=0 (--metrics-port 0).") from None


def enable_in_worker(broker: dramatiq.Broker) -> None:
    """Record metrics in this worker process: Tidings' own, and Dramatiq's ``Prometheus`` middleware.

    Call it in a worker process whose environment has ``PROMETHEUS_MULTIPROC_DIR`` (and
    ``dramatiq_prom_db``) set by the supervisor, before ``process_boot``.

    Raises:
        ConfigurationError: prometheus-client is not installed.
    """
    global _worker
    require_client()
    from dramatiq.middleware.prometheus import Prometheus

    if not any(isinstance(m, Prometheus) for m in broker.middleware):
        broker.add_middleware(Prometheus())
    _worker = _WorkerMetrics()


def delivery_finished(channel: str, status: str) -> None:
    """Count one delivery outcome (called by ``jobs.delivery``; a no-op without metrics)."""
    if _worker is not None:
        _worker.deliveries.labels(channel, status).inc()


def delivery_sent(channel: str, committed_at: dt.datetime) -> None:
    """Observe the latency of one sent delivery from its transition's commit (a no-op without metrics)."""
    if _worker is not None:
        seconds = (utcnow() - aware(committed_at)).total_seconds()
        _worker.latency.labels(channel).observe(max(seconds, 0.0))


def swept(transitions: int, deliveries: int) -> None:
    """Count what one sweep re-enqueued (called by ``jobs.sweeper``; a no-op without metrics)."""
    if _worker is not None:
        if transitions:
            _worker.reenqueued.labels("transition").inc(transitions)
        if deliveries:
            _worker.reenqueued.labels("delivery").inc(deliveries)
