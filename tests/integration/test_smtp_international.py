"""SMTPChannel and what the server offers: IDNA domains, SMTPUTF8, 8BITMIME (aiosmtpd on loopback)."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from typing import Any

import jobs
import pytest
from aiosmtpd.controller import Controller
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.testing import drain
from notifiers import (
    Channel,
    ChannelConfigurationError,
    Email,
    MemoryChannel,
    PermanentChannelError,
    Recipient,
    SMTPChannel,
)
from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from tests.app import Order, Person

pytestmark = pytest.mark.integration


class Offering:
    """An SMTP handler that offers only some extensions, and keeps every envelope it accepts."""

    def __init__(self, hidden: tuple[str, ...]) -> None:
        self.hidden = hidden
        self.received: list[Any] = []

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [line for line in responses if line[4:].split(" ")[0] not in self.hidden]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[Callable[..., tuple[SMTPChannel, Offering]]]:
    """Start a server hiding the given extensions; its channel and handler."""
    controllers: list[Controller] = []

    def start(*hidden: str) -> tuple[SMTPChannel, Offering]:
        handler = Offering(hidden)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return SMTPChannel("127.0.0.1", port, sender="Shop <shop@example.com>", timeout=5), handler

    yield start
    for controller in controllers:
        controller.stop()


def declared(envelope: Any) -> list[str]:
    """The MAIL FROM parameters a message needs declared (SIZE is smtplib's own)."""
    return [option for option in envelope.mail_options if not option.startswith("SIZE=")]


GREETING = Email(subject="Grüße", text="Grüße aus Köln, Zoë!\n", html="<p>Grüße aus Köln</p>\n")


def test_a_non_ascii_domain_travels_in_its_ascii_form(smtp: Callable[..., tuple[SMTPChannel, Offering]]) -> None:
    channel, server = smtp("SMTPUTF8")
    with channel:
        channel.send(GREETING, Recipient("x@bücher.example", "Zoë"), key="k")
    [envelope] = server.received
    assert envelope.rcpt_tos == ["x@xn--bcher-kva.example"] and "SMTPUTF8" not in envelope.mail_options
    assert email.message_from_bytes(envelope.original_content, policy=email.policy.default)["To"].addresses[0] \
        .addr_spec == "x@xn--bcher-kva.example"


def test_a_non_ascii_local_part_is_sent_with_smtputf8_where_offered(
        smtp: Callable[..., tuple[SMTPChannel, Offering]]) -> None:
    channel, server = smtp()
    with channel:
        channel.send(GREETING, Recipient("zoë@bücher.example"), key="k")
    [envelope] = server.received
    assert envelope.rcpt_tos == ["zoë@xn--bcher-kva.example"] and "SMTPUTF8" in envelope.mail_options
    assert "To: zoë@xn--bcher-kva.example\r\n".encode() in envelope.original_content


def test_a_non_ascii_local_part_fails_permanently_where_smtputf8_is_not_offered(
        smtp: Callable[..., tuple[SMTPChannel, Offering]]) -> None:
    channel, server = smtp("SMTPUTF8")
    with channel, pytest.raises(PermanentChannelError, match="does not offer SMTPUTF8, which zoë@example.com"):
        channel.send(GREETING, Recipient("zoë@example.com"), key="k")
    assert server.received == []


def test_an_8bit_body_declares_8bitmime_where_offered(smtp: Callable[..., tuple[SMTPChannel, Offering]]) -> None:
    channel, server = smtp()
    with channel:
        channel.send(GREETING, Recipient("ann@example.com"), key="k")
    [envelope] = server.received
    assert "BODY=8BITMIME" in envelope.mail_options
    assert "Grüße aus Köln, Zoë!".encode() in envelope.original_content


def test_an_8bit_body_is_encoded_where_8bitmime_is_not_offered(
        smtp: Callable[..., tuple[SMTPChannel, Offering]]) -> None:
    channel, server = smtp("8BITMIME", "SMTPUTF8")
    with channel:
        channel.send(GREETING, Recipient("ann@example.com", "Zoë"), key="k")
    [envelope] = server.received
    assert not declared(envelope) and envelope.original_content.isascii()
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert {part["Content-Transfer-Encoding"] for part in message.iter_parts()} <= {"quoted-printable", "base64"}
    assert [part.get_content().replace("\r\n", "\n") for part in message.iter_parts()] == [
        "Grüße aus Köln, Zoë!\n", "<p>Grüße aus Köln</p>\n"]


def test_a_7bit_message_declares_nothing(smtp: Callable[..., tuple[SMTPChannel, Offering]]) -> None:
    channel, server = smtp()
    with channel:
        channel.send(Email(subject="Hi", text="Hello\n"), Recipient("ann@example.com"), key="k")
    assert not declared(server.received[0])


def test_a_sender_that_is_not_one_address_is_refused_at_construction() -> None:
    with pytest.raises(ChannelConfigurationError, match="names 2 addresses"):
        SMTPChannel(sender="a@example.com, b@example.com")


# --- Through the pipeline: what is retried and what fails at once -------------------------------------


def deliver_paid_order(broker: StubBroker, engine: Engine, session: Session, channel: Channel,
                       buyer: str) -> dict[str, tuple[str, int, str | None]]:
    """Pay an order of ``buyer`` from Sam and run the worker; each address's (status, attempts, last error)."""
    jobs.configure(broker=broker, engine=engine, channels={"email": channel})
    order = Order(buyer=Person(name="Zoë", email=buyer), seller=Person(name="Sam", email="sam@example.com"))
    session.add(order)
    session.commit()
    order.pay()
    session.commit()
    drain()
    session.rollback()
    return {d.address: (d.status, d.attempts, d.last_error) for d in session.scalars(select(Delivery))}


def test_a_non_ascii_domain_ends_sent_through_the_pipeline(
        broker: StubBroker, engine: Engine, session: Session, smtp: Callable[..., tuple[SMTPChannel, Offering]],
) -> None:
    channel, server = smtp("SMTPUTF8")
    with channel:
        outcome = deliver_paid_order(broker, engine, session, channel, "x@bücher.example")
    assert outcome == {"x@bücher.example": ("sent", 1, None), "sam@example.com": ("sent", 1, None)}
    assert sorted(rcpt for envelope in server.received for rcpt in envelope.rcpt_tos) == [
        "sam@example.com", "x@xn--bcher-kva.example"]


def test_a_non_ascii_local_part_without_smtputf8_fails_at_once_through_the_pipeline(
        broker: StubBroker, engine: Engine, session: Session, smtp: Callable[..., tuple[SMTPChannel, Offering]],
) -> None:
    channel, _ = smtp("SMTPUTF8")
    with channel:
        outcome = deliver_paid_order(broker, engine, session, channel, "zoë@example.com")
    status, attempts, error = outcome["zoë@example.com"]
    assert (status, attempts) == ("failed", 1) and "does not offer SMTPUTF8" in (error or "")
    assert outcome["sam@example.com"] == ("sent", 1, None)


class Raising(MemoryChannel):
    """A channel whose every send raises ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
        raise self.error


@pytest.mark.parametrize("error", [
    UnicodeEncodeError("ascii", "x@bücher.example", 3, 4, "ordinal not in range(128)"),
    ValueError("invalid literal"),
    TypeError("expected str, got int"),
    DataError("INSERT ...", {}, Exception("value too long for type character varying(320)")),
], ids=["encoding", "validation", "type", "data too long"])
def test_a_deterministic_error_fails_at_once_with_its_reason(broker: StubBroker, engine: Engine, session: Session,
                                                            error: Exception) -> None:
    outcome = deliver_paid_order(broker, engine, session, Raising(error), "bea@example.com")
    assert {(status, attempts) for status, attempts, _ in outcome.values()} == {("failed", 1)}
    assert all((reason or "").startswith(type(error).__name__) for _, _, reason in outcome.values())
