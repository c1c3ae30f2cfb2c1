"""SMTPChannel against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from notifiers import Email, PermanentChannelError, Recipient, SMTPChannel, TransientChannelError

pytestmark = pytest.mark.integration


class Reply:
    """An SMTP handler that answers DATA with a chosen reply and keeps what it accepted."""

    def __init__(self) -> None:
        self.reply = "250 OK"
        self.received: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            self.received.append(envelope)
        return self.reply


@pytest.fixture
def server() -> Iterator[tuple[Controller, Reply]]:
    handler = Reply()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, handler
    controller.stop()


def channel_for(controller: Controller) -> SMTPChannel:
    return SMTPChannel("127.0.0.1", controller.port, sender="Shop <shop@example.com>",
                       timeout=5)


def test_sends_with_the_envelope_recipient_and_reuses_the_connection(server: tuple[Controller, Reply]) -> None:
    controller, handler = server
    with channel_for(controller) as channel:
        for key in ("k1", "k2"):
            channel.send(Email(subject="Hi", text="body"), Recipient("ann@example.com"), key=key)
        assert len(channel._connections) == 1
    assert [e.rcpt_tos for e in handler.received] == [["ann@example.com"], ["ann@example.com"]]
    assert b"Message-ID: <k1@example.com>" in handler.received[0].content


def test_a_4xx_reply_is_transient(server: tuple[Controller, Reply]) -> None:
    controller, handler = server
    handler.reply = "451 4.3.0 try again later"
    with channel_for(controller) as channel, pytest.raises(TransientChannelError, match="451 4.3.0 try again later"):
        channel.send(Email(subject="Hi", text="body"), Recipient("ann@example.com"), key="k")


def test_a_5xx_reply_is_permanent_and_names_the_reply(server: tuple[Controller, Reply]) -> None:
    controller, handler = server
    handler.reply = "554 5.7.1 rejected"
    with channel_for(controller) as channel, pytest.raises(PermanentChannelError, match="554 5.7.1 rejected"):
        channel.send(Email(subject="Hi", text="body"), Recipient("ann@example.com"), key="k")


def test_a_closed_port_is_transient() -> None:
    channel = SMTPChannel("127.0.0.1", 1, timeout=2)
    with pytest.raises(TransientChannelError, match="ConnectionRefusedError"):
        channel.send(Email(subject="Hi", text="body"), Recipient("ann@example.com"), key="k")


def test_a_kept_connection_that_went_stale_is_replaced_once(server: tuple[Controller, Reply]) -> None:
    controller, handler = server
    with channel_for(controller) as channel:
        channel.send(Email(subject="Hi", text="one"), Recipient("ann@example.com"), key="k1")
        channel._connections.current().close()  # type: ignore[union-attr]  # as if the server dropped it
        channel.send(Email(subject="Hi", text="two"), Recipient("ann@example.com"), key="k2")
    assert len(handler.received) == 2


def test_a_channel_without_tls_builds_no_tls_context(server: tuple[Controller, Reply],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Building an SSL context loads the CA bundle (tens of ms): a plain connection must not pay it."""
    import ssl

    def refuse() -> ssl.SSLContext:
        raise AssertionError("an SSL context was built for a plain connection")

    monkeypatch.setattr(ssl, "create_default_context", refuse)
    controller, handler = server
    with channel_for(controller) as channel:
        channel.send(Email(subject="Hi", text="body"), Recipient("ann@example.com"), key="k")
    assert len(handler.received) == 1
