"""``SMTPChannel``: sends email over SMTP, one reused connection per worker thread."""

from __future__ import annotations

import logging
import smtplib
import ssl as _ssl
from email.utils import parseaddr
from typing import TYPE_CHECKING

from ..errors import PermanentChannelError, TransientChannelError
from ..message import Email
from ..recipients import Recipient
from .base import Channel
from .connections import ThreadConnections

if TYPE_CHECKING:
    from ..notifier import Event

__all__ = ["SMTPChannel"]

_log = logging.getLogger(__name__)


class SMTPChannel(Channel):
    """Sends each email over SMTP; a 4xx reply or a network failure is transient, a 5xx permanent.

    Args:
        host, port: the SMTP server.
        sender: the From address when the email names none.
        starttls: upgrade the connection with STARTTLS.
        ssl: connect with implicit TLS (SMTPS, usually port 465).
        username, password: log in when given.
        timeout: seconds for connecting and for each command.
    """

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
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.ssl, self.timeout = starttls, ssl, timeout
        self.username, self._password = username, password
        self._connections: ThreadConnections[smtplib.SMTP] = ThreadConnections(_quietly_close)

    def __repr__(self) -> str:
        return f"SMTPChannel({self.host!r}, {self.port})"

    def send(self, message: Email, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Send ``message`` to ``to``, reusing this thread's connection.

        Raises:
            TransientChannelError: connection failures, timeouts and 4xx replies.
            PermanentChannelError: 5xx replies, including a refused recipient.
        """
        envelope_from = parseaddr(message.sender or self.sender)[1]
        # A non-ASCII address needs SMTPUTF8, which send_message asks for and sendmail does not.
        content = (message.to_bytes(to, sender=self.sender, key=key) if (envelope_from + to.address).isascii()
                   else message.to_mime(to, sender=self.sender, key=key))
        while True:
            reused = self._connections.current() is not None
            try:
                connection = self._connection()
                if isinstance(content, bytes):
                    connection.sendmail(envelope_from, [to.address], content)
                else:
                    connection.send_message(content, from_addr=envelope_from, to_addrs=[to.address])
                return
            except smtplib.SMTPServerDisconnected:
                self._drop()
                if not reused:
                    raise TransientChannelError(f"{self!r} disconnected while sending.", channel="smtp") from None
                # The kept connection had gone stale: try once more on a new one.
            except smtplib.SMTPRecipientsRefused as error:
                code, reply = error.recipients.get(to.address, (550, b"recipient refused"))
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

    def _connection(self) -> smtplib.SMTP:
        return self._connections.current() or self._connections.keep(self._connect())

    def _connect(self) -> smtplib.SMTP:
        context = _ssl.create_default_context()
        if self.ssl:
            connection: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                connection.starttls(context=context)
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
