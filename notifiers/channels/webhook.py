"""``WebhookChannel``: POSTs each notification as signed JSON to an HTTP endpoint.

The signature scheme (Stripe's): the channel sends ``Tidings-Signature: t=<unix>,v1=<hex>``,
where ``<unix>`` is the time of the attempt in whole seconds and ``<hex>`` is the lowercase
HMAC-SHA256, keyed with the shared secret, of ``<unix>`` + ``"."`` + the raw request body.
``Tidings-Timestamp`` repeats ``<unix>``. A receiver recomputes the HMAC over the bytes it
received and refuses a timestamp outside its replay window; :func:`verify_signature` does both.
Each attempt is signed afresh, so a retry hours later is not stale; ``Idempotency-Key`` (the
delivery key, also ``"key"`` in the signed body) is the same on every attempt, so the receiver
can drop a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import re
import ssl
import time
from collections.abc import Mapping
from email.message import Message
from email.utils import parsedate_to_datetime
from functools import cache
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import SplitResult, urlsplit

from ..errors import ChannelConfigurationError, MessageError, PermanentChannelError, TransientChannelError
from ..messages import Email
from ..messages import Message as Notification
from ..recipients import Recipient
from .base import Channel
from .connections import ThreadConnections

if TYPE_CHECKING:
    from ..event import Event

__all__ = ["WebhookChannel", "verify_signature"]

_log = logging.getLogger(__name__)

_RESERVED = frozenset({"content-type", "content-length", "host", "idempotency-key", "tidings-signature",
                       "tidings-timestamp"})
_EXCERPT = 200  # characters of an error body quoted in the error
_DRAIN = 65_536  # bytes of a response read to keep the connection; a longer body closes it
_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # Unix seconds; more digits would be past the year 30 million
_STALE = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)  # what a connection the server closed raises


class WebhookChannel(Channel):
    """POSTs each notification as JSON, signed with a shared secret, to one URL.

    A 2xx answer means sent. 408, 429, 5xx, connection failures and timeouts are transient
    (``retry_after`` from a ``Retry-After`` header, in seconds or as an HTTP date); any other
    answer is permanent, with the status and the start of the body. Redirects are not followed.
    One connection is kept per worker thread and re-opened when the server has closed it.

    Args:
        url: the endpoint, ``http://`` or ``https://``; the query string is kept but never shown.
        secret: the key of the HMAC-SHA256 signature; never shown in reprs or errors.
        kind: the channel name used in ``@on(..., channels=[...])``, sent as ``"channel"``.
        connect_timeout: seconds to wait for the TCP (and TLS) connection.
        read_timeout: seconds to wait for each read of the answer.
        headers: more headers to send, such as ``Authorization``; those the channel sets itself
            (``Content-Type``, ``Idempotency-Key``, ``Tidings-*``) cannot be replaced.
        ssl_context: for ``https://``, a context to use instead of the default (a private CA).

    Raises:
        ChannelConfigurationError: a URL that is not http(s), has no host, a bad port or
            credentials in it; an empty secret; a timeout that is not positive; a bad header.
    """

    accepts: ClassVar[tuple[type[Notification], ...]] = (Email,)

    def __init__(
        self,
        url: str,
        *,
        secret: str | bytes,
        kind: str = "webhook",
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._url = _parse_url(url)
        if not secret:
            raise ChannelConfigurationError(
                f"WebhookChannel {_shown(self._url)!r} needs a non-empty secret: receivers verify the "
                f"signature with it.")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not value > 0:
                raise ChannelConfigurationError(f"WebhookChannel {name} must be a positive number of seconds, "
                                                f"not {value!r}.")
        self.url, self.kind = url, kind
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._secret = secret.encode() if isinstance(secret, str) else bytes(secret)
        self._headers = {"User-Agent": _user_agent(), **_checked(headers or {})}
        self._ssl_context = ssl_context or (ssl.create_default_context() if self._url.scheme == "https" else None)
        self._connections: ThreadConnections[http.client.HTTPConnection] = ThreadConnections(
            lambda connection: connection.close())

    def __repr__(self) -> str:
        kind = "" if self.kind == "webhook" else f", kind={self.kind!r}"
        return f"WebhookChannel({_shown(self._url)!r}{kind})"

    def send(self, message: Email, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """POST ``message`` for ``to`` with ``key`` as its idempotency key; return on a 2xx answer.

        Raises:
            TransientChannelError: 408, 429 or 5xx answers, connection failures and timeouts.
            PermanentChannelError: any other answer, e.g. 400, 401, 404, 410 or 422.
            MessageError: the message has no body, or the transition's context is not JSON.
        """
        body = _body(message, to, key=key, event=event, kind=self.kind)
        status, reason, headers, excerpt = self._post(body, key)
        if 200 <= status < 300:
            return
        text = f"{self!r} answered {status} {reason}".rstrip() + (f": {excerpt}" if excerpt else "")
        if status in (408, 429) or status >= 500:
            raise TransientChannelError(text, channel=self.kind, retry_after=_retry_after(headers.get("Retry-After")))
        if 300 <= status < 400:
            text += f" (redirects are not followed; Location: {headers.get('Location', 'none')})"
        raise PermanentChannelError(text, channel=self.kind)

    def _post(self, body: bytes, key: str) -> tuple[int, str, Message, str]:
        """Send the request on this thread's connection; its status, reason, headers and body excerpt."""
        while True:
            connection, reused = self._connection()
            try:
                connection.request("POST", _target(self._url), body, self._signed_headers(body, key))
                response = connection.getresponse()
                data = response.read(_DRAIN)
                if not response.isclosed():  # a body longer than we read: the connection is unusable
                    self._drop()
                return response.status, response.reason, response.headers, _excerpt(data)
            except _STALE as error:
                self._drop()
                if not reused:
                    raise TransientChannelError(f"{self!r} failed: {type(error).__name__}: {error}",
                                                channel=self.kind) from None
                # The kept connection had been closed by the server: try once more on a new one.
                _log.debug("%r: the kept connection was closed (%s); reconnecting.", self, error)
            except TimeoutError:
                self._drop()
                raise TransientChannelError(f"{self!r} did not answer within {self.read_timeout} s "
                                            f"(read_timeout).", channel=self.kind) from None
            except (OSError, http.client.HTTPException) as error:
                self._drop()
                raise TransientChannelError(f"{self!r} failed: {type(error).__name__}: {error}",
                                            channel=self.kind) from None

    def _signed_headers(self, body: bytes, key: str) -> dict[str, str]:
        timestamp = int(time.time())
        return {**self._headers, "Content-Type": "application/json", "Idempotency-Key": key,
                "Tidings-Timestamp": str(timestamp),
                "Tidings-Signature": f"t={timestamp},v1={_sign(self._secret, timestamp, body)}"}

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
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
            self._drop()
            reason = (f"within {self.connect_timeout} s (connect_timeout)" if isinstance(error, TimeoutError)
                      else f"({type(error).__name__}: {error})")
            raise TransientChannelError(f"{self!r} could not connect {reason}.", channel=self.kind) from None
        connection.sock.settimeout(self.read_timeout)
        return connection, False

    def _new_connection(self) -> http.client.HTTPConnection:
        host, port = self._url.hostname or "", self._url.port
        if self._url.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.connect_timeout, context=self._ssl_context)
        return http.client.HTTPConnection(host, port, timeout=self.connect_timeout)

    def _drop(self) -> None:
        self._connections.drop()

    def close(self) -> None:
        """Close every thread's connection."""
        self._connections.close()


