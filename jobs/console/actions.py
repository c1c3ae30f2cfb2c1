"""The console's two actions: re-send failed or dead deliveries, plan a transition again; each recorded.

Both are the commands' own procedures (:func:`jobs.commands.resend.resend`,
:func:`jobs.commands.refan.refan`) on the ids a form posted, after :class:`~jobs.console.guard.Guard`
has named the operator; the console's record (:mod:`jobs.console_log`) says who did what.
"""

from __future__ import annotations

import logging

from notifiers import registry
from sqlalchemy import select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from .. import actors
from ..commands import refan as refanning
from ..commands import resend as resending
from ..errors import DeliveryNotFound
from .. import console_log as audit
from .guard import Refused
from .http import Request

__all__ = ["refan", "resend"]

_log = logging.getLogger(__name__)
_MAX_IDS = 500  # deliveries one form may re-send (one page shows 50)


def resend(session: Session, request: Request, operator: str) -> int:
    """Re-send the ticked deliveries (``delivery`` fields) that are still failed or dead; the id of its record.

    Raises:
        Refused: no delivery ticked, or more than one form may carry.
    """
    ids = sorted({int(i) for i in request.form.get("delivery", []) if i.isdigit()})
    if not ids or len(ids) > _MAX_IDS:
        raise Refused(400, f"Tick between 1 and {_MAX_IDS} deliveries to re-send.")
    done, selected = _resend(session, ids)
    gone = sorted(set(ids) - set(selected))
    outcome = f"re-sent {done} deliver{'y' if done == 1 else 'ies'}" + (
        f"; not failed or dead (any more): {', '.join(map(str, gone))}" if gone else "")
    _log.info("Console: %s %s (deliveries %s)", operator, outcome, ids)
    return audit.record(session, operator, "resend", "deliveries " + ", ".join(map(str, ids)), outcome)


def _resend(session: Session, ids: list[int]) -> tuple[int, list[int]]:
    """Re-send those of ``ids`` still failed or dead: how many, and which were selected.

    Another operator (or a double click) may re-send some between the selection and the reset,
    which then refuses the whole selection: it is made again, once, without them.

    Raises:
        Refused: the second selection raced another re-send too.
    """
    try:
        return _resend_selected(session, ids)
    except DeliveryNotFound:
        try:
            return _resend_selected(session, ids)
        except DeliveryNotFound:
            raise Refused(409, "Other re-sends of these deliveries are under way: reload the page and look "
                               "again.") from None


def _resend_selected(session: Session, ids: list[int]) -> tuple[int, list[int]]:
    selected, done = resending.select_for_resend(session, ids=ids), 0
    for done in resending.resend(session, selected, actors.deliver.send):
        pass
    return done, selected


def refan(session: Session, request: Request, operator: str) -> int:
    """Plan the posted ``transition`` again, writing and sending only the deliveries it lacks; the id of its record.

    Raises:
        Refused: no such transition, or no notifier of its model is registered in this process.
    """
    text = request.field("transition")
    record = session.scalar(select(TransitionRecord).where(TransitionRecord.id == int(text))) if text.isdigit() else None
    if record is None:
        raise Refused(404, f"No transition has id {text!r}.")
    if record.model not in registry.models():
        raise Refused(409, f"No notifier of {record.model} is registered in this process, so re-planning transition "
                           f"{record.id} would write nothing: import the notifier modules (TIDINGS_NOTIFIERS) here.")
    model, key = record.model, record.key
    session.commit()
    written = 0
    for step in refanning.refan(session, [record.id], actors.deliver_each.send):
        written = step.written
    outcome = f"re-planned transition {record.id} ({model} {key}): {written} new deliver{'y' if written == 1 else 'ies'}"
    _log.info("Console: %s %s", operator, outcome)
    return audit.record(session, operator, "refan", f"transition {record.id}", outcome)
