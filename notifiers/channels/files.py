"""``FileChannel``: writes each email as an ``.eml`` file in a folder (the embedded default)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..messages import Email, Message
from ..recipients import Recipient
from .base import Channel

if TYPE_CHECKING:
    from ..event import Event

__all__ = ["FileChannel"]


class FileChannel(Channel):
    """Writes ``<key>.eml`` into ``directory``; sending the same delivery twice writes one file.

    Args:
        directory: the folder, created if missing.
        sender: the From address when the email names none.
    """

    accepts: ClassVar[tuple[type[Message], ...]] = (Email,)

    def __init__(self, directory: str | Path, *, sender: str = "Tidings <tidings@localhost>") -> None:
        self.directory = Path(directory)
        self.sender = sender
        self.directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: Email, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Write the message atomically (a temporary file renamed into place)."""
        data = message.to_mime(to, sender=self.sender, key=key).as_bytes()
        fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, self.directory / f"{key}.eml")
