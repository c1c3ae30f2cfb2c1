"""Standard Webhooks, the webhook channel's default signing: the reference library verifies what Tidings sends."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from notifiers import (
    ChannelConfigurationError,
    Email,
    Recipient,
    TransientChannelError,
    WebhookChannel,
    verify_standard,
)
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.servers import HTTPReply, HTTPRequest, HTTPServer

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()  # as a receiver's dashboard shows it
MESSAGE = Email(subject="Order 42 paid", text="Hello Bea")
BEA = Recipient("bea@example.com", "Bea", "buyer", ref="Person:1")


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    """A real HTTP server on loopback, answering 200 until told otherwise."""
    running = HTTPServer()
    yield running
    running.stop()


def received(server: HTTPServer, secret: str | bytes = SECRET, key: str = "k-1") -> HTTPRequest:
    with WebhookChannel(server.url, secret=secret) as channel:
        channel.send(MESSAGE, BEA, key=key)
    return server.requests[-1]


def test_a_request_verifies_with_the_standardwebhooks_reference_library(server: HTTPServer) -> None:
    request = received(server)
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["content"]["subject"] == "Order 42 paid"


def test_the_headers_are_webhook_id_timestamp_and_a_v1_signature(server: HTTPServer) -> None:
    headers = received(server, key="3f9c0a").headers
    assert headers["webhook-id"] == "3f9c0a"
    assert headers["webhook-timestamp"].isdigit()
    assert headers["webhook-signature"].startswith("v1,")
    assert "tidings-signature" not in headers and "idempotency-key" not in headers


def test_the_webhook_id_is_the_delivery_key_and_the_same_on_a_retry(server: HTTPServer) -> None:
    server.answer(HTTPReply(503), HTTPReply(200))
    with WebhookChannel(server.url, secret=SECRET) as channel:
        with pytest.raises(TransientChannelError):
            channel.send(MESSAGE, BEA, key="3f9c0a")
        channel.send(MESSAGE, BEA, key="3f9c0a")
    assert [r.headers["webhook-id"] for r in server.requests] == ["3f9c0a", "3f9c0a"]
    for request in server.requests:
        Webhook(SECRET).verify(request.body, request.headers)


def test_a_raw_secret_is_the_key_itself_and_verifies_when_the_receiver_passes_it_as_bytes(server: HTTPServer) -> None:
    request = received(server, secret="a raw shared secret")
    assert Webhook(b"a raw shared secret").verify(request.body, request.headers)


def test_the_reference_library_refuses_a_tampered_body(server: HTTPServer) -> None:
    request = received(server)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body.replace(b"Bea", b"Eve"), request.headers)


def test_the_reference_library_refuses_another_secret(server: HTTPServer) -> None:
    request = received(server)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"someone else").decode()).verify(request.body, request.headers)


def test_verify_standard_agrees_with_the_reference_library_on_a_received_request(server: HTTPServer) -> None:
    request = received(server)
    assert verify_standard(request.body, request.headers, SECRET)
    assert not verify_standard(request.body + b" ", request.headers, SECRET)


def test_verify_standard_refuses_a_timestamp_outside_the_tolerance(server: HTTPServer) -> None:
    request = received(server)
    sent_at = int(request.headers["webhook-timestamp"])
    assert verify_standard(request.body, request.headers, SECRET, tolerance=300, now=sent_at + 300)
    assert not verify_standard(request.body, request.headers, SECRET, tolerance=300, now=sent_at + 301)


def test_a_whsec_secret_that_is_not_base64_is_refused_when_the_channel_is_built() -> None:
    with pytest.raises(ChannelConfigurationError, match="starts with 'whsec_' but the rest is not base64"):
        WebhookChannel("https://hooks.example.com/in", secret="whsec_not base64!")


def test_an_unknown_signing_scheme_is_refused_when_the_channel_is_built() -> None:
    with pytest.raises(ChannelConfigurationError, match="signing='svix' is not one of 'standard', 'tidings'"):
        WebhookChannel("https://hooks.example.com/in", secret=SECRET, signing="svix")


def test_the_secret_never_appears_in_the_repr() -> None:
    assert SECRET not in repr(WebhookChannel("https://hooks.example.com/in", secret=SECRET))


def test_verify_standard_accepts_one_matching_signature_among_several(server: HTTPServer) -> None:
    request = received(server)
    rotated = {**request.headers, "webhook-signature": f"v1,c29tZW9uZSBlbHNl {request.headers['webhook-signature']}"}
    assert verify_standard(request.body, rotated, SECRET)
