"""The unsubscribe endpoint, mountable in any WSGI or ASGI application (no framework needed).

``POST ?token=…`` (what a mail client sends for RFC 8058 one-click, with the body
``List-Unsubscribe=One-Click``) checks the token and records the opt-out: ``200``, or ``400``
for a token that is malformed, tampered with or expired (nothing changes). ``GET ?token=…``
changes nothing (link scanners fetch links): it shows a small form whose button POSTs.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from .errors import RegistrationError, UnsubscribeError
from .unsubscribe_links import unsubscribe

__all__ = ["UnsubscribeEndpoint"]

_log = logging.getLogger(__name__)
_PAGE = ('<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>'
         '<body><h1>{title}</h1>{body}</body></html>')
Answer = tuple[str, bytes]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
ASGIScope = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class UnsubscribeEndpoint:
    """Answers unsubscribe links: ``endpoint.wsgi`` and ``endpoint.asgi`` are the two applications.

    Mount it at the path of the ``unsubscribe_url`` setting (e.g. ``/unsubscribe``).

    Args:
        bind: the application's engine (or, in tests, a connection whose transaction it joins): opt-outs
            are written there (``tidings_preferences``).
        secret: the ``unsubscribe_secret`` the links were signed with.
    """

    def __init__(self, bind: Engine | Connection, secret: str | bytes) -> None:
        self.bind = bind
        self._secret = secret.encode() if isinstance(secret, str) else secret

    def answer(self, method: str, query: str) -> Answer:
        """The status line and HTML page for one request (``method``, its query string)."""
        token = (parse_qs(query).get("token") or [""])[0]
        if method == "POST":
            try:
                with Session(self.bind) as session:
                    unsubscribe(session, self._secret, token)
                    session.commit()
            except UnsubscribeError as error:
                return "400 Bad Request", _page("Not unsubscribed", f"<p>{html.escape(str(error))}</p>")
            except RegistrationError as error:  # the serving process did not import the notifiers
                _log.error("Unsubscribe refused: %s", error)
                return "500 Internal Server Error", _page("Not unsubscribed", "<p>This notification is not known "
                                                          "here (its notifier module is not imported).</p>")
            return "200 OK", _page("Unsubscribed", "<p>You will not receive these notifications any more.</p>")
        if method in ("GET", "HEAD"):
            form = (f'<form method="post" action="?token={html.escape(quote(token))}">'
                    f'<button type="submit">Unsubscribe</button></form>')
            return "200 OK", _page("Unsubscribe", f"<p>Stop receiving these notifications?</p>{form}")
        return "405 Method Not Allowed", _page("Method not allowed", "<p>Use GET or POST.</p>")

    def wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application."""
        if environ["REQUEST_METHOD"] == "POST":  # read the one-click body so the connection stays usable
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        status, body = self.answer(environ["REQUEST_METHOD"], environ.get("QUERY_STRING", ""))
        start_response(status, _headers(body))
        return [body]

    async def asgi(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        """The ASGI application (HTTP only); the database work runs in a thread."""
        if scope["type"] != "http":
            return
        more = True
        while more:  # the request body (the one-click form), read and dropped
            more = bool((await receive()).get("more_body", False))
        query = scope.get("query_string", b"").decode("latin-1")
        status, body = await asyncio.to_thread(self.answer, scope["method"], query)
        await send({"type": "http.response.start", "status": int(status.split()[0]),
                    "headers": [(name.lower().encode(), value.encode()) for name, value in _headers(body)]})
        await send({"type": "http.response.body", "body": body})


def _page(title: str, body: str) -> bytes:
    return _PAGE.format(title=title, body=body).encode()


def _headers(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store")]
