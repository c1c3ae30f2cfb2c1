"""Email channels that fail as a mail server does: one refusing every recipient, one that is down."""

from __future__ import annotations

from notifiers import MemoryChannel, PermanentChannelError, TransientChannelError


class Refusing(MemoryChannel):
    """An SMTP server answering ``reply`` (a 5xx) to every recipient: deliveries fail at once."""

    def __init__(self, reply: str = "550 mailbox unavailable") -> None:
        super().__init__()
        self.reply = reply

    def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
        raise PermanentChannelError(self.reply, channel="smtp")


class Down(MemoryChannel):
    """An SMTP server that does not answer: deliveries are retried, then dead."""

    def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
        raise TransientChannelError("[Errno 111] Connection refused", channel="smtp")
