"""OpenTelemetry spans of the worker, linked to the request that committed the transition (the ``otel`` extra).

Each transition keeps the ``traceparent`` of the span current at its commit
(:mod:`workflow.tracing`). A fan-out is one span, ``fan_out <queue>``, linked to the context of
every transition it plans; each delivery sent is one span, ``deliver <queue>``, linked to its
transition's. Links, not parents: the work runs later, maybe after a sweeper re-enqueue, and one
fan-out may plan many requests' transitions, as the OpenTelemetry messaging conventions say of
a consumer's batch. Without OpenTelemetry installed, each is a no-op context manager.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["span"]

try:
    from opentelemetry import trace
except ImportError:  # the otel extra is not installed
    trace = None  # type: ignore[assignment]

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@contextmanager
def span(operation: str, queue: str, traceparents: Iterable[str | None], **attributes: Any) -> Iterator[None]:
    """A consumer span ``<operation> <queue>`` (messaging conventions), linked to each valid ``traceparent``."""
    if trace is None:
        yield
        return
    contexts = (_context(t) for t in dict.fromkeys(t for t in traceparents if t))  # each once, in order
    links = [trace.Link(context) for context in contexts if context is not None]
    values = {"messaging.system": "dramatiq", "messaging.operation.type": "process",
              "messaging.operation.name": operation, "messaging.destination.name": queue,
              **{f"tidings.{name}": value for name, value in attributes.items() if value is not None}}
    if len(links) > 1:
        values["messaging.batch.message_count"] = len(links)
    with trace.get_tracer("tidings").start_as_current_span(f"{operation} {queue}", kind=trace.SpanKind.CONSUMER,
                                                           links=links, attributes=values):
        yield


def _context(traceparent: str) -> trace.SpanContext | None:
    found = _TRACEPARENT.fullmatch(traceparent)
    if found is None:
        return None
    return trace.SpanContext(int(found[1], 16), int(found[2], 16), is_remote=True,
                             trace_flags=trace.TraceFlags(int(found[3], 16)))
