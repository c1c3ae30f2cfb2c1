"""A record's timeline: what ``tidings explain`` shows, with each delivery's message rendered again as a preview.

The entries are :func:`jobs.commands.explain.explain`'s. A preview is the message the delivery's
notifier composes for its recipient from the record as it is now (what a re-send would send);
it is built only for an authorised operator, since it shows a message body, and nothing it
changes in the session is kept.
"""

from __future__ import annotations

import logging
from typing import Any

from notifiers import Email, Event, Notifier, Text
from sqlalchemy import select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from .. import runtime
from ..addressed import recipient_of
from ..commands.explain import explain
from ..delivery import load
from ..delivery_log import Delivery
from ..errors import ConfigurationError
from .http import Request

__all__ = ["INLINE", "context", "preview"]

INLINE = 20  # deliveries whose previews a timeline renders on the page; past that, one link each

_log = logging.getLogger(__name__)


def context(session: Session, request: Request, *, previews: bool) -> dict[str, Any]:
    """The timeline of the request's ``model`` and ``key`` (none asked: just the form)."""
    model, key = request.arg("model"), request.arg("key")
    transition = request.arg("transition")
    found: dict[str, Any] = {"model": model, "key": key, "entries": None, "problem": None, "previews": previews,
                             "inline": False}
    if transition and not (model and key):  # from a list's transition id
        found_row = (session.execute(select(TransitionRecord.model, TransitionRecord.key)
                                     .where(TransitionRecord.id == int(transition))).first()
                     if transition.isdigit() else None)
        if found_row is None:
            found["problem"] = f"No transition {transition!r} in the log: give the id a list shows, or a model and key."
            return found
        found["model"], found["key"] = model, key = found_row
    if not (model and key):
        return found
    try:
        found["entries"] = explain(session, model, key)
    except ConfigurationError as error:
        found["problem"] = str(error)
        return found
    told = [d for entry in found["entries"] for d in entry["deliveries"]]
    found["inline"] = previews and len(told) <= INLINE
    if found["inline"]:  # a long timeline links each preview instead: rendering is the notifier's work
        for d in told:
            d["preview"] = preview(session, d["id"])
    return found


def preview(session: Session, delivery_id: int) -> dict[str, Any]:
    """The message delivery ``delivery_id`` would carry if sent now: subject and bodies, or why there is none."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return {"error": f"Delivery {delivery_id} is gone."}
    try:
        with session.no_autoflush:
            record, subject = load(session, delivery.transition_id)
            if subject is None:
                return {"error": f"{record.model} {record.key} no longer exists."}
            kind = runtime.current().address_kinds([delivery.channel])[delivery.channel]
            message = Notifier.compose_for(delivery.notifier, Event.of(record, subject),
                                           recipient_of(delivery, kind), channel=delivery.channel)
    except Exception as error:  # a notifier not imported here, a template error: shown, as explain would say it
        return {"error": f"{type(error).__name__}: {error}"}
    finally:
        session.rollback()  # whatever the notifier or a party loaded or changed
    if message is None:
        return {"error": "The notifier returns nothing for this recipient now."}
    if isinstance(message, Email):
        return {"subject": message.subject, "text": message.text, "html": message.html}
    if isinstance(message, Text):
        return {"text": message.body}
    return {"text": repr(message)}
