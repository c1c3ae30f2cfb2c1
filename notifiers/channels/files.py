"""``FileChannel``: writes each email as an ``.eml`` file in a folder (the embedded default)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..messages import DKIMSigner, Email, Message
from ..recipients import Recipient
from .base import Channel
from .smtp import checked_addresses

if TYPE_CHECKING:
    from ..event import Event

__all__ = ["FileChannel"]


class FileChannel(Channel):
    """Writes ``<key>.eml`` into ``directory``; sending the same delivery twice writes one file.

    Args:
        directory: the folder, created if missing.
        sender: the From address when the email names none.
        reply_to: the Reply-To of every email that gives none.
        dkim: signs each file's bytes (DKIM), as the SMTP channel would sign them.

    Raises:
        ChannelConfigurationError: ``sender`` or ``reply_to`` is not a good address.
    """

    accepts: ClassVar[tuple[type[Message], ...]] = (Email,)

    def __init__(self, directory: str | Path, *, sender: str = "Tidings <tidings@localhost>",
                 reply_to: str | None = None, dkim: DKIMSigner | None = None) -> None:
        checked_addresses("FileChannel", sender, reply_to)
        self.directory = Path(directory)
        self.sender, self.reply_to, self.dkim = sender, reply_to, dkim
        self.directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: Email, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Write the message atomically (a temporary file renamed into place)."""
        data = message.to_mime(to, sender=self.sender, key=key, reply_to=self.reply_to).as_bytes()
        if self.dkim is not None:
            data = self.dkim.sign(data)
        fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, self.directory / f"{key}.eml")
