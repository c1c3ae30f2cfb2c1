"""How webhook requests are signed: Standard Webhooks (the default) or Tidings' own ``Tidings-Signature``.

Standard Webhooks (https://www.standardwebhooks.com): ``webhook-id`` is the delivery key (the
same on every attempt), ``webhook-timestamp`` the attempt's time in Unix seconds, and
``webhook-signature`` is ``v1,<base64>``, the HMAC-SHA256 of ``<id>.<timestamp>.<body>``.
Receivers verify it with the reference libraries (``standardwebhooks`` for Python, Svix's...).

The secret: a ``whsec_<base64>`` string is the base64-decoded key, as the specification writes
it; any other string is used as it is (its UTF-8 bytes), and ``bytes`` are the key itself. A
receiver using a reference library with such a raw secret passes it as bytes.

``Tidings-Signature: t=<unix>,v1=<hex>`` (Stripe's shape) is kept for receivers written
against it: the lowercase hex HMAC-SHA256 of ``<unix>.<body>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

from ..errors import ChannelConfigurationError

__all__ = ["SIGNING_SCHEMES", "secret_key", "signed_headers", "verify_signature", "verify_standard"]

SIGNING_SCHEMES = ("standard", "tidings")
_PREFIX = "whsec_"
_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # Unix seconds; more digits would be past the year 30 million
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def secret_key(secret: str | bytes, *, owner: str = "WebhookChannel") -> bytes:
    """The HMAC key of ``secret``: ``whsec_<base64>`` decoded, another string's UTF-8 bytes, bytes as given.

    Raises:
        ChannelConfigurationError: an empty secret, or a ``whsec_`` one that is not base64.
    """
    if isinstance(secret, bytes):
        key = secret
    elif secret.startswith(_PREFIX):
        key = _decoded(secret[len(_PREFIX):]) or b""
        if not key:
            raise ChannelConfigurationError(f"{owner} secret starts with {_PREFIX!r} but the rest is not base64; "
                                            f"give the secret as the receiver shows it, or without the prefix.")
    else:
        key = secret.encode()
    if not key:
        raise ChannelConfigurationError(f"{owner} needs a non-empty secret: receivers verify the signature with it.")
    return key


def signed_headers(scheme: str, key: bytes, body: bytes, delivery_key: str, timestamp: int) -> dict[str, str]:
    """The signature headers of one attempt under ``scheme`` (``"standard"`` or ``"tidings"``)."""
    if scheme == "tidings":
        return {"Idempotency-Key": delivery_key, "Tidings-Timestamp": str(timestamp),
                "Tidings-Signature": f"t={timestamp},v1={_hex(key, timestamp, body)}"}
    return {"webhook-id": delivery_key, "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{_standard(key, delivery_key, timestamp, body)}"}


def verify_standard(body: bytes, headers: Mapping[str, str], secret: str | bytes, *, tolerance: float = 300,
                    now: float | None = None) -> bool:
    """Whether ``headers`` (``webhook-id``, ``-timestamp``, ``-signature``) sign ``body`` with ``secret``, recently.

    The same answer as the reference library's ``Webhook(secret).verify``, as a boolean: any
    missing, malformed or hostile header is ``False``, never an exception. Several space-separated
    ``v1,`` signatures may be given (while a secret is rotated); one match is enough.
    """
    try:
        found = {str(name).lower(): value for name, value in headers.items()}
        key = secret_key(secret)
    except (AttributeError, TypeError, ChannelConfigurationError):
        return False
    delivery_key, stamp, signatures = (found.get(f"webhook-{part}") for part in ("id", "timestamp", "signature"))
    if not (isinstance(delivery_key, str) and isinstance(stamp, str) and isinstance(signatures, str)) \
            or not delivery_key or not _recent(stamp, tolerance, now):
        return False
    expected = base64.b64decode(_standard(key, delivery_key, int(stamp), body))
    given = [_decoded(value) for version, _, value in (s.partition(",") for s in signatures.split(" "))
             if version == "v1"]
    return any(signature is not None and hmac.compare_digest(expected, signature) for signature in given)


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
    if len(stamps) != 1 or not _recent(stamps[0], tolerance, now) or not signatures:
        return False
    try:
        key = secret_key(secret)
    except (AttributeError, TypeError, ChannelConfigurationError):
        return False
    expected = _hex(key, int(stamps[0]), body).encode()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


def _recent(stamp: str, tolerance: float, now: float | None) -> bool:
    """Whether ``stamp`` is Unix seconds within ``tolerance`` of ``now``; at most 15 digits, so a float holds it."""
    if not _TIMESTAMP.fullmatch(stamp):
        return False
    return abs((time.time() if now is None else now) - int(stamp)) <= tolerance


def _decoded(text: str) -> bytes | None:
    """``text`` as standard base64 (padding optional), or ``None``."""
    if not text.isascii() or not _BASE64.fullmatch(text):
        return None
    stripped = text.rstrip("=")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _standard(key: bytes, delivery_key: str, timestamp: int, body: bytes) -> str:
    signed = f"{delivery_key}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _hex(key: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