def verify_signature(body: bytes, header: str | None, secret: str | bytes, *, tolerance: float = 300,
                     now: float | None = None) -> bool:
    """Whether ``header`` (a ``Tidings-Signature`` value) signs ``body`` with ``secret``, recently.

    For receivers: pass the raw request body, before any JSON parsing. A timestamp more than
    ``tolerance`` seconds from ``now`` (default: the current time), either way, is refused, so a
    captured request cannot be replayed later. Several ``v1=`` signatures may be given (while a
    secret is rotated); one match is enough. A missing or malformed header is simply ``False``.
    """
    if not header or not isinstance(header, str):
        return False
    fields = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for name, _, value in fields if name == "t"]
    signatures = [value.encode() for name, _, value in fields if name == "v1" and value.isascii()]
    if len(stamps) != 1 or not _TIMESTAMP.fullmatch(stamps[0]) or not signatures:
        return False
    timestamp = int(stamps[0])  # at most 15 digits: a float holds it, however hostile the header
    if not abs((time.time() if now is None else now) - timestamp) <= tolerance:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    expected = _sign(key, timestamp, body).encode()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


def _retry_after(value: str | None) -> float | None:
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


def _sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _body(message: Email, to: Recipient, *, key: str, event: Event | None, kind: str) -> bytes:
    """The JSON payload of one notification, as UTF-8 bytes.

    Raises:
        MessageError: the message has no body, or something in it is not JSON.
    """
    if message.text is None and message.html is None:
        raise MessageError(f"Email {message.subject!r} has no body; render it first.")
    payload = {
        "key": key,
        "channel": kind,
        "transition": None if event is None else {
            "id": event.transition_id, "model": event.model, "key": event.key, "trigger": event.trigger,
            "source": event.source, "dest": event.dest, "actor": event.actor, "context": event.context,
            "created_at": _iso(event.created_at),
        },
        "record": None if event is None else {"model": event.model, "key": event.key, "state": _state(event.subject)},
        "recipient": {"address": to.address, "name": to.name, "party": to.party, "ref": to.ref, "locale": to.locale},
        "content": {"subject": message.subject, "text": message.text, "html": message.html},
    }
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as error:
        raise MessageError(f"The webhook payload of {message.subject!r} is not JSON: {error}.") from None


