"""The console's requests and responses, and the thin WSGI and ASGI adapters around one ``answer`` function.

The console maps a :class:`Request` to a :class:`Response` and knows no server: the WSGI and
ASGI applications below only translate. Mounted under a prefix (``SCRIPT_NAME`` in WSGI,
``root_path`` in ASGI), a request's :attr:`Request.root` is that prefix, and every link the pages
write starts with it, so the console works at ``/`` or at ``/console`` alike.
"""

from __future__ import annotations

import asyncio
import http
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Request", "Response", "asgi", "wsgi"]

_log = logging.getLogger(__name__)
MAX_BODY = 1_000_000  # bytes of a form: far more than the console's forms ever hold
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[MutableMapping[str, Any]]],
                    Callable[[MutableMapping[str, Any]], Awaitable[None]]], Awaitable[None]]


@dataclass(frozen=True)
class Request:
    """One HTTP request as the console sees it: ``path`` below the mount, ``root`` the mount's prefix."""

    method: str
    path: str
    root: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case

    def arg(self, name: str, default: str = "") -> str:
        """The first value of query parameter ``name``, stripped."""
        return (self.query.get(name) or [default])[0].strip()

    def field(self, name: str) -> str:
        """The first value of form field ``name``."""
        return (self.form.get(name) or [""])[0]

    @property
    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no cookie at all
            return {}
        return {name: morsel.value for name, morsel in jar.items()}


@dataclass
class Response:
    """A status, an HTML body (or none), and headers."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def html(cls, status: int, page: str) -> Response:
        return cls(status, page.encode(), [("Content-Type", "text/html; charset=utf-8")])

    @classmethod
    def redirect(cls, location: str) -> Response:
        """303 See Other: after a POST, the browser GETs ``location``."""
        return cls(303, b"", [("Location", location)])

    def all_headers(self) -> list[tuple[str, str]]:
        """The headers with the length and those every console page carries (no caching, no framing)."""
        return [*self.headers, ("Content-Length", str(len(self.body))), ("Cache-Control", "no-store"),
                ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "same-origin"),
                ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                            "form-action 'self'; frame-ancestors 'none'")]


def _form(content_type: str, body: bytes) -> dict[str, list[str]]:
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return {}
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def wsgi(answer: Callable[[Request], Response]) -> WSGIApp:
    """The WSGI application of ``answer``."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        request = Request(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO") or "/",
                          environ.get("SCRIPT_NAME", "").rstrip("/"),
                          parse_qs(environ.get("QUERY_STRING", "")),
                          _form(headers.get("content-type", ""), body), headers)
        response = answer(request)
        phrase = http.HTTPStatus(response.status).phrase
        start_response(f"{response.status} {phrase}", response.all_headers())
        return [response.body]

    return app


def asgi(answer: Callable[[Request], Response]) -> ASGIApp:
    """The ASGI application of ``answer`` (HTTP only); ``answer`` runs in a thread (it reads the database)."""

    async def app(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
                  send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")[:MAX_BODY - len(body)]
            more = bool(message.get("more_body", False))
        root = str(scope.get("root_path", "")).rstrip("/")
        path = str(scope["path"])
        if root and path.startswith(root):  # Starlette's Mount keeps the prefix in path, and names it root_path
            path = path[len(root):]
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        request = Request(scope["method"], path or "/", root, parse_qs(scope.get("query_string", b"").decode("latin-1")),
                          _form(headers.get("content-type", ""), body), headers)
        response = await asyncio.to_thread(answer, request)
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in response.all_headers()]})
        await send({"type": "http.response.body", "body": response.body})

    return app
