"""One-click unsubscribe (RFC 8058): signed, expiring links in ``List-Unsubscribe``, and what they do.

An email notification that is not ``required`` carries ``List-Unsubscribe: <https://…?token=…>``
and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` once links are in use (the
``unsubscribe_url`` and ``unsubscribe_secret`` settings). The token names the recipient, the
notifier and the channel, and when it expires; it is signed with HMAC-SHA256, so nobody can
forge one for another recipient. :func:`unsubscribe` checks it and records the opt-out with
:func:`~notifiers.opt_out`. Templates read the same link as ``unsubscribe_url`` (a footer link);
it is ``None`` when there is none. The endpoint serving it is :class:`~notifiers.UnsubscribeEndpoint`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote, urlsplit

from sqlalchemy.orm import Session
from workflow import utcnow

from .errors import ChannelConfigurationError, UnsubscribeError
from .messages import Email, Message
from .preferences import opt_out
from .recipients import Recipient
from .registry import Registration

__all__ = ["Unsubscription", "UnsubscribeLinks", "links_in_use", "make_token", "read_token", "unsubscribe",
           "use_links"]

ONE_CLICK = "List-Unsubscribe=One-Click"
_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")
_links: UnsubscribeLinks | None = None


@dataclass(frozen=True)
class Unsubscription:
    """What a valid token asks: ``recipient`` (a ref) no longer wants ``notifier`` on ``channel``."""

    recipient: str
    notifier: str
    channel: str
    expires: dt.datetime


@dataclass(frozen=True)
class UnsubscribeLinks:
    """Where unsubscribe links point and how their tokens are signed.

    Args:
        base_url: the mounted endpoint, ``https://`` (RFC 8058), e.g. ``https://example.com/unsubscribe``.
        secret: the HMAC key of the tokens; never shown.
        days: how long a link works.

    Raises:
        ChannelConfigurationError: a URL that is not https, an empty secret, days not positive.
    """

    base_url: str
    secret: bytes = field(repr=False)
    days: int = 60

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc or parts.fragment:
            raise ChannelConfigurationError(f"Unsubscribe URL {self.base_url!r} must be https:// with a host and "
                                            f"no credentials or fragment (RFC 8058 one-click links are HTTPS).")
        if not self.secret:
            raise ChannelConfigurationError("Unsubscribe links need a non-empty secret to sign their tokens.")
        if self.days <= 0:
            raise ChannelConfigurationError(f"Unsubscribe links must work for a positive number of days, "
                                            f"not {self.days}.")

    def url(self, recipient: Recipient, notifier: str, channel: str) -> str:
        """The link for ``recipient`` to leave ``notifier`` on ``channel``, valid for :attr:`days`."""
        token = make_token(self.secret, recipient.ref, notifier, channel,
                           expires=utcnow() + dt.timedelta(days=self.days))
        return f"{self.base_url}{'&' if '?' in self.base_url else '?'}token={quote(token)}"


def use_links(links: UnsubscribeLinks | None) -> None:
    """Make ``links`` the ones composed messages carry (``None``: no unsubscribe links); the runtime's to call."""
    global _links
    _links = links


def links_in_use() -> UnsubscribeLinks | None:
    """The unsubscribe links composed messages carry now, if any."""
    return _links


def link_for(registration: Registration, recipient: Recipient, channel: str | None) -> str | None:
    """The unsubscribe link of one message, or ``None``: no links in use, a ``required`` notifier, no channel."""
    if _links is None or registration.required or channel is None or not recipient.ref:
        return None
    return _links.url(recipient, registration.name, channel)


def with_link(message: Message, url: str | None) -> Message:
    """``message`` with the two RFC 8058 headers when it is an email and ``url`` is given (its own win)."""
    if url is None or not isinstance(message, Email):
        return message
    return replace(message, headers={"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK,
                                     **message.headers})


def make_token(secret: bytes, recipient: str, notifier: str, channel: str, *, expires: dt.datetime) -> str:
    """A signed token naming ``recipient`` (a ref), ``notifier`` and ``channel``, valid until ``expires``."""
    payload = json.dumps({"r": recipient, "n": notifier, "c": channel, "x": int(expires.timestamp())},
                         separators=(",", ":"), ensure_ascii=False).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def read_token(secret: bytes, token: str) -> Unsubscription:
    """What ``token`` asks, once its signature and expiry are checked.

    Raises:
        UnsubscribeError: the token is malformed, its signature does not match (tampered, or
            another secret), or it has expired.
    """
    head, _, signature = token.partition(".") if isinstance(token, str) else ("", "", "")
    payload, mac = _unb64(head), _unb64(signature)
    if payload is None or mac is None or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise UnsubscribeError("This unsubscribe link is not valid: it was changed or not made here.")
    fields = json.loads(payload)
    expires = dt.datetime.fromtimestamp(fields["x"], dt.timezone.utc)
    if expires <= utcnow():
        raise UnsubscribeError(f"This unsubscribe link expired on {expires:%Y-%m-%d}; use the one in a newer "
                               f"message, or your notification settings.")
    return Unsubscription(fields["r"], fields["n"], fields["c"], expires)


def unsubscribe(session: Session, secret: bytes, token: str) -> Unsubscription:
    """Check ``token`` and record the opt-out it asks for, in the caller's transaction.

    Raises:
        UnsubscribeError: the token is not valid (see :func:`read_token`).
    """
    asked = read_token(secret, token)
    opt_out(session, asked.recipient, notifier=asked.notifier, channel=asked.channel)
    return asked


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"tidings-unsubscribe." + payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    """``text`` decoded, or ``None`` unless it is exactly what :func:`_b64` writes (one spelling per token)."""
    if not _URLSAFE.fullmatch(text):
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None