def _iso(moment: dt.datetime) -> str:
    """ISO 8601 with its offset; a naive time (SQLite drops the zone) is UTC, as Tidings writes it."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).isoformat()


def _state(subject: Any) -> str | None:
    state = getattr(subject, "state", None)
    return state if isinstance(state, str) else None


def _parse_url(url: str) -> SplitResult:
    """The parts of an http(s) URL, checked.

    Raises:
        ChannelConfigurationError: naming what is wrong with the URL.
    """
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 for c in url):
        raise ChannelConfigurationError(f"WebhookChannel needs a URL without spaces or control characters, "
                                        f"not {url!r}.")
    parts = urlsplit(url)
    shown = _shown(parts)
    if parts.scheme not in ("http", "https"):
        raise ChannelConfigurationError(f"WebhookChannel needs an http:// or https:// URL, not {shown!r}.")
    if not parts.hostname:
        raise ChannelConfigurationError(f"WebhookChannel URL {shown!r} has no host.")
    if "@" in parts.netloc:
        raise ChannelConfigurationError(
            f"WebhookChannel URL {shown!r} carries credentials; pass them as headers={{'Authorization': ...}} "
            f"instead, where they stay out of reprs and logs.")
    try:
        parts.port
    except ValueError as error:
        raise ChannelConfigurationError(f"WebhookChannel URL {shown!r} has a bad port: {error}.") from None
    return parts


def _shown(parts: SplitResult) -> str:
    """The URL as reprs and errors show it: no credentials, no query string (tokens live there)."""
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" + ("?…" if parts.query else "")


def _target(parts: SplitResult) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _checked(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers``, refused if one would replace the channel's own or is not a valid header.

    Raises:
        ChannelConfigurationError: naming the header, never its value (it may be a token).
    """
    for name, value in headers.items():
        if name.lower() in _RESERVED:
            raise ChannelConfigurationError(f"WebhookChannel sets the {name!r} header itself; remove it from headers=.")
        if not name or not name.isascii() or not name.isprintable() or ":" in name or " " in name:
            raise ChannelConfigurationError(f"WebhookChannel header name {name!r} is not a valid HTTP header name.")
        if "\r" in value or "\n" in value or not value.isascii():
            raise ChannelConfigurationError(f"WebhookChannel header {name!r} has CR, LF or non-ASCII in its value.")
    return dict(headers)


def _excerpt(data: bytes) -> str:
    text = " ".join(data.decode(errors="replace").split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


@cache
def _user_agent() -> str:
    try:
        return f"Tidings/{metadata.version('tidings')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout that is not installed
        return "Tidings"

