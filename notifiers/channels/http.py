"""``HTTPEndpoint``: POST to one URL on a kept-alive connection per thread, and what its answers mean.

Shared by the channels that talk HTTP (webhooks, SMS gateways): a 2xx answer is sent; 408, 429,
5xx, connection failures and timeouts are transient (with ``Retry-After``); any other answer is
permanent. Redirects are not followed.
"""

from __future__ import annotations

import datetime as dt
import http.client
import logging
import ssl
import time
from email.message import Message
from email.utils import parsedate_to_datetime
from functools import cache
from importlib import metadata
from urllib.parse import SplitResult, urlsplit

from ..errors import ChannelConfigurationError, EndpointGone, PermanentChannelError, TransientChannelError
from .connections import ThreadConnections

__all__ = ["HTTPEndpoint", "parse_url", "shown_url", "user_agent"]

_log = logging.getLogger(__name__)

_EXCERPT = 200  # characters of an error body quoted in the error
_DRAIN = 65_536  # bytes of a response read to keep the connection; a longer body closes it
_STALE = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)  # what a connection the server closed raises


class HTTPEndpoint:
    """One URL, POSTed to on one kept-alive connection per worker thread, re-opened when the server closed it.

    Args:
        url: ``http://`` or ``https://``, checked by :func:`parse_url`.
        owner: the channel class's name, for configuration errors.
        credentials_hint: how the owner takes credentials instead of in the URL.
        connect_timeout, read_timeout: seconds, positive.
        ssl_context: for ``https://``, a context to use instead of the default.

    Raises:
        ChannelConfigurationError: a bad URL or a timeout that is not positive.
    """

    def __init__(self, url: str, *, owner: str, credentials_hint: str, connect_timeout: float, read_timeout: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.parts = parse_url(url, owner, credentials_hint)
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not value > 0:
                raise ChannelConfigurationError(f"{owner} {name} must be a positive number of seconds, "
                                                f"not {value!r}.")
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._ssl_context = ssl_context or (ssl.create_default_context() if self.parts.scheme == "https" else None)
        self._connections: ThreadConnections[http.client.HTTPConnection] = ThreadConnections(
            lambda connection: connection.close())

    def __len__(self) -> int:
        """How many connections are open, across threads."""
        return len(self._connections)

    def post(self, body: bytes, headers: dict[str, str], *, who: str, channel: str) -> None:
        """POST ``body``; return on a 2xx answer (``who`` names the channel in errors).

        Raises:
            TransientChannelError: 408, 429 or 5xx answers, connection failures and timeouts.
            EndpointGone: a 410 answer: the endpoint says it is gone for good.
            PermanentChannelError: any other answer, e.g. 400, 401, 404 or 422.
        """
        status, reason, answer, excerpt = self._post(body, headers, who, channel)
        if 200 <= status < 300:
            return
        text = f"{who} answered {status} {reason}".rstrip() + (f": {excerpt}" if excerpt else "")
        if status in (408, 429) or status >= 500:
            raise TransientChannelError(text, channel=channel, retry_after=retry_after(answer.get("Retry-After")))
        if status == 410:
            raise EndpointGone(text, channel=channel, endpoint=self.parts.geturl())
        if 300 <= status < 400:
            text += f" (redirects are not followed; Location: {answer.get('Location', 'none')})"
        raise PermanentChannelError(text, channel=channel)

    def _post(self, body: bytes, headers: dict[str, str], who: str, channel: str) -> tuple[int, str, Message, str]:
        """Send the request on this thread's connection; its status, reason, headers and body excerpt."""
        while True:
            connection, reused = self._connection(who, channel)
            try:
                connection.request("POST", _target(self.parts), body, headers)
                response = connection.getresponse()
                data = response.read(_DRAIN)
                if not response.isclosed():  # a body longer than we read: the connection is unusable
                    self._connections.drop()
                return response.status, response.reason, response.headers, _excerpt(data)
            except _STALE as error:
                self._connections.drop()
                if not reused:
                    raise TransientChannelError(f"{who} failed: {type(error).__name__}: {error}",
                                                channel=channel) from None
                # The kept connection had been closed by the server: try once more on a new one.
                _log.debug("%s: the kept connection was closed (%s); reconnecting.", who, error)
            except TimeoutError:
                self._connections.drop()
                raise TransientChannelError(f"{who} did not answer within {self.read_timeout} s "
                                            f"(read_timeout).", channel=channel) from None
            except (OSError, http.client.HTTPException) as error:
                self._connections.drop()
                raise TransientChannelError(f"{who} failed: {type(error).__name__}: {error}",
                                            channel=channel) from None

    def _connection(self, who: str, channel: str) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, open; and whether it was open already (so may have gone stale).

        Raises:
            TransientChannelError: the connection could not be made within ``connect_timeout``.
        """
        connection = self._connections.current()
        if connection is not None and connection.sock is not None:
            return connection, True
        if connection is None:
            connection = self._connections.keep(self._new_connection())
        try:
            connection.connect()
        except OSError as error:
            self._connections.drop()
            reason = (f"within {self.connect_timeout} s (connect_timeout)" if isinstance(error, TimeoutError)
                      else f"({type(error).__name__}: {error})")
            raise TransientChannelError(f"{who} could not connect {reason}.", channel=channel) from None
        connection.sock.settimeout(self.read_timeout)
        return connection, False

    def _new_connection(self) -> http.client.HTTPConnection:
        host, port = self.parts.hostname or "", self.parts.port
        if self.parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.connect_timeout, context=self._ssl_context)
        return http.client.HTTPConnection(host, port, timeout=self.connect_timeout)

    def close(self) -> None:
        """Close every thread's connection."""
        self._connections.close()


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date; ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(when.timestamp() - time.time(), 0.0)


def parse_url(url: str, owner: str, credentials_hint: str) -> SplitResult:
    """The parts of an http(s) URL, checked.

    Raises:
        ChannelConfigurationError: naming what is wrong with the URL (never its credentials or query).
    """
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 for c in url):
        raise ChannelConfigurationError(f"{owner} needs a URL without spaces or control characters, not {url!r}.")
    parts = urlsplit(url)
    shown = shown_url(parts)
    if parts.scheme not in ("http", "https"):
        raise ChannelConfigurationError(f"{owner} needs an http:// or https:// URL, not {shown!r}.")
    if not parts.hostname:
        raise ChannelConfigurationError(f"{owner} URL {shown!r} has no host.")
    if "@" in parts.netloc:
        raise ChannelConfigurationError(
            f"{owner} URL {shown!r} carries credentials; pass them as {credentials_hint} "
            f"instead, where they stay out of reprs and logs.")
    try:
        parts.port
    except ValueError as error:
        raise ChannelConfigurationError(f"{owner} URL {shown!r} has a bad port: {error}.") from None
    return parts


def shown_url(parts: SplitResult) -> str:
    """The URL as reprs and errors show it: no credentials, no query string (tokens live there)."""
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" + ("?…" if parts.query else "")


def _target(parts: SplitResult) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _excerpt(data: bytes) -> str:
    text = " ".join(data.decode(errors="replace").split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


@cache
def user_agent() -> str:
    """``Tidings/<version>``, the User-Agent of Tidings' HTTP requests."""
    try:
        return f"Tidings/{metadata.version('tidings')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout that is not installed
        return "Tidings"
