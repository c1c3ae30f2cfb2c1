"""``SMSChannel`` against a real HTTP server on loopback: form and JSON bodies, credentials, outcomes."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qs

import pytest
from notifiers import (
    ChannelConfigurationError,
    PermanentChannelError,
    Recipient,
    SMSChannel,
    Text,
    TransientChannelError,
)

from tests.servers import HTTPReply, HTTPServer

pytestmark = pytest.mark.integration

CARL = Recipient(addresses={"phone": "+49 30 1234567"}, name="Carl", ref="User:3")


def sms(server: HTTPServer, **options: Any) -> SMSChannel:
    return SMSChannel(server.url, **{"sender": "Tidings", **options})


def test_a_text_is_posted_as_a_form_with_the_phone_the_sender_and_the_body(http_server: HTTPServer) -> None:
    with sms(http_server) as channel:
        channel.send(Text("Your code: 1234"), CARL, key="k-1")
    [request] = http_server.requests
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body.decode()) == {"to": ["+49301234567"], "from": ["Tidings"], "text": ["Your code: 1234"]}
    assert request.headers["idempotency-key"] == "k-1"


def test_a_json_body_uses_the_gateway_field_names(http_server: HTTPServer) -> None:
    with sms(http_server, body="json", fields={"to": "To", "text": "Body"}) as channel:
        channel.send(Text("hi"), CARL, key="k-1")
    [request] = http_server.requests
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"To": "+49301234567", "from": "Tidings", "Body": "hi"}


def test_a_username_and_password_are_sent_as_basic_authentication(http_server: HTTPServer) -> None:
    with sms(http_server, username="acct", password="s3cret") as channel:
        channel.send(Text("hi"), CARL, key="k-1")
        assert "s3cret" not in repr(channel)
    assert http_server.requests[0].headers["authorization"] == "Basic " + base64.b64encode(b"acct:s3cret").decode()


def test_a_token_is_sent_as_a_bearer_token(http_server: HTTPServer) -> None:
    with sms(http_server, token="t0ken") as channel:
        channel.send(Text("hi"), CARL, key="k-1")
    assert http_server.requests[0].headers["authorization"] == "Bearer t0ken"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_transient_with_retry_after(http_server: HTTPServer, status: int) -> None:
    http_server.answer(HTTPReply(status, {"Retry-After": "30"}))
    with sms(http_server) as channel, pytest.raises(TransientChannelError, match=f"answered {status}") as error:
        channel.send(Text("hi"), CARL, key="k-1")
    assert error.value.retry_after == 30


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_are_permanent_with_the_answer_quoted(http_server: HTTPServer, status: int) -> None:
    http_server.answer(HTTPReply(status, body=b'{"error": "invalid number"}'))
    with sms(http_server) as channel, pytest.raises(PermanentChannelError, match=f"answered {status}.*invalid number"):
        channel.send(Text("hi"), CARL, key="k-1")


def test_a_gateway_that_does_not_answer_in_time_is_transient(http_server: HTTPServer) -> None:
    http_server.answer(HTTPReply(hang=True))
    with sms(http_server, read_timeout=0.2) as channel, pytest.raises(TransientChannelError, match="read_timeout"):
        channel.send(Text("hi"), CARL, key="k-1")


def test_a_recipient_without_a_phone_is_refused_permanently(http_server: HTTPServer) -> None:
    with sms(http_server) as channel, pytest.raises(PermanentChannelError, match="has no phone"):
        channel.send(Text("hi"), Recipient("ann@example.com"), key="k-1")
    assert http_server.requests == []


@pytest.mark.parametrize(("options", "refusal"), [
    ({"sender": ""}, "needs a sender="),
    ({"body": "xml"}, "body='xml' is not one of form, json"),
    ({"fields": {"phone": "To"}}, "fields= names 'phone'"),
    ({"token": "t", "password": "p"}, "token= or username= and password=, not both"),
    ({"username": "acct"}, "needs both username= and password="),
    ({"password": "a\r\nX: y", "username": "u"}, "contain CR, LF"),
])
def test_a_bad_argument_is_refused_at_construction(options: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ChannelConfigurationError, match=re.escape(refusal)):
        SMSChannel("https://sms.example.com/send", **{"sender": "Tidings", **options})


def test_credentials_in_the_url_are_refused_without_being_shown() -> None:
    with pytest.raises(ChannelConfigurationError, match="carries credentials; pass them as username=") as error:
        SMSChannel("https://acct:s3cret@sms.example.com/send", sender="Tidings")
    assert "s3cret" not in str(error.value)
