"""Operator commands: list dead deliveries, send them again, sweep."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.commands.cli import main
from jobs.testing import drain
from notifiers import MemoryChannel, TransientChannelError
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord

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


def test_max_dead_counts_the_dead_and_the_failed_deliveries_together(dead: list[int], session: Session,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    session.execute(update(Delivery).where(Delivery.id == dead[0]).values(status="failed", last_error="550 no"))
    session.commit()  # one dead, one failed
    assert main(["status", "--max-dead", "2"]) == 0
    assert main(["status", "--max-dead", "1"]) == 1
    assert capsys.readouterr().err == "unhealthy: 2 dead or failed > 1\n"


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


def test_explain_of_an_unknown_model_says_so_and_lists_the_known_ones(broker: StubBroker,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "Ordr", "1"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: Unknown model 'Ordr': no Stateful model of that name is imported and the "
                           "transition log has none; known: ")
    assert ", Order, " in line and line.endswith(". Did you mean 'Order'?")


def test_explain_of_a_known_model_with_no_transition_says_only_that(broker: StubBroker,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "Order", "999"]) == 0
    assert capsys.readouterr().out == "No transition recorded for Order 999.\n"


def test_graph_draws_each_transition_with_the_parties_told(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "--mermaid"]) == 0
    out = capsys.readouterr().out
    assert "    new --> paid: pay / buyer (email); seller (email)" in out
    assert "    paid --> shipped: ship / buyer (email)" in out


def test_graph_marks_the_notifications_that_ignore_opt_outs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph"]) == 0
    assert "  active -> locked on lock: owner (email, inapp, required)" in capsys.readouterr().out.splitlines()


# --- resend by notifier, channel and time; progress on long runs ----------------------------------------


def planted(session: Session, order: Order, rows: list[dict[str, object]]) -> list[int]:
    """Delivery rows of the order's 'pay' transition, as given (status, notifier, channel, age in hours)."""
    order.pay()
    session.commit()
    transition = session.scalars(select(TransitionRecord.id)).one()
    now = datetime.now(timezone.utc)
    ids = []
    for i, row in enumerate(rows):
        delivery = Delivery(key=f"k{i}", transition_id=transition, notifier=str(row["notifier"]), party="buyer",
                            channel=str(row.get("channel", "email")), address=f"p{i}@example.com",
                            status=str(row.get("status", "dead")), attempts=3, last_error="gave up",
                            updated_at=now - timedelta(hours=float(row.get("hours", 0))))  # type: ignore[arg-type]
        session.add(delivery)
        session.flush()
        ids.append(delivery.id)
    session.commit()
    return ids


@pytest.fixture
def mixed(broker: StubBroker, session: Session, order: Order) -> list[int]:
    return planted(session, order, [
        {"notifier": "tests.app.OrderNotifier.paid", "hours": 3},
        {"notifier": "tests.app.OrderNotifier.paid", "channel": "sms", "status": "failed"},
        {"notifier": "tests.app.OrderNotifier.shipped"},
        {"notifier": "tests.app.OrderNotifier.paid", "status": "sent"},
    ])


@pytest.mark.parametrize("filters, chosen", [
    (["--notifier", "OrderNotifier"], [0, 1, 2]),
    (["--notifier", "OrderNotifier.paid"], [0, 1]),
    (["--notifier", "tests.app.OrderNotifier.shipped"], [2]),
    (["--channel", "sms"], [1]),
    (["--since", "1h"], [1, 2]),
    (["--until", "1h"], [0]),
    (["--status", "failed"], [1]),
    (["--notifier", "OrderNotifier.paid", "--channel", "email", "--until", "2999-01-01T00:00"], [0]),
])
def test_resend_selects_failed_and_dead_deliveries_by_notifier_channel_time_and_status(
        mixed: list[int], filters: list[str], chosen: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resend", *filters, "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"would_resend": [mixed[i] for i in chosen]}


def test_resend_refuses_an_id_the_filters_exclude_and_a_time_it_cannot_read(
        mixed: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resend", str(mixed[1]), "--channel", "email"]) == 1
    assert f"No failed or dead delivery has id {mixed[1]} among those the filters select" in capsys.readouterr().err
    assert main(["resend", "--since", "yesterday"]) == 2
    assert "'yesterday' is not a time: give ISO 8601" in capsys.readouterr().err


def test_a_long_resend_shows_its_progress_and_resets_every_delivery(
        broker: StubBroker, session: Session, order: Order, capsys: pytest.CaptureFixture[str]) -> None:
    ids = planted(session, order, [{"notifier": "tests.app.OrderNotifier.paid"}] * 1200)
    assert main(["resend", "--status", "dead"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == ["re-sent 500/1200", "re-sent 1000/1200", "re-sent 1200/1200"]
    assert out.strip() == "re-sent 1200 deliveries"
    assert broker.queues["tidings"].qsize() == 1201  # the pay transition's fan-out, and one message each
    statuses = set(session.scalars(select(Delivery.status).where(Delivery.id.in_(ids))
                                   .execution_options(populate_existing=True)))
    assert statuses == {"pending"}


# --- worker and demo: what they refuse ---------------------------------------------------------------------


def test_the_worker_command_needs_a_shared_broker(broker: StubBroker, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "tests.app"]) == 2
    assert "tidings worker needs a shared broker" in capsys.readouterr().err


def test_the_worker_command_names_a_bad_option_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "tests.app", "--threads", "0"]) == 2
    assert "TIDINGS_WORKER_THREADS): must be positive" in capsys.readouterr().err


def test_metrics_read_the_backlog_from_the_database(dead: list[int]) -> None:
    from jobs.worker.exposition import BacklogCollector

    families = {family.name: family for family in BacklogCollector().collect()}
    rows = {s.labels["status"]: s.value for s in families["tidings_delivery_log_rows"].samples}
    assert families["tidings_backlog_up"].samples[0].value == 1
    assert rows["dead"] == 2 and rows["sent"] == 0
    assert [s.value for s in families["tidings_backlog"].samples] == [0, 0]
