"""Errors raised by ``notifiers``.

The tree::

    NotifierError
     +-- RegistrationError        a bad @on(...) declaration, raised at import
     +-- RecipientError           no address, CR/LF or a malformed address
     +-- MessageError             CR/LF in a subject or header, or a message with no body
     +-- TemplateError            a template is missing or does not compile or render
     +-- ChannelConfigurationError  a channel built with a bad argument (a webhook URL, a timeout)
     +-- UnsubscribeError         an unsubscribe link that is malformed, tampered with or expired
     +-- ChannelError             raised by channels
          +-- TransientChannelError   worth retrying later (connection refused, SMTP 4xx, timeout)
          +-- PermanentChannelError   retrying will not help (SMTP 5xx, refused recipient)
          |    +-- EndpointGone           a webhook endpoint answered 410 Gone: it is disabled from then on
          +-- EndpointDisabled        the endpoint answered 410 earlier: the delivery is skipped, not sent
"""

from __future__ import annotations


class NotifierError(Exception):
    """Base class for every error raised by ``notifiers``."""


class RegistrationError(NotifierError):
    """An ``@on(...)`` registration names an unknown model, trigger or party."""


class RecipientError(NotifierError):
    """A recipient has no usable address.

    Attributes:
        recipient: what was given as the recipient.
    """

    def __init__(self, message: str, *, recipient: object = None) -> None:
        super().__init__(message)
        self.recipient = recipient


class MessageError(NotifierError):
    """A message is malformed: CR/LF in a header value, or neither text nor HTML."""


class TemplateError(NotifierError):
    """A template is missing, does not compile, or fails to render.

    Attributes:
        template: the template's name.
        lineno: the line of the error, when known.
    """

    def __init__(self, message: str, *, template: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.template = template
        self.lineno = lineno


class ChannelConfigurationError(NotifierError):
    """A channel was built with an argument it cannot work with, such as a webhook URL that is not
    ``http://`` or ``https://``; raised by the constructor, so at start-up rather than at the first send.

    It is not a :class:`ChannelError`: nothing was sent, and retrying will not help.
    """


class UnsubscribeError(NotifierError):
    """An unsubscribe token is malformed, its signature does not match, or it has expired; nothing was changed."""


class ChannelError(NotifierError):
    """A channel could not hand the message over.

    Attributes:
        channel: the channel's name.
    """

    def __init__(self, message: str, *, channel: str = "") -> None:
        super().__init__(message)
        self.channel = channel


class TransientChannelError(ChannelError):
    """Sending failed for a reason that may pass: retry with backoff.

    Attributes:
        retry_after: seconds the other side asked to wait (an HTTP ``Retry-After``), if it said;
            the retry then waits at least that long.
    """

    def __init__(self, message: str, *, channel: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, channel=channel)
        self.retry_after = retry_after


class PermanentChannelError(ChannelError):
    """Sending failed for a reason that will not pass: do not retry."""


class EndpointGone(PermanentChannelError):
    """A webhook endpoint answered 410 Gone: this delivery failed, and the endpoint is disabled.

    Attributes:
        endpoint: the endpoint's URL as configured (it may carry a token: never shown).
    """

    def __init__(self, message: str, *, channel: str = "", endpoint: str = "") -> None:
        super().__init__(message, channel=channel)
        self.endpoint = endpoint


class EndpointDisabled(ChannelError):
    """The endpoint answered 410 Gone before and stays disabled until re-enabled: the delivery is skipped."""
