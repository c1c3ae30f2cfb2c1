"""Suppressed addresses at planning: a delivery to an address on the suppression list is written ``skipped``.

The list itself is :mod:`notifiers.suppressions`; this applies it to a fan-out's intents, in one
query for all of them (none when no intent is to be sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from notifiers import Intent, suppression_reasons
from sqlalchemy.orm import Session

__all__ = ["applied"]

_Record = TypeVar("_Record")


def applied(session: Session, intents: Sequence[tuple[_Record, Intent]]) -> list[tuple[_Record, Intent]]:
    """``intents`` with those to an address suppressed on their channel skipped, the suppression as their reason.

    An intent already skipped (an opt-out) or failed keeps its own reason.
    """
    to_send = {id(intent) for _, intent in intents if intent.address and not intent.skip_reason and not intent.failure}
    if not to_send:
        return list(intents)
    reason = suppression_reasons(session, ((i.channel, i.address) for _, i in intents if id(i) in to_send))
    out: list[tuple[_Record, Intent]] = []
    for record, intent in intents:
        why = reason(intent.channel, intent.address, intent.registration.required) if id(intent) in to_send else None
        out.append((record, replace(intent, skip_reason=why) if why else intent))
    return out
