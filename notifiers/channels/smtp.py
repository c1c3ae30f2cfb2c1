"""``SMTPChannel``: sends email over SMTP, one reused connection per worker thread."""

from __future__ import annotations

import logging
import smtplib
import ssl as _ssl
from typing import TYPE_CHECKING, ClassVar

from ..addresses import needs_smtputf8, one_mailbox, parse_mailboxes, wire_address
from ..errors import ChannelConfigurationError, MessageError, PermanentChannelError, TransientChannelError
from ..messages import DKIMSigner, Email, Message
from ..recipients import Recipient
from .base import Channel
from .connections import ThreadConnections

if TYPE_CHECKING:
    from ..event import Event

__all__ = ["SMTPChannel"]

_log = logging.getLogger(__name__)


class SMTPChannel(Channel):
    """Sends each email over SMTP; a 4xx reply or a network failure is transient, a 5xx permanent.

    A non-ASCII domain travels in its ASCII (IDNA) form. A non-ASCII local part needs the server's
    SMTPUTF8: without it, the send fails permanently. A body that is not 7bit is sent 8bit with
    ``BODY=8BITMIME`` where the server offers 8BITMIME, and quoted-printable or base64 where not.

    Args:
        host, port: the SMTP server.
        sender: the From address when the email names none (``"Shop <shop@example.com>"``).
        starttls: upgrade the connection with STARTTLS.
        ssl: connect with implicit TLS (SMTPS, usually port 465).
        username, password: log in when given.
        timeout: seconds for connecting and for each command.
        reply_to: the Reply-To of every email that gives none (``None``: replies go to the sender).
        dkim: signs each message's bytes (DKIM) as they are sent.

    Raises:
        ChannelConfigurationError: ``sender`` or ``reply_to`` is not a good address.
    """

    accepts: ClassVar[tuple[type[Message], ...]] = (Email,)

    def __init__(
        self,
        host: str = "localhost",
        port: int = 25,
        *,
        sender: str = "Tidings <tidings@localhost>",
        starttls: bool = False,
        ssl: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        reply_to: str | None = None,
        dkim: DKIMSigner | None = None,
    ) -> None:
        checked_addresses("SMTPChannel", sender, reply_to)
        self.host, self.port, self.sender = host, port, sender
        self.reply_to, self.dkim = reply_to, dkim
        self.starttls, self.ssl, self.timeout = starttls, ssl, timeout
        self.username, self._password = username, password
        self._connections: ThreadConnections[smtplib.SMTP] = ThreadConnections(_quietly_close)
        self._tls: _ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"SMTPChannel({self.host!r}, {self.port})"

    def send(self, message: Email, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Send ``message`` to ``to``, reusing this thread's connection.

        Raises:
            TransientChannelError: connection failures, timeouts and 4xx replies.
            PermanentChannelError: 5xx replies, including a refused recipient; an address that needs
                SMTPUTF8 the server does not offer.
            MessageError: the email's sender is not one good address.
        """
        envelope_from = one_mailbox(message.sender or self.sender)[1]
        while True:
            reused = self._connections.current() is not None
            try:
                connection = self._connection()
                data, options = self._content(connection, message, to, key, envelope_from)
                connection.sendmail(wire_address(envelope_from), [wire_address(to.address)], data, mail_options=options)
                return
            except smtplib.SMTPServerDisconnected:
                self._drop()
                if not reused:
                    raise TransientChannelError(f"{self!r} disconnected while sending.", channel="smtp") from None
                # The kept connection had gone stale: try once more on a new one.
            except smtplib.SMTPRecipientsRefused as error:
                code, reply = error.recipients.get(wire_address(to.address), (550, b"recipient refused"))
                self._reset()
                raise _by_code(code, f"{self!r} refused {to.address}: {code} {_text(reply)}") from None
            except smtplib.SMTPResponseException as error:
                self._reset()
                raise _by_code(error.smtp_code,
                               f"{self!r} answered {error.smtp_code} {_text(error.smtp_error)}") from None
            except (OSError, smtplib.SMTPException) as error:
                self._drop()
                raise TransientChannelError(f"{self!r} failed: {type(error).__name__}: {error}",
                                            channel="smtp") from None

    def _content(self, connection: smtplib.SMTP, message: Email, to: Recipient, key: str,
                 envelope_from: str) -> tuple[bytes, list[str]]:
        """The bytes of ``message`` for what this server offers, and the MAIL FROM parameters they need.

        Raises:
            PermanentChannelError: the message needs SMTPUTF8 (a non-ASCII local part) and the server
                does not offer it.
        """
        connection.ehlo_or_helo_if_needed()
        eight_bit = connection.has_extn("8bitmime")
        data = message.to_bytes(to, sender=self.sender, key=key, eight_bit=eight_bit, reply_to=self.reply_to)
        if self.dkim is not None:
            data = self.dkim.sign(data)
        needing = [address for address in (to.address, envelope_from) if needs_smtputf8(address)]
        utf8 = bool(needing) or not data.partition(b"\r\n\r\n")[0].isascii()
        if utf8 and not connection.has_extn("smtputf8"):
            raise PermanentChannelError(
                f"{self!r} does not offer SMTPUTF8, which {needing[0] if needing else 'an address header'} needs "
                f"for its non-ASCII local part; use an ASCII address or a server that offers SMTPUTF8.",
                channel="smtp")
        options = (["SMTPUTF8"] if utf8 else []) + (["BODY=8BITMIME"] if eight_bit and not data.isascii() else [])
        return data, options

    def _connection(self) -> smtplib.SMTP:
        return self._connections.current() or self._connections.keep(self._connect())

    def _context(self) -> _ssl.SSLContext:
        """The TLS context, built at the first TLS connection and shared by every thread's.

        Building one loads the CA bundle (tens of milliseconds): never when TLS is off.
        """
        if self._tls is None:
            self._tls = _ssl.create_default_context()
        return self._tls

    def _connect(self) -> smtplib.SMTP:
        if self.ssl:
            connection: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                        context=self._context())
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                connection.starttls(context=self._context())
        if self.username:
            connection.login(self.username, self._password or "")
        return connection

    def _reset(self) -> None:
        connection = self._connections.current()
        try:
            if connection is not None:
                connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        self._connections.drop()

    def close(self) -> None:
        """Close every thread's connection."""
        self._connections.close()


def checked_addresses(owner: str, sender: str, reply_to: str | None) -> None:
    """Refuse a sender that is not one good address, or a Reply-To that is not good addresses.

    Raises:
        ChannelConfigurationError: naming the argument.
    """
    try:
        one_mailbox(sender)
    except MessageError as error:
        raise ChannelConfigurationError(f"{owner} sender: {error}") from None
    try:
        if reply_to is not None:
            parse_mailboxes("Reply-To", reply_to)
    except MessageError as error:
        raise ChannelConfigurationError(f"{owner} reply_to: {error}") from None


def _quietly_close(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()


def _by_code(code: int, text: str) -> TransientChannelError | PermanentChannelError:
    if 400 <= code < 500:
        return TransientChannelError(text, channel="smtp")
    return PermanentChannelError(text, channel="smtp")


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
