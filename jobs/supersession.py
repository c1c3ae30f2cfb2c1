"""Supersession: a pending delivery made void by what its row did after the transition.

A notifier declares the rule (``superseded_by=LEFT`` or a list of triggers; a reminder always
has "left its state"); the delivery row stores it (``void_unless_in``, ``void_on``), so the
claim checks it generically against the transition log: a later transition of the same row
(same model and key, a greater id) that left the state, or fired one of the triggers, voids
it. The check is part of the claim's UPDATE, so once the superseding transition is committed
no claim is taken; a delivery found void is recorded ``skipped`` with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from notifiers import Timing
from sqlalchemy import ColumnElement, Table, and_, bindparam, exists, func, literal, not_, or_, select, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow
from workflow.clock import aware

from .delivery_log import Delivery, Status

__all__ = ["STANDING", "UNRULED", "columns", "reason", "superseding", "void"]

_deliveries = cast(Table, Delivery.__table__)
_transitions = cast(Table, TransitionRecord.__table__)
_origin = _transitions.alias("origin")
_later = _transitions.alias("later")


def columns(timing: Timing | None, dest: str) -> dict[str, str | None]:
    """The rule's columns of a delivery row planned for a transition to ``dest``."""
    if timing is None:
        return {"void_unless_in": None, "void_on": None}
    return {"void_unless_in": dest if timing.left else None,
            "void_on": f",{','.join(timing.superseded_by)}," if timing.superseded_by else None}


def _superseding() -> ColumnElement[bool]:
    """A later transition of the delivery's row that voids it: left the state, or one of the triggers."""
    d = _deliveries.c
    return and_(
        _origin.c.id == d.transition_id, _later.c.model == _origin.c.model, _later.c.key == _origin.c.key,
        _later.c.id > _origin.c.id,
        # NULL (no such rule) is not true: only the rule the row carries applies.
        or_(_later.c.dest != d.void_unless_in,
            func.replace(d.void_on, literal(",") + _later.c.trigger + literal(","), "") != d.void_on),
    )


#: A delivery without a rule: nothing can void it.
UNRULED = and_(_deliveries.c.void_unless_in.is_(None), _deliveries.c.void_on.is_(None))
#: A delivery with a rule that no later transition has voided (yet).
STANDING = and_(not_(UNRULED), not_(exists().where(_superseding())))


def superseding(session: Session, delivery_ids: Sequence[int]) -> dict[int, tuple[str, dt.datetime]]:
    """For each delivery that is void: the first transition that made it so (trigger, time)."""
    if not delivery_ids:
        return {}
    d = _deliveries.c
    rows = session.execute(
        select(d.id, _later.c.trigger, _later.c.created_at).select_from(_deliveries)
        .join(_origin, _origin.c.id == d.transition_id).join(_later, _superseding())
        .where(d.id.in_(list(delivery_ids)), or_(d.void_unless_in.is_not(None), d.void_on.is_not(None)))
        .order_by(d.id, _later.c.id.desc()))
    return {delivery_id: (trigger, at) for delivery_id, trigger, at in rows}  # the last row per id: the first


def reason(trigger: str, at: dt.datetime) -> str:
    """Why a delivery is void, as ``skipped()`` and ``tidings explain`` show it."""
    return f"superseded by {trigger} at {aware(at).astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"


_SKIP = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("void_id"),
           or_(_deliveries.c.status == Status.PENDING,
               and_(_deliveries.c.status == Status.SENDING, _deliveries.c.lease_until < bindparam("void_now"))))
    .values(status=Status.SKIPPED, last_error=bindparam("void_reason"), lease_until=None,
            updated_at=bindparam("void_now"))
)


def void(session: Session, delivery_ids: Sequence[int]) -> list[int]:
    """Record ``skipped`` (with the reason) those of ``delivery_ids`` a later transition voided; their ids.

    Called for the deliveries a claim did not take: only those with a rule are looked at, and
    only one still free to claim is written (a void delivery stays void: the log only grows).
    """
    found = superseding(session, delivery_ids)
    if not found:
        session.commit()
        return []
    now = utcnow()
    params: list[dict[str, Any]] = [{"void_id": i, "void_now": now, "void_reason": reason(*why)}
                                    for i, why in found.items()]
    session.execute(_SKIP, params)
    session.commit()
    return sorted(found)
