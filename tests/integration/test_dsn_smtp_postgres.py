"""Bounces by mail: delivery status notifications sent to a loopback SMTP server whose handler feeds the adapter."""

from __future__ import annotations

import smtplib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from jobs import Delivery
from jobs.fanout import fan_out
from notifiers import record_dsn, suppressed
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.app import Order, Person

pytestmark = pytest.mark.integration

POSTFIX = b"""\
Return-Path: <>
From: MAILER-DAEMON@mx.relay.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces@shop.example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="8D2A63FBA1.1772357400/mx.relay.example"

--8D2A63FBA1.1772357400/mx.relay.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.relay.example.
I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<bea@example.com>: host mx.example.com[192.0.2.25] said: 550 5.1.1
    <bea@example.com>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--8D2A63FBA1.1772357400/mx.relay.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.relay.example
X-Postfix-Queue-ID: 8D2A63FBA1
X-Postfix-Sender: rfc822; bounces@shop.example.com
Arrival-Date: Sun,  1 Mar 2026 09:30:00 +0000 (UTC)

Final-Recipient: rfc822; bea@example.com
Original-Recipient: rfc822;bea@example.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 5.1.1 <bea@example.com>: Recipient address rejected:
    User unknown in virtual mailbox table

--8D2A63FBA1.1772357400/mx.relay.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Message-ID: <k1@shop.example.com>
From: Shop <shop@example.com>
To: bea@example.com
Subject: Order paid

--8D2A63FBA1.1772357400/mx.relay.example--
"""

DELAYED = b"""\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.relay.example>
To: bounces@shop.example.com
Subject: Delivery Status Notification (Delay)
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="00000000000071f1"

--00000000000071f1
Content-Type: text/plain; charset="UTF-8"

Delivery to sam@example.com has been delayed; the relay will retry for 2 more days.

--00000000000071f1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.relay.example
Arrival-Date: Sun, 01 Mar 2026 09:30:00 +0000

Final-Recipient: rfc822; sam@example.com
Action: delayed
Status: 4.4.1
Diagnostic-Code: smtp; 421 4.4.1 Connection timed out
Will-Retry-Until: Tue, 03 Mar 2026 09:30:00 +0000

--00000000000071f1--
"""


class Bounces:
    """The mailbox that receives bounces (the envelope sender's): each message goes to the DSN adapter."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.seen, self.arrived = engine, 0, threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with Session(self.engine) as db:
            record_dsn(db, envelope.content)
            db.commit()
        with self.arrived:
            self.seen += 1
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: self.seen >= count, timeout=30)


@pytest.fixture
def bounces(shop: Engine) -> Iterator[tuple[Bounces, int]]:
    handler = Bounces(shop)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def mail(port: int, *reports: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for report in reports:
            client.sendmail("", ["bounces@shop.example.com"], report.replace(b"\n", b"\r\n"))  # the null sender


def test_a_hard_bounce_received_by_mail_suppresses_the_address(bounces: tuple[Bounces, int], shop: Engine) -> None:
    handler, port = bounces
    mail(port, POSTFIX)
    handler.wait_for(1)
    with Session(shop) as session:
        [found] = suppressed(session)
    assert (found.address, found.channel, found.reason) == ("bea@example.com", "email", "bounced")
    assert found.detail.startswith("5.1.1 550 5.1.1 <bea@example.com>: Recipient address rejected")


def test_a_delayed_delivery_received_by_mail_suppresses_nothing(bounces: tuple[Bounces, int], shop: Engine) -> None:
    handler, port = bounces
    mail(port, DELAYED)
    handler.wait_for(1)
    with Session(shop) as session:
        assert suppressed(session) == []


def test_after_a_bounce_by_mail_the_next_fan_out_skips_the_address(bounces: tuple[Bounces, int],
                                                                  shop: Engine) -> None:
    handler, port = bounces
    mail(port, POSTFIX, DELAYED)
    handler.wait_for(2)
    with Session(shop) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        record = order.pay()
        session.commit()
        fan_out(session, record.id)
        rows = dict(session.execute(select(Delivery.address, Delivery.status)
                                    .where(Delivery.transition_id == record.id)).all())
    assert rows == {"bea@example.com": "skipped", "sam@example.com": "pending"}
