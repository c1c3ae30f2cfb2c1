"""The caller's trace context (W3C ``traceparent``), stored with each transition it commits.

With OpenTelemetry installed and a span current when a trigger fires (a web request's), the
transition row keeps that span's context, so the worker's spans, however late and after however
many re-enqueues, link to the request that caused them. Without OpenTelemetry this is one
cached check per transition.
"""

from __future__ import annotations

from typing import Any

__all__ = ["traceparent"]

_trace: Any = None  # opentelemetry.trace once imported; False when it is not installed


def traceparent() -> str | None:
    """The current span's context as a W3C ``traceparent``, or ``None`` (no OpenTelemetry, no valid span)."""
    global _trace
    if _trace is None:
        try:
            from opentelemetry import trace as found
        except ImportError:
            _trace = False
        else:
            _trace = found
    if _trace is False:
        return None
    context = _trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
