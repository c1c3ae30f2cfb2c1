"""``SMSChannel``: sends each :class:`~notifiers.Text` to a phone through an HTTP SMS gateway."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlencode

from ..errors import ChannelConfigurationError, MessageError, PermanentChannelError
from ..messages import Message, Text
from ..recipients import Recipient
from .base import Channel
from .http import HTTPEndpoint, shown_url, user_agent

if TYPE_CHECKING:
    from ..event import Event

__all__ = ["SMSChannel"]

_BODIES = ("form", "json")
_FIELDS = {"to": "to", "from": "from", "text": "text"}


class SMSChannel(Channel):
    """POSTs each text to an SMS gateway: the recipient's phone, the sender and the body.

    The request is a form (``to=...&from=...&text=...``) or a JSON object, with field names the
    gateway expects (``fields={"to": "To", "from": "From", "text": "Body"}`` for Twilio's), and
    ``Idempotency-Key`` set to the delivery key. A 2xx answer means sent; 408, 429, 5xx,
    connection failures and timeouts are transient (with ``Retry-After``); any other answer is
    permanent (see :class:`~notifiers.channels.http.HTTPEndpoint`).

    Args:
        url: the gateway's endpoint, ``http://`` or ``https://``.
        sender: the sender id or number the gateway shows (``"+4930123456"``, ``"Tidings"``).
        username, password: HTTP Basic credentials; or
        token: a bearer token (``Authorization: Bearer ...``). Never shown in reprs or errors.
        body: ``"form"`` or ``"json"``.
        fields: gateway names for ``to``, ``from`` and ``text``, replacing the defaults.
        kind: the channel name used in ``@on(..., channels=[...])``.
        connect_timeout, read_timeout: seconds.
        ssl_context: for ``https://``, a context to use instead of the default.

    Raises:
        ChannelConfigurationError: a bad URL, no sender, both a token and a password, an unknown
            body or field name, a timeout that is not positive.
    """

    kind = "sms"
    address_kind = "phone"
    accepts: ClassVar[tuple[type[Message], ...]] = (Text,)

    def __init__(self, url: str, *, sender: str, username: str | None = None, password: str | None = None,
                 token: str | None = None, body: str = "form", fields: Mapping[str, str] | None = None,
                 kind: str = "sms", connect_timeout: float = 5.0, read_timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._endpoint = HTTPEndpoint(url, owner="SMSChannel", credentials_hint="username= and password=, or token=",
                                      connect_timeout=connect_timeout, read_timeout=read_timeout,
                                      ssl_context=ssl_context)
        if not isinstance(sender, str) or not sender.strip() or not sender.isprintable():
            raise ChannelConfigurationError(f"SMSChannel needs a sender= (a number or a name), not {sender!r}.")
        if body not in _BODIES:
            raise ChannelConfigurationError(f"SMSChannel body={body!r} is not one of {', '.join(_BODIES)}.")
        unknown = sorted(set(fields or {}) - set(_FIELDS))
        if unknown:
            raise ChannelConfigurationError(f"SMSChannel fields= names {', '.join(map(repr, unknown))}; it renames "
                                            f"only {', '.join(map(repr, _FIELDS))}.")
        self.url, self.sender, self.body, self.kind = url, sender.strip(), body, kind
        self._fields = {**_FIELDS, **(fields or {})}
        self._headers = {"User-Agent": user_agent(), **_authorization(username, password, token),
                         "Content-Type": "application/json" if body == "json" else "application/x-www-form-urlencoded"}

    def __repr__(self) -> str:
        kind = "" if self.kind == "sms" else f", kind={self.kind!r}"
        return f"SMSChannel({shown_url(self._endpoint.parts)!r}{kind})"

    def send(self, message: Text, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Send ``message`` to the phone of ``to``, with ``key`` as the idempotency key.

        Raises:
            PermanentChannelError: ``to`` has no phone, or the gateway refused the request (4xx).
            TransientChannelError: 408, 429 or 5xx answers, connection failures and timeouts.
            MessageError: ``message`` is not a rendered :class:`~notifiers.Text`.
        """
        phone = to.address_for("phone")
        if phone is None:
            raise PermanentChannelError(f"{self!r}: recipient {to} has no phone.", channel=self.kind)
        if not isinstance(message, Text) or message.body is None:
            raise MessageError(f"{self!r} sends a rendered Text, not {message!r}.")
        values = {self._fields["to"]: phone, self._fields["from"]: self.sender, self._fields["text"]: message.body}
        payload = json.dumps(values).encode() if self.body == "json" else urlencode(values).encode()
        self._endpoint.post(payload, {**self._headers, "Idempotency-Key": key}, who=repr(self), channel=self.kind)

    def close(self) -> None:
        """Close every thread's connection."""
        self._endpoint.close()


def _authorization(username: str | None, password: str | None, token: str | None) -> dict[str, str]:
    """The ``Authorization`` header for the credentials given, if any.

    Raises:
        ChannelConfigurationError: a token with a username or password, half a Basic pair, or CR/LF in one.
    """
    given = [value for value in (username, password, token) if value is not None]
    if any("\r" in value or "\n" in value or not value.isprintable() for value in given):
        raise ChannelConfigurationError("SMSChannel credentials contain CR, LF or unprintable characters.")
    if token is not None:
        if username is not None or password is not None:
            raise ChannelConfigurationError("SMSChannel takes token= or username= and password=, not both.")
        return {"Authorization": f"Bearer {token}"}
    if (username is None) != (password is None):
        raise ChannelConfigurationError("SMSChannel needs both username= and password= for Basic authentication.")
    if username is None or password is None:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")}
