"""Messages: what a notifier returns and a channel sends, one module per kind."""

from __future__ import annotations

from .base import Message
from .dkim import DKIMSigner
from .email import Email, message_id
from .text import Text

__all__ = ["DKIMSigner", "Email", "Message", "Text", "message_id"]
