"""WebhookChannel against a real HTTP server on loopback, and through the jobs pipeline.

These tests sign with ``signing="tidings"`` (``Tidings-Signature``, ``Idempotency-Key``); the default,
Standard Webhooks, is verified with the reference library in test_standard_webhooks.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import ssl
import time
from email.utils import formatdate
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.testing import drain
from notifiers import (
    ChannelConfigurationError,
    Email,
    Event,
    MemoryChannel,
    MessageError,
    PermanentChannelError,
    Recipient,
    TransientChannelError,
    WebhookChannel,
    verify_signature,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.app import Parcel, Person
from tests.servers import HTTPReply, HTTPRequest, HTTPServer

pytestmark = pytest.mark.integration

SECRET = "whsec-never-shown-4f2a"
MESSAGE = Email(subject="Order 42 paid", text="Hello Bea", html="<p>Hello Bea</p>")
BEA = Recipient("bea@example.com", "Bea", "buyer", ref="Person:1", locale="de")
EVENT = Event(transition_id=7, model="Order", key="42", trigger="pay", source="new", dest="paid", actor="Person:2",
              context={"note": "see you Friday"}, created_at=dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.timezone.utc),
              subject=SimpleNamespace(state="paid"))


def webhook(server: HTTPServer, **options: Any) -> WebhookChannel:
    return WebhookChannel(server.url, secret=SECRET, **{"signing": "tidings", **options})


def send_one(server: HTTPServer, key: str = "k-1", event: Event | None = EVENT, **options: Any) -> HTTPRequest:
    """Send MESSAGE to Bea and return the request the server received."""
    with webhook(server, **options) as channel:
        channel.send(MESSAGE, BEA, key=key, event=event)
    return server.requests[-1]


def failure(server: HTTPServer, reply: HTTPReply, **options: Any) -> Exception:
    """The error sending MESSAGE raises when the server answers ``reply``."""
    server.answer(reply)
    with webhook(server, **options) as channel, pytest.raises((TransientChannelError, PermanentChannelError)) as error:
        channel.send(MESSAGE, BEA, key="k-1", event=EVENT)
    return error.value


# --- Outcomes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 204])
def test_a_2xx_answer_means_sent(http_server: HTTPServer, status: int) -> None:
    http_server.answer(HTTPReply(status))
    request = send_one(http_server)
    assert (request.method, request.path) == ("POST", "/hooks/tidings")


@pytest.mark.parametrize("status", [400, 401, 404, 422])  # 410: test_webhook_gone.py
def test_other_4xx_answers_are_permanent_with_the_status_and_body(http_server: HTTPServer, status: int) -> None:
    error = failure(http_server, HTTPReply(status, body=b'{"error": "no such hook"}'))
    assert isinstance(error, PermanentChannelError)
    assert re.search(rf'answered {status} [A-Za-z ]+: {{"error": "no such hook"}}$', str(error))
    assert error.channel == "webhook"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_408_429_and_5xx_answers_are_transient(http_server: HTTPServer, status: int) -> None:
    error = failure(http_server, HTTPReply(status))
    assert isinstance(error, TransientChannelError)
    assert f"answered {status}" in str(error) and error.retry_after is None


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_in_seconds_sets_retry_after(http_server: HTTPServer, status: int) -> None:
    error = failure(http_server, HTTPReply(status, {"Retry-After": "120"}))
    assert isinstance(error, TransientChannelError) and error.retry_after == 120


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_as_an_http_date_sets_retry_after(http_server: HTTPServer, status: int) -> None:
    error = failure(http_server, HTTPReply(status, {"Retry-After": formatdate(time.time() + 120, usegmt=True)}))
    assert isinstance(error, TransientChannelError) and error.retry_after is not None
    assert 100 <= error.retry_after <= 120


def test_a_redirect_is_permanent_and_names_the_location(http_server: HTTPServer) -> None:
    error = failure(http_server, HTTPReply(301, {"Location": "https://hooks.example.com/new"}))
    assert isinstance(error, PermanentChannelError)
    assert "redirects are not followed; Location: https://hooks.example.com/new" in str(error)


def test_a_long_error_body_is_quoted_as_a_short_excerpt(http_server: HTTPServer) -> None:
    error = failure(http_server, HTTPReply(422, body=b"x" * 5000))
    assert str(error).endswith(": " + "x" * 200 + "…")


def test_a_server_that_never_answers_is_transient_after_the_read_timeout(http_server: HTTPServer) -> None:
    started = time.monotonic()
    error = failure(http_server, HTTPReply(hang=True), read_timeout=0.2)
    assert isinstance(error, TransientChannelError)
    assert "did not answer within 0.2 s (read_timeout)" in str(error)
    assert time.monotonic() - started < 5


def test_a_closed_port_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with WebhookChannel(f"http://127.0.0.1:{port}/", secret=SECRET, signing="tidings") as channel, \
            pytest.raises(TransientChannelError, match="could not connect \\(ConnectionRefusedError"):
        channel.send(MESSAGE, BEA, key="k-1")


# --- What is sent ---------------------------------------------------------------------------------


def test_the_payload_carries_the_transition_record_recipient_channel_and_content(http_server: HTTPServer) -> None:
    request = send_one(http_server, key="k-1")
    assert json.loads(request.body) == {
        "key": "k-1",
        "channel": "webhook",
        "transition": {"id": 7, "model": "Order", "key": "42", "trigger": "pay", "source": "new", "dest": "paid",
                       "actor": "Person:2", "context": {"note": "see you Friday"},
                       "created_at": "2026-11-24T06:00:00+00:00"},
        "record": {"model": "Order", "key": "42", "state": "paid"},
        "recipient": {"address": "bea@example.com", "name": "Bea", "party": "buyer", "ref": "Person:1",
                      "locale": "de"},
        "content": {"subject": "Order 42 paid", "text": "Hello Bea", "html": "<p>Hello Bea</p>"},
    }


def test_a_message_sent_by_hand_has_no_transition_or_record(http_server: HTTPServer) -> None:
    payload = json.loads(send_one(http_server, event=None).body)
    assert (payload["transition"], payload["record"]) == (None, None)


def test_an_unrendered_email_is_refused_and_nothing_is_sent(http_server: HTTPServer) -> None:
    with webhook(http_server) as channel, pytest.raises(MessageError, match="has no body; render it first"):
        channel.send(Email(subject="Hi", template="orders/paid"), BEA, key="k-1")
    assert http_server.requests == []


def test_the_headers_name_the_content_the_key_the_time_and_the_sender(http_server: HTTPServer) -> None:
    request = send_one(http_server, key="k-1", headers={"Authorization": "Bearer abc"})
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "k-1"
    assert headers["tidings-signature"].startswith(f"t={headers['tidings-timestamp']},v1=")
    assert abs(int(headers["tidings-timestamp"]) - time.time()) < 60
    assert headers["user-agent"].startswith("Tidings")
    assert headers["authorization"] == "Bearer abc"


def test_the_idempotency_key_is_the_delivery_key_and_the_same_on_a_retry(http_server: HTTPServer) -> None:
    http_server.answer(HTTPReply(503), HTTPReply(200))
    with webhook(http_server) as channel:
        with pytest.raises(TransientChannelError):
            channel.send(MESSAGE, BEA, key="3f9c0a", event=EVENT)
        channel.send(MESSAGE, BEA, key="3f9c0a", event=EVENT)
    assert [r.headers["idempotency-key"] for r in http_server.requests] == ["3f9c0a", "3f9c0a"]


# --- The signature --------------------------------------------------------------------------------


def test_the_signature_verifies_with_the_shared_secret(http_server: HTTPServer) -> None:
    request = send_one(http_server)
    assert verify_signature(request.body, request.headers["tidings-signature"], SECRET)


def test_the_signature_fails_with_the_wrong_secret(http_server: HTTPServer) -> None:
    request = send_one(http_server)
    assert not verify_signature(request.body, request.headers["tidings-signature"], "whsec-someone-else")


def test_the_signature_fails_for_a_tampered_body(http_server: HTTPServer) -> None:
    request = send_one(http_server)
    tampered = request.body.replace(b"bea@example.com", b"eve@example.com")
    assert not verify_signature(tampered, request.headers["tidings-signature"], SECRET)


def test_the_signature_fails_once_the_timestamp_is_older_than_the_tolerance(http_server: HTTPServer) -> None:
    request = send_one(http_server)
    header, sent_at = request.headers["tidings-signature"], int(request.headers["tidings-timestamp"])
    assert verify_signature(request.body, header, SECRET, tolerance=300, now=sent_at + 300)
    assert not verify_signature(request.body, header, SECRET, tolerance=300, now=sent_at + 301)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=1700000000", "t=soon,v1=abc", "garbage"])
def test_a_missing_or_malformed_signature_header_fails(header: str | None) -> None:
    assert not verify_signature(b"{}", header, SECRET, now=1_700_000_000)


def test_the_secret_never_appears_in_the_repr_or_in_errors(http_server: HTTPServer) -> None:
    channel = WebhookChannel("https://hooks.example.com/in?token=abc", secret=SECRET)
    assert repr(channel) == "WebhookChannel('https://hooks.example.com/in?…')"
    errors = [failure(http_server, HTTPReply(status)) for status in (401, 503)]
    errors.append(failure(http_server, HTTPReply(hang=True), read_timeout=0.1))
    for text in [repr(channel), repr(webhook(http_server)), *map(str, errors), *map(repr, errors)]:
        assert SECRET not in text


def test_an_https_url_is_sent_over_tls_trusting_the_given_context(https_server: tuple[HTTPServer, Path]) -> None:
    server, certificate = https_server
    request = send_one(server, ssl_context=ssl.create_default_context(cafile=str(certificate)))
    assert verify_signature(request.body, request.headers["tidings-signature"], SECRET)


def test_an_https_server_with_an_untrusted_certificate_is_transient(https_server: tuple[HTTPServer, Path]) -> None:
    server, _ = https_server
    with webhook(server) as channel, pytest.raises(TransientChannelError, match="SSLCertVerificationError"):
        channel.send(MESSAGE, BEA, key="k-1")


# --- Construction and connections -----------------------------------------------------------------


@pytest.mark.parametrize(("url", "refusal"), [
    ("ftp://hooks.example.com/in", "needs an http:// or https:// URL, not 'ftp://hooks.example.com/in'"),
    ("hooks.example.com/in", "needs an http:// or https:// URL"),
    ("https:///in", "'https:///in' has no host"),
    ("http://hooks.example.com:99999/in", "has a bad port"),
    ("https://ann:pa55@hooks.example.com/in", "carries credentials; pass them as headers="),
    ("https://hooks.example.com/a b", "without spaces or control characters"),
])
def test_a_bad_url_is_refused_at_construction(url: str, refusal: str) -> None:
    with pytest.raises(ChannelConfigurationError, match=re.escape(refusal)) as error:
        WebhookChannel(url, secret=SECRET)
    assert "pa55" not in str(error.value)


@pytest.mark.parametrize(("options", "refusal"), [
    ({"secret": ""}, "needs a non-empty secret"),
    ({"read_timeout": 0}, "read_timeout must be a positive number of seconds"),
    ({"connect_timeout": -1}, "connect_timeout must be a positive number of seconds"),
    ({"headers": {"Idempotency-Key": "x"}}, "sets the 'Idempotency-Key' header itself"),
    ({"headers": {"X-Token": "a\r\nInjected: yes"}}, "header 'X-Token' has CR, LF or non-ASCII"),
])
def test_a_bad_argument_is_refused_at_construction(options: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ChannelConfigurationError, match=re.escape(refusal)):
        WebhookChannel("https://hooks.example.com/in", **{"secret": SECRET, **options})


def test_the_connection_is_reused_between_sends(http_server: HTTPServer) -> None:
    with webhook(http_server) as channel:
        channel.send(MESSAGE, BEA, key="k-1")
        channel.send(MESSAGE, BEA, key="k-2")
        assert len(channel._endpoint) == 1
    assert len({request.port for request in http_server.requests}) == 1


def test_a_kept_connection_the_server_closed_is_replaced_once(http_server: HTTPServer) -> None:
    http_server.answer(HTTPReply(200, hang_up=True), HTTPReply(200))
    with webhook(http_server) as channel:
        channel.send(MESSAGE, BEA, key="k-1")
        assert http_server.hung_up.wait(5), "the server did not close the connection"
        channel.send(MESSAGE, BEA, key="k-2")
    assert [r.headers["idempotency-key"] for r in http_server.requests] == ["k-1", "k-2"]
    assert len({request.port for request in http_server.requests}) == 2


# --- Through the jobs pipeline --------------------------------------------------------------------


def test_a_503_with_retry_after_then_a_200_ends_sent_after_two_attempts(
        broker: StubBroker, engine: Engine, session: Session, mailbox: MemoryChannel, http_server: HTTPServer) -> None:
    # Given a courier's endpoint that is busy once and asks to come back in a second
    http_server.answer(HTTPReply(503, {"Retry-After": "1"}), HTTPReply(200))
    parcel = Parcel(courier=Person(name="Cy", email="cy@example.com"))
    session.add(parcel)
    session.commit()
    with webhook(http_server) as hook:
        jobs.configure(broker=broker, engine=engine, channels={"email": mailbox, "webhook": hook},
                       max_backoff_ms=5_000)  # Retry-After is honoured up to the longest backoff
        # When the parcel is released and the workers run
        parcel.release(actor="packer")
        session.commit()
        drain()
    # Then the delivery is sent on the second attempt, a second or more later, under one key
    delivery = session.scalars(select(Delivery)).one()
    assert (delivery.channel, delivery.status, delivery.attempts) == ("webhook", "sent", 2)
    first, second = http_server.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == delivery.key
    assert second.at - first.at >= 0.9
    payload = json.loads(second.body)
    assert (payload["transition"]["trigger"], payload["record"]["state"]) == ("release", "ready")
    assert mailbox.outbox == []
