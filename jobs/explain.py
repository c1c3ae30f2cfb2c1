"""The timeline of one record: each transition, and who was told of it, how, with what outcome."""

from __future__ import annotations

from typing import Any

from notifiers import registry
from sqlalchemy import select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from .delivery_log import Delivery

__all__ = ["explain"]


def explain(session: Session, model: str, key: str) -> list[dict[str, Any]]:
    """One entry per transition of ``model`` ``key``, oldest first, each with its deliveries or why none."""
    records = session.scalars(select(TransitionRecord).where(TransitionRecord.model == model,
                                                             TransitionRecord.key == key)
                              .order_by(TransitionRecord.id))
    timeline = []
    for record in records:
        deliveries = session.scalars(select(Delivery).where(Delivery.transition_id == record.id).order_by(Delivery.id))
        entry: dict[str, Any] = {
            "transition": record.id, "at": record.created_at.isoformat(), "trigger": record.trigger,
            "from": record.source, "to": record.dest, "actor": record.actor, "context": record.context,
            "deliveries": [{"id": d.id, "party": d.party, "to": d.address, "channel": d.channel, "status": d.status,
                            "attempts": d.attempts, "error": d.last_error} for d in deliveries],
        }
        if not entry["deliveries"]:
            entry["why_none"] = _why_none(record)
        timeline.append(entry)
    return timeline


def _why_none(record: TransitionRecord) -> str:
    if record.fanned_out_at is None:
        return "not fanned out yet (is a worker running? the sweeper retries it)"
    if not registry.for_transition(record.model, record.trigger):
        return f"no notifier is registered for {record.model}.{record.trigger}"
    return "the parties resolved to nobody"


def render(timeline: list[dict[str, Any]], model: str, key: str) -> str:
    """The timeline as text, one transition per paragraph."""
    if not timeline:
        return f"No transition recorded for {model} {key}."
    lines = []
    for entry in timeline:
        by = f" by {entry['actor']}" if entry["actor"] else ""
        lines.append(f"{entry['at']}  {entry['trigger']}: {entry['from']} -> {entry['to']}{by}")
        for d in entry["deliveries"]:
            error = f" ({d['error']})" if d["error"] else ""
            lines.append(f"    {d['party']} <{d['to']}> by {d['channel']}: {d['status']}, "
                         f"{d['attempts']} attempt(s){error}")
        if "why_none" in entry:
            lines.append(f"    nobody told: {entry['why_none']}")
    return "\n".join(lines)
