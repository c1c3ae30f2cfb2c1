"""``Event``: a recorded transition as notifiers, messages and channels see it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from workflow import TransitionRecord

__all__ = ["Event"]


@dataclass(frozen=True)
class Event:
    """A recorded transition as a notifier sees it, with the row it happened to."""

    transition_id: int
    model: str
    key: str
    trigger: str
    source: str
    dest: str
    actor: str | None
    context: dict[str, Any]
    created_at: dt.datetime
    subject: Any

    @classmethod
    def of(cls, record: TransitionRecord, subject: Any) -> Event:
        """The event for ``record``, whose row is ``subject``."""
        return cls(record.id, record.model, record.key, record.trigger, record.source, record.dest,
                   record.actor, dict(record.context or {}), record.created_at, subject)
