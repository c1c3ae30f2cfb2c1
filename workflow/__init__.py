"""Declared state transitions on SQLAlchemy models, recorded in the caller's transaction.

This package knows neither ``notifiers`` nor ``jobs``: it tells the world about a transition
only by adding a :class:`TransitionRecord` row to the caller's session.
"""

from __future__ import annotations

from . import clock
from .definition import Workflow
from .errors import (
    ConcurrentTransition,
    ConditionFailed,
    ContextNotSerializable,
    DefinitionError,
    InvalidTransition,
    NotAwaited,
    NotInSession,
    TransitionLogMissing,
    TransitionNotAllowed,
    UnknownTrigger,
    WorkflowError,
    did_you_mean,
)
from .parties import PartySpec, resolve_party
from .stateful import Stateful, Trigger, actor_reference
from .subjects import load_subject, load_subjects, model_class, stateful_models
from .transition_log import (
    Id,
    TidingsBase,
    TransitionRecord,
    metadata,
    read_record,
    read_records,
    register_outbox,
)
from .clock import utcnow

__all__ = [
    "ConcurrentTransition",
    "ConditionFailed",
    "ContextNotSerializable",
    "DefinitionError",
    "Id",
    "InvalidTransition",
    "NotAwaited",
    "NotInSession",
    "PartySpec",
    "Stateful",
    "TidingsBase",
    "TransitionLogMissing",
    "TransitionNotAllowed",
    "TransitionRecord",
    "Trigger",
    "UnknownTrigger",
    "Workflow",
    "WorkflowError",
    "actor_reference",
    "clock",
    "did_you_mean",
    "load_subject",
    "load_subjects",
    "metadata",
    "model_class",
    "read_record",
    "read_records",
    "register_outbox",
    "resolve_party",
    "stateful_models",
    "utcnow",
]
