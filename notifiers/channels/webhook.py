"""``WebhookChannel``: POSTs each notification as signed JSON to an HTTP endpoint.

Signed by default as Standard Webhooks specify (``webhook-id``: the delivery key, the same on
every attempt; ``webhook-timestamp``; ``webhook-signature: v1,<base64>``), so receivers verify
with a reference library; ``signing="tidings"`` keeps the older ``Tidings-Signature`` for
receivers written against it (see :mod:`notifiers.channels.signing`). Each attempt is signed
afresh, so a retry hours later is not stale; the delivery key (also ``"key"`` in the signed body)
lets the receiver drop a duplicate. An endpoint answering ``410 Gone`` is disabled: later
deliveries to it are skipped (see :mod:`notifiers.endpoints`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from workflow import utcnow
from workflow.clock import aware

from .. import endpoints
from ..errors import ChannelConfigurationError, EndpointDisabled, EndpointGone, MessageError, TransientChannelError
from ..messages import Email, Message
from ..recipients import Recipient
from .base import Channel
from .http import HTTPEndpoint, shown_url, user_agent
from .signing import SIGNING_SCHEMES, secret_key, signed_headers

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from ..event import Event

__all__ = ["WebhookChannel"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_RESERVED = frozenset({"content-type", "content-length", "host", "idempotency-key", "tidings-signature",
                       "tidings-timestamp", "webhook-id", "webhook-timestamp", "webhook-signature"})


class WebhookChannel(Channel):
    """POSTs each notification as JSON, signed with a shared secret, to one URL.

    A 2xx answer means sent. 408, 429, 5xx, connection failures and timeouts are transient
    (``retry_after`` from a ``Retry-After`` header, in seconds or as an HTTP date); any other
    answer is permanent, with the status and the start of the body; a ``410 Gone`` also disables
    the endpoint (with :meth:`attach`, in the database), so later deliveries are skipped. Redirects
    are not followed. One connection is kept per worker thread and re-opened when the server has closed it.

    Args:
        url: the endpoint, ``http://`` or ``https://``; the query string is kept but never shown.
        secret: the key of the HMAC-SHA256 signature, ``whsec_<base64>`` as Standard Webhooks write
            it, or a raw string or bytes; never shown in reprs or errors.
        signing: ``"standard"`` (Standard Webhooks, the default) or ``"tidings"`` (``Tidings-Signature``).
        kind: the channel name used in ``@on(..., channels=[...])``, sent as ``"channel"``.
        connect_timeout: seconds to wait for the TCP (and TLS) connection.
        read_timeout: seconds to wait for each read of the answer.
        headers: more headers to send, such as ``Authorization``; those the channel sets itself
            (``Content-Type``, the signature's) cannot be replaced.
        ssl_context: for ``https://``, a context to use instead of the default (a private CA).

    Raises:
        ChannelConfigurationError: a URL that is not http(s), has no host, a bad port or
            credentials in it; an empty or malformed secret; an unknown signing scheme; a timeout
            that is not positive; a bad header.
    """

    accepts: ClassVar[tuple[type[Message], ...]] = (Email,)

    def __init__(
        self,
        url: str,
        *,
        secret: str | bytes,
        signing: str = "standard",
        kind: str = "webhook",
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._endpoint = HTTPEndpoint(url, owner="WebhookChannel", credentials_hint="headers={'Authorization': ...}",
                                      connect_timeout=connect_timeout, read_timeout=read_timeout,
                                      ssl_context=ssl_context)
        shown = shown_url(self._endpoint.parts)
        if signing not in SIGNING_SCHEMES:
            raise ChannelConfigurationError(f"WebhookChannel {shown!r} signing={signing!r} is not one of "
                                            f"{', '.join(map(repr, SIGNING_SCHEMES))}.")
        self.url, self.kind, self.signing, self.shown_url = url, kind, signing, shown
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._secret = secret_key(secret, owner=f"WebhookChannel {shown!r}")
        self._headers = {"User-Agent": user_agent(), **_checked(headers or {})}
        self._bind: Engine | Connection | None = None
        self._gone_at: dt.datetime | None = None  # without a database: disabled for this process only

    def __repr__(self) -> str:
        kind = "" if self.kind == "webhook" else f", kind={self.kind!r}"
        return f"WebhookChannel({shown_url(self._endpoint.parts)!r}{kind})"

    def attach(self, bind: Engine | Connection) -> None:
        """Keep the disabled state of the endpoint in ``bind``'s ``tidings_disabled_endpoints``."""
        self._bind = bind

    def send(self, message: Email, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """POST ``message`` for ``to`` with ``key`` as its delivery id; return on a 2xx answer.

        Raises:
            EndpointDisabled: the endpoint answered 410 Gone earlier; nothing is sent.
            EndpointGone: it answers 410 Gone now; it is disabled from then on.
            TransientChannelError: 408, 429 or 5xx answers, connection failures and timeouts.
            PermanentChannelError: any other answer, e.g. 400, 401, 404 or 422.
            MessageError: the message has no body, or the transition's context is not JSON.
        """
        gone_at = self._gone_at if self._bind is None else self._stored(endpoints.disabled_at, self._bind, self.url)
        if gone_at is not None:
            raise EndpointDisabled(f"{self!r} is disabled: it answered 410 Gone at {gone_at:%Y-%m-%d %H:%M:%S} UTC; "
                                   f"re-enable it with `tidings webhooks enable {self.shown_url}`.", channel=self.kind)
        body = _body(message, to, key=key, event=event, kind=self.kind)
        headers = {**self._headers, "Content-Type": "application/json",
                   **signed_headers(self.signing, self._secret, body, key, int(time.time()))}
        try:
            self._endpoint.post(body, headers, who=repr(self), channel=self.kind)
        except EndpointGone as error:
            self._disable()
            raise EndpointGone(f"{error}; the endpoint is disabled: later deliveries to it are skipped until "
                               f"`tidings webhooks enable {self.shown_url}`.", channel=self.kind,
                               endpoint=self.url) from None

    def _disable(self) -> None:
        """Record the 410: in the database when attached, else in this channel."""
        _log.warning("%r answered 410 Gone: disabled.", self)
        if self._bind is None:
            self._gone_at = utcnow()
        else:
            self._stored(endpoints.disable_endpoint, self._bind, self.url, shown=self.shown_url, channel=self.kind)

    def _stored(self, action: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``action`` on ``tidings_disabled_endpoints``; a database error is transient, as for the in-app channel.

        Raises:
            TransientChannelError: the database refused (down, or the table missing: create it with
                ``workflow.metadata.create_all(engine)``).
        """
        try:
            return action(*args, **kwargs)
        except SQLAlchemyError as error:
            raise TransientChannelError(f"{self!r}: tidings_disabled_endpoints failed: {type(error).__name__}: "
                                        f"{error}", channel=self.kind) from error

    def close(self) -> None:
        """Close every thread's connection."""
        self._endpoint.close()


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
    return aware(moment).isoformat()


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
