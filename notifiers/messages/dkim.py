"""``DKIMSigner``: DKIM-signs (RFC 6376) the bytes of each email, with dkimpy (the ``dkim`` extra).

Receivers such as Gmail and Yahoo check that bulk mail is authenticated: the signature covers
From, To, Subject, Date, Message-ID, Reply-To, Auto-Submitted, both unsubscribe headers
(RFC 8058 asks that ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` be signed) and the MIME
headers, those the message has. The key is checked when the signer is built, so a bad key stops
the worker at start instead of failing every mail.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from ..errors import ChannelConfigurationError, MessageError

__all__ = ["SIGNED_HEADERS", "DKIMSigner"]

SIGNED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "Auto-Submitted", "List-Unsubscribe",
                  "List-Unsubscribe-Post", "MIME-Version", "Content-Type")
_PROBE = b"From: probe@example.com\r\nSubject: probe\r\n\r\nprobe\r\n"


class DKIMSigner:
    """Signs messages as ``domain`` with the private key of ``selector`` (its public key in DNS at
    ``<selector>._domainkey.<domain>``); relaxed/relaxed canonicalization, rsa-sha256.

    Args:
        selector: the DKIM selector, e.g. ``"tidings2026"``.
        domain: the signing domain (``d=``), usually the From address's.
        private_key: the PEM private key, or ``key_path`` to read it from.

    Raises:
        ChannelConfigurationError: dkimpy is not installed, the key file cannot be read, or the
            key does not sign (not a PEM RSA key).
    """

    def __init__(self, selector: str, domain: str, *, private_key: bytes | None = None,
                 key_path: str | Path | None = None) -> None:
        self._dkim = _dkimpy()
        if private_key is None:
            if key_path is None:
                raise ChannelConfigurationError("DKIMSigner needs private_key= or key_path= (TIDINGS_DKIM_KEY_PATH).")
            try:
                private_key = Path(key_path).read_bytes()
            except OSError as error:
                raise ChannelConfigurationError(f"DKIM private key {str(key_path)!r} (TIDINGS_DKIM_KEY_PATH) cannot "
                                                f"be read: {error.strerror or error}.") from None
        self.selector, self.domain = selector, domain
        self._key = private_key
        try:
            self.sign(_PROBE)
        except MessageError as error:
            where = f" {str(key_path)!r} (TIDINGS_DKIM_KEY_PATH)" if key_path is not None else ""
            raise ChannelConfigurationError(f"DKIM private key{where} does not sign: {error.__cause__}; give a PEM "
                                            f"RSA private key.") from None

    def __repr__(self) -> str:
        return f"DKIMSigner({self.selector!r}, {self.domain!r})"

    def sign(self, message: bytes) -> bytes:
        """``message`` with its ``DKIM-Signature`` header first, in its own line endings (CRLF or LF).

        Raises:
            MessageError: dkimpy refused to sign it (a malformed message).
        """
        linesep = b"\r\n" if b"\r\n" in message.partition(b"\n")[0] + b"\n" else b"\n"
        try:
            header = self._dkim.sign(message, self.selector.encode(), self.domain.encode(), self._key,
                                     canonicalize=(b"relaxed", b"relaxed"), linesep=linesep,
                                     include_headers=[name.lower().encode() for name in SIGNED_HEADERS])
        except self._dkim.DKIMException as error:
            raise MessageError(f"DKIM signing as {self.selector}._domainkey.{self.domain} failed: {error}") from error
        return bytes(header) + message


def _dkimpy() -> ModuleType:
    """The dkimpy module.

    Raises:
        ChannelConfigurationError: it is not installed.
    """
    try:
        return importlib.import_module("dkim")
    except ImportError:
        raise ChannelConfigurationError("DKIM signing needs dkimpy: pip install 'tidings[dkim]'.") from None
