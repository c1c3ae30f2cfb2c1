"""Prometheus metrics: deliveries and latency counted by the worker processes, the backlog read at scrape time.

Needs the ``prometheus`` extra (``prometheus-client``); nothing here imports it until metrics are
turned on, and the hooks the delivery and the sweeper call are no-ops until then.

How it fits the supervisor (``jobs.supervisor``): the worker processes come and go (recycled,
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
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import dramatiq

from .errors import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric

__all__ = ["BacklogCollector", "Exposition", "SupervisorMetrics", "delivery_finished", "delivery_sent",
           "enable_in_worker", "swept"]

_log = logging.getLogger(__name__)

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


def _prometheus_client() -> None:
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
    _prometheus_client()
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
        if committed_at.tzinfo is None:  # SQLite returns naive UTC
            committed_at = committed_at.replace(tzinfo=dt.timezone.utc)
        seconds = (dt.datetime.now(dt.timezone.utc) - committed_at).total_seconds()
        _worker.latency.labels(channel).observe(max(seconds, 0.0))


def swept(transitions: int, deliveries: int) -> None:
    """Count what one sweep re-enqueued (called by ``jobs.sweeper``; a no-op without metrics)."""
    if _worker is not None:
        if transitions:
            _worker.reenqueued.labels("transition").inc(transitions)
        if deliveries:
            _worker.reenqueued.labels("delivery").inc(deliveries)


class BacklogCollector:
    """Reads the backlog from the database when Prometheus scrapes (in the supervisor)."""

    def collect(self) -> Iterator[Metric]:
        """The backlog gauges; ``tidings_backlog_up`` 0 (and nothing else) when the database fails."""
        from prometheus_client.core import GaugeMetricFamily

        from . import status
        from .runtime import current

        up = GaugeMetricFamily("tidings_backlog_up", "1 when the backlog could be read from the database.")
        try:
            with current().session() as session:
                figures = status.status(session)
        except Exception as error:  # a scrape must answer even when the database does not
            _log.warning("Could not read the backlog for metrics: %s", str(error).splitlines()[0])
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        counts: dict[str, int] = figures["deliveries"]
        backlog = GaugeMetricFamily("tidings_backlog", "Deliveries waiting (pending) or claimed (sending).",
                                    labels=["status"])
        for name in ("pending", "sending"):
            backlog.add_metric([name], counts[name])
        yield backlog
        rows = GaugeMetricFamily("tidings_delivery_log_rows", "Deliveries in the log, by status.", labels=["status"])
        for name, count in counts.items():
            rows.add_metric([name], count)
        yield rows
        yield GaugeMetricFamily("tidings_backlog_oldest_seconds", "Age of the oldest pending or sending delivery.",
                                value=figures["oldest_undelivered_seconds"])
        yield GaugeMetricFamily("tidings_transitions_not_fanned_out", "Committed transitions not fanned out yet.",
                                value=figures["transitions_not_fanned_out"])

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry must not scrape the database when this collector is registered."""
        return []


class SupervisorMetrics:
    """The supervisor's own metrics: processes alive and restarts by reason."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge

        self.processes: Gauge = Gauge("tidings_worker_processes", "Worker processes running.", registry=registry)
        self.restarts: Counter = Counter("tidings_worker_restarts", "Worker processes replaced, by reason.",
                                         ["reason"], registry=registry)


class Exposition:
    """The HTTP endpoint Prometheus scrapes: worker metrics from ``folder``, the backlog, the supervisor's.

    Args:
        folder: the multiprocess folder the worker processes write to.
        port, host: where to listen.

    Raises:
        ConfigurationError: prometheus-client is missing, or the port cannot be bound.
    """

    def __init__(self, folder: str, port: int, host: str) -> None:
        _prometheus_client()
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        self.folder = folder
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=folder)  # type: ignore[no-untyped-call]
        self.registry.register(BacklogCollector())
        self.supervisor = SupervisorMetrics(self.registry)
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise ConfigurationError(f"Setting metrics_port (TIDINGS_METRICS_PORT or --metrics-port): cannot listen "
                                     f"on {host}:{port}: {error}.") from None
        self.port: int = self._server.server_port

    def process_gone(self, pid: int) -> None:
        """Drop the live gauges of a worker process that exited (its counters stay in the sums)."""
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, self.folder)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
