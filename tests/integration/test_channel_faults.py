"""SMTP trouble and bad input, with a real worker process, broker, database and SMTP server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import jobs
import pytest
from jobs import Delivery, Status
from jobs.actors import deliver, fan_out
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.app import Order, Person
from tests.processes import ROOT, stop_group, worker_env
from tests.servers import SMTPServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

QUICK_RETRIES = {"TIDINGS_MAX_RETRIES": "3", "TIDINGS_MIN_BACKOFF_MS": "200", "TIDINGS_MAX_BACKOFF_MS": "1000"}


def paid_order(engine: Engine, **context: object) -> int:
    """Commit a new order and pay it: its buyer and seller are told."""
    with Session(engine) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"), watchers=[])
        session.add(order)
        session.commit()
        order.pay(**context)
        session.commit()
        return order.id


def settled(engine: Engine, count: int, timeout: float = 60) -> list[Delivery]:
    """The deliveries, once there are ``count`` and none is pending or sending (or at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            rows = list(session.scalars(select(Delivery).order_by(Delivery.id)))
        if (len(rows) >= count and all(d.status not in (Status.PENDING, Status.SENDING) for d in rows)) \
                or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def start_worker(worker_process: Callable[..., subprocess.Popen[bytes]], pg_url: str, broker_url: str,
                 queue: str, smtp: SMTPServer, **more: str) -> subprocess.Popen[bytes]:
    return worker_process("tests.app", env=worker_env(pg_url, broker_url, queue, smtp, **QUICK_RETRIES, **more))


def test_smtp_4xx_replies_are_retried_until_the_server_accepts(
        pg_url: str, shop: Engine, broker_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    smtp_server.reply = "451 4.3.0 greylisted, try again later"
    start_worker(worker_process, pg_url, broker_url, queue_name, smtp_server)
    paid_order(shop)
    deadline = time.monotonic() + 30
    while smtp_server.refused < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    smtp_server.reply = "250 OK"
    rows = settled(shop, 2)
    assert [(d.status, d.attempts > 1) for d in rows] == [(Status.SENT, True), (Status.SENT, True)]
    assert sorted(str(m["To"]) for m in smtp_server.wait_for(2)) == ["Bea <bea@example.com>", "Sam <sam@example.com>"]


def test_smtp_5xx_replies_fail_at_once_with_the_servers_reply(
        pg_url: str, shop: Engine, broker_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    smtp_server.reply = "554 5.7.1 message refused"
    start_worker(worker_process, pg_url, broker_url, queue_name, smtp_server)
    paid_order(shop)
    rows = settled(shop, 2)
    assert [(d.status, d.attempts) for d in rows] == [(Status.FAILED, 1), (Status.FAILED, 1)]
    assert all("554 5.7.1 message refused" in (d.last_error or "") for d in rows)
    assert smtp_server.refused == 2


def test_a_dead_server_past_the_retry_budget_leaves_deliveries_dead_and_they_can_be_resent(
        pg_url: str, shop: Engine, broker_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    dead_server = SMTPServer("127.0.0.1", 1)  # nothing listens on port 1
    first = start_worker(worker_process, pg_url, broker_url, queue_name, dead_server)
    paid_order(shop)
    rows = settled(shop, 2)
    assert [(d.status, d.attempts) for d in rows] == [(Status.DEAD, 4), (Status.DEAD, 4)]
    assert all("Gave up after 4 attempts" in (d.last_error or "") for d in rows)

    stop_group(first)  # the server is repaired: workers now point at a live one
    start_worker(worker_process, pg_url, broker_url, queue_name, smtp_server)
    command = [sys.executable, "-m", "jobs", "resend", "--status", "dead"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**worker_env(pg_url, broker_url, queue_name, smtp_server), "PATH": ""})
    assert (result.returncode, result.stdout.strip()) == (0, "re-sent 2 deliveries"), result.stderr
    assert len(smtp_server.wait_for(2, timeout=60)) == 2
    assert [d.status for d in settled(shop, 2)] == [Status.SENT, Status.SENT]


def test_bad_input_ends_as_recorded_failures_and_never_stops_the_worker(
        pg_url: str, shop: Engine, broker_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    start_worker(worker_process, pg_url, broker_url, queue_name, smtp_server)
    fan_out.send(424242)  # a transition that does not exist
    deliver.send(434343)  # a delivery that does not exist
    with Session(shop) as session:
        nobody = Order(buyer=Person(name="No address", email=None), seller=Person(name="Sam", email="sam@example.com"),
                       watchers=[])
        broken, injected = (Order(buyer=Person(name=f"B{i}", email=f"b{i}@example.com"),
                                  seller=Person(name="Sam", email="sam@example.com"),
                                  watchers=[]) for i in range(2))
        session.add_all([nobody, broken, injected])
        session.commit()
        nobody.pay()                                         # buyer without an address
        broken.pay()
        broken.ship(template="broken")                       # a template that does not compile
        injected.cancel(subject="Hi\r\nBcc: all@example.com")  # header injection
        session.commit()
    rows = settled(shop, 6)
    reasons = sorted((d.party, d.status, (d.last_error or "").split(":")[0]) for d in rows if d.status != Status.SENT)
    assert reasons == [("buyer", "failed", "MessageError"), ("buyer", "failed", "Party 'buyer'"),
                       ("buyer", "failed", "TemplateError")]
    assert len([d for d in rows if d.status == Status.SENT]) == 3  # the others' deliveries went out
    assert len(smtp_server.wait_for(3)) == 3


def test_a_non_ascii_domain_is_sent_and_a_local_part_the_server_cannot_take_fails_at_once(
        pg_url: str, shop: Engine, broker_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    smtp_server.hidden = ("SMTPUTF8",)
    start_worker(worker_process, pg_url, broker_url, queue_name, smtp_server)
    with Session(shop) as session:
        order = Order(buyer=Person(name="Zoë, <victim@evil.example>", email="x@bücher.example"),
                      seller=Person(name="Zoë", email="zoë@example.com"), watchers=[])
        session.add(order)
        session.commit()
        order.pay()
        session.commit()
    rows = {d.party: d for d in settled(shop, 2)}
    assert (rows["buyer"].status, rows["buyer"].attempts) == (Status.SENT, 1)
    assert (rows["seller"].status, rows["seller"].attempts) == (Status.FAILED, 1)
    assert "does not offer SMTPUTF8" in (rows["seller"].last_error or "")
    [mail] = smtp_server.wait_for(1)
    assert [(a.display_name, a.addr_spec) for a in mail["To"].addresses] == [
        ("Zoë, <victim@evil.example>", "x@xn--bcher-kva.example")]
