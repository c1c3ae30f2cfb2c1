"""Channels: the ways a notification leaves the application; one module per channel."""

from __future__ import annotations

from .base import Channel
from .console import ConsoleChannel
from .failover import FailoverChannel, provider_of
from .files import FileChannel
from .inapp import InAppChannel
from .memory import MemoryChannel, Sent
from .smtp import SMTPChannel
from .sms import SMSChannel
from .signing import verify_signature, verify_standard
from .webhook import WebhookChannel

__all__ = [
    "Channel",
    "ConsoleChannel",
    "FailoverChannel",
    "FileChannel",
    "InAppChannel",
    "MemoryChannel",
    "SMSChannel",
    "SMTPChannel",
    "Sent",
    "WebhookChannel",
    "provider_of",
    "verify_signature",
    "verify_standard",
]
