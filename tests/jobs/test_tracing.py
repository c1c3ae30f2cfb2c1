"""Tracing (the otel extra): the commit's trace context is kept with the transition, and the worker's spans link to it."""

from __future__ import annotations

from collections.abc import Iterator

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs.actors import sweep
from jobs.testing import drain
from notifiers import MemoryChannel
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from tests.app import Order
from tests.jobs.test_sweeper import age_everything

trace = pytest.importorskip("opentelemetry.trace")
sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

EXPORTER = InMemorySpanExporter()
PROVIDER = sdk.TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(PROVIDER)  # once per process: the API keeps the first


@pytest.fixture(autouse=True)
def spans(broker: StubBroker, engine: Engine, mailbox: MemoryChannel) -> Iterator[InMemorySpanExporter]:
    jobs.configure(broker=broker, engine=engine, channels={"email": mailbox})
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def named(exporter: InMemorySpanExporter, name: str) -> list[object]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def linked_to(span: object, request: object) -> bool:
    wanted = request.get_span_context()  # type: ignore[attr-defined]
    return [(link.context.trace_id, link.context.span_id) for link in span.links] == [  # type: ignore[attr-defined]
        (wanted.trace_id, wanted.span_id)]


def test_a_transition_committed_in_a_span_keeps_its_traceparent(session: Session, order: Order) -> None:
    with trace.get_tracer("shop").start_as_current_span("POST /orders/1/pay") as request:
        record = order.pay()
        session.commit()
    context = request.get_span_context()
    assert record.traceparent == f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def test_the_fan_out_and_delivery_spans_link_to_the_request(session: Session, order: Order,
                                                           spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("shop").start_as_current_span("POST /orders/1/pay") as request:
        order.pay()
        session.commit()
    drain()
    [fan_out] = named(spans, "fan_out tidings")
    deliveries = named(spans, "deliver tidings")
    assert linked_to(fan_out, request) and len(deliveries) == 2
    assert all(linked_to(span, request) for span in deliveries)
    assert fan_out.kind == trace.SpanKind.CONSUMER  # type: ignore[attr-defined]
    assert fan_out.attributes["messaging.operation.name"] == "fan_out"  # type: ignore[attr-defined]
    assert fan_out.attributes["messaging.destination.name"] == "tidings"  # type: ignore[attr-defined]
    assert {span.attributes["tidings.channel"] for span in deliveries} == {"email"}  # type: ignore[attr-defined]
    assert all(span.attributes["tidings.delivery_id"] for span in deliveries)  # type: ignore[attr-defined]


def test_the_link_survives_a_sweeper_re_enqueue(session: Session, order: Order, broker: StubBroker,
                                                spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("shop").start_as_current_span("POST /orders/1/pay") as request:
        order.pay()
        session.commit()
    broker.flush_all()  # the fan-out message is lost
    age_everything(session)
    assert len(sweep().transitions) == 1
    drain()
    [fan_out] = named(spans, "fan_out tidings")
    assert linked_to(fan_out, request)
    assert all(linked_to(span, request) for span in named(spans, "deliver tidings"))


def test_a_transition_committed_outside_a_span_keeps_none_and_its_spans_have_no_links(
        session: Session, order: Order, spans: InMemorySpanExporter) -> None:
    record = order.pay()
    session.commit()
    drain()
    assert record.traceparent is None
    assert [span.links for span in named(spans, "fan_out tidings")] == [()]  # type: ignore[attr-defined]


def test_a_malformed_stored_traceparent_gives_no_link(session: Session, order: Order,
                                                       spans: InMemorySpanExporter, broker: StubBroker) -> None:
    order.pay()
    session.commit()
    broker.flush_all()
    session.execute(update(TransitionRecord).values(traceparent="00-not-a-trace-context"))
    age_everything(session)
    sweep()
    drain()
    assert [span.links for span in named(spans, "fan_out tidings")] == [()]  # type: ignore[attr-defined]
