"""Operator commands: list dead deliveries, send them again, sweep."""

from __future__ import annotations

import json

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.cli import main
from jobs.testing import drain
from notifiers import MemoryChannel, TransientChannelError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.app import Order


class Down(MemoryChannel):
    def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
        raise TransientChannelError("connection refused", channel="smtp")


@pytest.fixture
def dead(broker: StubBroker, engine: Engine, session: Session, order: Order) -> list[int]:
    """Two dead deliveries: the SMTP server was down past the retry budget."""
    jobs.configure(broker=broker, engine=engine, channels={"email": Down()})
    order.pay()
    session.commit()
    drain()
    return list(session.scalars(select(Delivery.id).where(Delivery.status == "dead")))


def test_dead_deliveries_are_listed_as_json(dead: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deliveries", "--status", "dead", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == dead and rows[0]["error"].startswith("Gave up after 3 attempts")


def test_a_dead_delivery_can_be_sent_again_on_purpose(dead: list[int], broker: StubBroker, engine: Engine,
                                                      session: Session, mailbox: MemoryChannel) -> None:
    jobs.configure(broker=broker, engine=engine, channels={"email": mailbox})
    assert main(["resend", str(dead[0])]) == 0
    drain()
    assert [s.to.address for s in mailbox.outbox] == [session.get(Delivery, dead[0]).address]  # type: ignore[union-attr]
    assert session.get(Delivery, dead[0], populate_existing=True).status == "sent"  # type: ignore[union-attr]


def test_resending_an_id_that_is_not_dead_or_failed_is_refused(dead: list[int],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resend", "999"]) == 1
    assert "No failed or dead delivery has id 999" in capsys.readouterr().err


def test_sweep_reports_what_it_re_enqueued(broker: StubBroker, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep"]) == 0
    assert capsys.readouterr().out.strip() == "re-enqueued 0 transitions and 0 deliveries"


def test_status_counts_deliveries_and_fails_past_a_threshold(dead: list[int],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["deliveries"]["dead"] == 2 and figures["transitions_not_fanned_out"] == 0
    assert figures["failures_by_reason"][0]["count"] == 2
    assert main(["status", "--max-dead", "1"]) == 1
    assert "unhealthy: 2 dead or failed > 1" in capsys.readouterr().err


def test_explain_shows_each_transition_and_who_was_told(broker: StubBroker, session: Session, order: Order,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    order.pay(actor="clerk")
    order.ship(blocked=False)
    order.reopen()
    session.commit()
    drain()
    assert main(["explain", "Order", str(order.id)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("pay: new -> paid by clerk")
    assert lines[1:3] == ["    buyer <bea@example.com> by email: sent, 1 attempt(s)",
                          "    seller <sam@example.com> by email: sent, 1 attempt(s)"]
    assert lines[-1] == "    nobody told: no notifier is registered for Order.reopen"


def test_graph_draws_each_transition_with_the_parties_told(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "--mermaid"]) == 0
    out = capsys.readouterr().out
    assert "    new --> paid: pay / buyer (email); seller (email)" in out
    assert "    paid --> shipped: ship / buyer (email)" in out
