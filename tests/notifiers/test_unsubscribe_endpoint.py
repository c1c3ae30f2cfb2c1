"""The unsubscribe endpoint: a real one-click POST over loopback (WSGI) and an ASGI call opt the recipient out."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import workflow
from jobs import Delivery
from jobs.testing import drain
from notifiers import UnsubscribeEndpoint, make_token, preferences_of
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.app import Order

SECRET = b"unsubscribe-secret-7c1e"
PAID = "tests.app.OrderNotifier.paid"
ONE_CLICK = b"List-Unsubscribe=One-Click"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(engine: Engine) -> Iterator[WSGIServer]:
    """The endpoint's WSGI application served on 127.0.0.1 by wsgiref, in a thread."""
    server = make_server("127.0.0.1", 0, UnsubscribeEndpoint(engine, SECRET).wsgi, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def token_for(ref: str, *, days: int = 60, secret: bytes = SECRET) -> str:
    return make_token(secret, ref, PAID, "email", expires=workflow.utcnow() + dt.timedelta(days=days))


def request(server: WSGIServer, method: str, token: str) -> tuple[int, str]:
    """Send ``method /unsubscribe?token=…`` (a POST with the one-click body); the status and page."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    try:
        body = ONE_CLICK if method == "POST" else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        connection.request(method, f"/unsubscribe?token={quote(token)}", body, headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def opted_out(session: Session, ref: str) -> list[tuple[str, str, bool]]:
    session.expire_all()
    return [(p.notifier, p.channel, p.enabled) for p in preferences_of(session, ref)]


def test_a_one_click_post_opts_the_recipient_out_of_that_notifier_on_that_channel(
        served: WSGIServer, session: Session, order: Order) -> None:
    ref = f"Person:{order.buyer.id}"
    status, page = request(served, "POST", token_for(ref))
    assert status == 200 and "Unsubscribed" in page
    assert opted_out(session, ref) == [(PAID, "email", False)]


def test_after_the_post_that_notifier_skips_the_recipient(broker: Any, served: WSGIServer, session: Session,
                                                          order: Order) -> None:
    request(served, "POST", token_for(f"Person:{order.buyer.id}"))
    order.pay(actor="bea")
    session.commit()
    drain()
    by_address = {d.address: d.status for d in session.scalars(select(Delivery))}
    assert by_address == {"bea@example.com": "skipped", "sam@example.com": "sent"}


def test_a_get_changes_nothing_and_shows_a_form_that_posts(served: WSGIServer, session: Session,
                                                           order: Order) -> None:
    ref = f"Person:{order.buyer.id}"
    status, page = request(served, "GET", token_for(ref))
    assert status == 200 and '<form method="post"' in page and "<button" in page
    assert opted_out(session, ref) == []


@pytest.mark.parametrize("token", ["", "garbage", "a.b"])
def test_a_malformed_token_is_refused_with_400_and_changes_nothing(served: WSGIServer, session: Session,
                                                                   order: Order, token: str) -> None:
    status, page = request(served, "POST", token)
    assert status == 400 and "not valid" in page
    assert opted_out(session, f"Person:{order.buyer.id}") == []


def test_a_token_of_another_secret_is_refused_with_400(served: WSGIServer, session: Session, order: Order) -> None:
    ref = f"Person:{order.buyer.id}"
    status, _ = request(served, "POST", token_for(ref, secret=b"someone else's"))
    assert status == 400 and opted_out(session, ref) == []


def test_an_expired_token_is_refused_with_400(served: WSGIServer, session: Session, order: Order) -> None:
    ref = f"Person:{order.buyer.id}"
    token = token_for(ref, days=1)
    workflow.clock.advance(dt.timedelta(days=2))
    try:
        status, page = request(served, "POST", token)
    finally:
        workflow.clock.reset()
    assert status == 400 and "expired" in page and opted_out(session, ref) == []


def test_a_tampered_token_is_refused_with_400(served: WSGIServer, session: Session, order: Order) -> None:
    ref = f"Person:{order.buyer.id}"
    token = token_for(ref)
    tampered = token.replace(token[3], "A" if token[3] != "A" else "B", 1)
    status, _ = request(served, "POST", tampered)
    assert status == 400 and opted_out(session, ref) == []


def asgi_call(endpoint: UnsubscribeEndpoint, method: str, token: str) -> tuple[int, bytes]:
    """One HTTP request through the ASGI application, as an ASGI server makes it."""
    sent: list[dict[str, Any]] = []
    bodies = [{"type": "http.request", "body": ONE_CLICK, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return bodies.pop(0)

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    scope = {"type": "http", "method": method, "path": "/unsubscribe", "query_string": f"token={quote(token)}".encode()}
    asyncio.run(endpoint.asgi(scope, receive, send))
    start, body = sent
    assert dict(start["headers"])[b"content-type"] == b"text/html; charset=utf-8"
    return start["status"], body["body"]


def test_the_asgi_application_opts_out_on_a_one_click_post(engine: Engine, session: Session, order: Order) -> None:
    ref = f"Person:{order.buyer.id}"
    status, page = asgi_call(UnsubscribeEndpoint(engine, SECRET), "POST", token_for(ref))
    assert status == 200 and b"Unsubscribed" in page
    assert opted_out(session, ref) == [(PAID, "email", False)]


def test_the_asgi_application_refuses_a_bad_token_with_400(engine: Engine, session: Session, order: Order) -> None:
    status, _ = asgi_call(UnsubscribeEndpoint(engine, SECRET), "POST", "garbage")
    assert status == 400 and opted_out(session, f"Person:{order.buyer.id}") == []


def test_a_token_for_a_notifier_this_process_does_not_know_answers_500_and_changes_nothing(
        served: WSGIServer, session: Session, order: Order) -> None:
    ref = f"Person:{order.buyer.id}"
    token = make_token(SECRET, ref, "elsewhere.Notices.paid", "email", expires=workflow.utcnow() + dt.timedelta(days=1))
    status, page = request(served, "POST", token)
    assert status == 500 and "notifier module is not imported" in page
    assert opted_out(session, ref) == []
