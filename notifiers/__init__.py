"""Who is told what, and through which channel, when a transition happens.

This package knows ``workflow`` but not ``jobs``: it declares notifiers and renders messages;
``jobs`` decides when they are sent.
"""

from __future__ import annotations

try:
    import workflow as _workflow

    _workflow.Stateful  # noqa: B018 - fails if another distribution owns the name 'workflow'
except (ImportError, AttributeError) as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "Another distribution provides a top-level 'workflow' package (see `pip show -f workflow`); "
        "Tidings needs its own. Uninstall the other one."
    ) from error

from .audience import Found, Intent, SkipReason, parties_of, plan
from .channels import (
    Channel,
    ConsoleChannel,
    FailoverChannel,
    FileChannel,
    InAppChannel,
    MemoryChannel,
    SMSChannel,
    SMTPChannel,
    WebhookChannel,
    provider_of,
    verify_signature,
    verify_standard,
)
from .digests import EVERY, Batch, Digest, Throttle, window_start
from .endpoints import DisabledEndpoint, disabled_endpoints, enable_endpoint
from .errors import (
    ChannelConfigurationError,
    ChannelError,
    EndpointDisabled,
    EndpointGone,
    MessageError,
    NotifierError,
    PermanentChannelError,
    RecipientError,
    RegistrationError,
    TemplateError,
    TransientChannelError,
    UnsubscribeError,
)
from .inbox import Inbox, InboxItem
from .messages import DKIMSigner, Email, Message, Text, message_id
from .event import Event
from .notifier import Notifier, on, remind
from .preferences import Choices, Preference, choose_every, opt_in, opt_out, preferences_of, skip_reasons
from .recipients import Recipient, recipients_of
from .suppressions import REASONS, Suppression, suppress, suppressed, suppression_reasons, unsuppress
from .dsn import Bounce, read_dsn, record_dsn
from .registry import Registration, registry
from .templates import Templates
from .unsubscribe_links import Unsubscription, UnsubscribeLinks, make_token, read_token, unsubscribe, use_links
from .unsubscribe_app import UnsubscribeEndpoint
from .timing import LEFT, MAX_REMINDERS, Left, Timing, Window, after_window, zone

__all__ = [
    "Batch",
    "Bounce",
    "Channel",
    "ChannelConfigurationError",
    "ChannelError",
    "Choices",
    "ConsoleChannel",
    "DKIMSigner",
    "Digest",
    "DisabledEndpoint",
    "EVERY",
    "Email",
    "EndpointDisabled",
    "EndpointGone",
    "Event",
    "FailoverChannel",
    "FileChannel",
    "Found",
    "InAppChannel",
    "Inbox",
    "InboxItem",
    "Intent",
    "LEFT",
    "Left",
    "MAX_REMINDERS",
    "MemoryChannel",
    "Message",
    "MessageError",
    "Notifier",
    "NotifierError",
    "PermanentChannelError",
    "Preference",
    "REASONS",
    "Recipient",
    "RecipientError",
    "Registration",
    "RegistrationError",
    "SMSChannel",
    "SMTPChannel",
    "SkipReason",
    "Suppression",
    "TemplateError",
    "Templates",
    "Text",
    "Throttle",
    "Timing",
    "TransientChannelError",
    "UnsubscribeEndpoint",
    "UnsubscribeError",
    "UnsubscribeLinks",
    "Unsubscription",
    "WebhookChannel",
    "Window",
    "after_window",
    "choose_every",
    "disabled_endpoints",
    "enable_endpoint",
    "make_token",
    "message_id",
    "on",
    "opt_in",
    "opt_out",
    "parties_of",
    "plan",
    "preferences_of",
    "provider_of",
    "read_dsn",
    "read_token",
    "recipients_of",
    "record_dsn",
    "registry",
    "remind",
    "skip_reasons",
    "suppress",
    "suppressed",
    "suppression_reasons",
    "unsubscribe",
    "unsuppress",
    "use_links",
    "verify_signature",
    "verify_standard",
    "window_start",
    "zone",
]
