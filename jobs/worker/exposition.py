"""The Prometheus endpoint of ``tidings worker``: the worker processes' metrics summed, the backlog, the supervisor's own.

The supervisor serves what its worker processes wrote (``jobs.metrics``, multiprocess mode), and
reads the backlog from the database when Prometheus scrapes, once per scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..metrics import require_client

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge
    from prometheus_client.metrics_core import Metric

__all__ = ["BacklogCollector", "Exposition", "SupervisorMetrics"]

_log = logging.getLogger(__name__)


class BacklogCollector:
    """Reads the backlog from the database when Prometheus scrapes (in the supervisor)."""

    def collect(self) -> Iterator[Metric]:
        """The backlog gauges; ``tidings_backlog_up`` 0 (and nothing else) when the database fails."""
        from prometheus_client.core import GaugeMetricFamily

        from .. import status
        from ..runtime import current

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
        require_client()
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
