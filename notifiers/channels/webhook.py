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
import json
import logging
import re
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ChannelConfigurationError, MessageError
from ..messages import Email, Message
from ..recipients import Recipient
from .base import Channel
from .http import HTTPEndpoint, shown_url, user_agent

if TYPE_CHECKING:
    from ..event import Event

__all__ = ["WebhookChannel", "verify_signature"]

_log = logging.getLogger(__name__)

_RESERVED = frozenset({"content-type", "content-length", "host", "idempotency-key", "tidings-signature",
                       "tidings-timestamp"})
_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # Unix seconds; more digits would be past the year 30 million


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

    accepts: ClassVar[tuple[type[Message], ...]] = (Email,)

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
        self._endpoint = HTTPEndpoint(url, owner="WebhookChannel", credentials_hint="headers={'Authorization': ...}",
                                      connect_timeout=connect_timeout, read_timeout=read_timeout,
                                      ssl_context=ssl_context)
        if not secret:
            raise ChannelConfigurationError(
                f"WebhookChannel {shown_url(self._endpoint.parts)!r} needs a non-empty secret: receivers verify "
                f"the signature with it.")
        self.url, self.kind = url, kind
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._secret = secret.encode() if isinstance(secret, str) else bytes(secret)
        self._headers = {"User-Agent": user_agent(), **_checked(headers or {})}

    def __repr__(self) -> str:
        kind = "" if self.kind == "webhook" else f", kind={self.kind!r}"
        return f"WebhookChannel({shown_url(self._endpoint.parts)!r}{kind})"

    def send(self, message: Email, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """POST ``message`` for ``to`` with ``key`` as its idempotency key; return on a 2xx answer.

        Raises:
            TransientChannelError: 408, 429 or 5xx answers, connection failures and timeouts.
            PermanentChannelError: any other answer, e.g. 400, 401, 404, 410 or 422.
            MessageError: the message has no body, or the transition's context is not JSON.
        """
        body = _body(message, to, key=key, event=event, kind=self.kind)
        self._endpoint.post(body, self._signed_headers(body, key), who=repr(self), channel=self.kind)

    def _signed_headers(self, body: bytes, key: str) -> dict[str, str]:
        timestamp = int(time.time())
        return {**self._headers, "Content-Type": "application/json", "Idempotency-Key": key,
                "Tidings-Timestamp": str(timestamp),
                "Tidings-Signature": f"t={timestamp},v1={_sign(self._secret, timestamp, body)}"}

    def close(self) -> None:
        """Close every thread's connection."""
        self._endpoint.close()


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
