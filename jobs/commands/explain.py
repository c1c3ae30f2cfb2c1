"""The timeline of one record: each transition, who was told of it, how, with what outcome; and its timeouts."""

from __future__ import annotations

from typing import Any

from notifiers import registry
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord, did_you_mean, stateful_models

from .. import fanout
from ..delivery_log import Delivery, Status
from ..errors import ConfigurationError
from ..timers import Timer, TimerStatus

__all__ = ["explain"]


def explain(session: Session, model: str, key: str) -> list[dict[str, Any]]:
    """One entry per transition of ``model`` ``key``, oldest first, each with its deliveries or why none, and timers."""
    records = list(session.scalars(select(TransitionRecord).where(TransitionRecord.model == model,
                                                                  TransitionRecord.key == key)
                                   .order_by(TransitionRecord.id)))
    timers = _timers(session, [r.id for r in records])
    told: dict[int, list[Delivery]] = {}
    for start in range(0, len(records), 500):  # one query per 500 transitions, not one per transition
        for d in session.scalars(select(Delivery).where(Delivery.transition_id.in_(
                [r.id for r in records[start:start + 500]])).order_by(Delivery.id)):
            told.setdefault(d.transition_id, []).append(d)
    timeline = []
    for record in records:
        deliveries = told.get(record.id, [])
        entry: dict[str, Any] = {
            "transition": record.id, "at": record.created_at.isoformat(), "trigger": record.trigger,
            "from": record.source, "to": record.dest, "actor": record.actor, "context": record.context,
            "deliveries": [{"id": d.id, "party": d.party, "to": d.address, "channel": d.channel, "status": d.status,
                            "attempts": d.attempts, "error": d.last_error,
                            "due": d.due_at.isoformat() if d.due_at else None, "digest": d.digest_id}
                           for d in deliveries],
            "timers": timers.get(record.id, []),
        }
        if not entry["deliveries"]:
            entry["why_none"] = _why_none(session, record)
        timeline.append(entry)
    for entry, after in zip(timeline, timeline[1:]):  # a timer still pending whose row moved on is void when due
        for timer in entry["timers"]:
            if timer["status"] == TimerStatus.PENDING:
                timer["moved_on_by"] = after["transition"]
    if not timeline:
        _known_model(session, model)
    _digest_sizes(session, timeline)
    return timeline


def _timers(session: Session, transition_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The timeouts each transition scheduled: when due, and fired, void (and why) or pending.

    Found by transition (the unique index on ``transition_id, trigger``), 500 transitions a query.
    """
    found: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(transition_ids), 500):
        for t in session.scalars(select(Timer).where(Timer.transition_id.in_(transition_ids[start:start + 500]))
                                 .order_by(Timer.id)):
            found.setdefault(t.transition_id, []).append({
                "trigger": t.trigger, "due_at": t.due_at.isoformat(), "status": t.status, "reason": t.reason,
                "fired_transition": t.fired_transition_id})
    return found


def _timer_line(timer: dict[str, Any]) -> str:
    pending = (f"scheduled, to be void when due (transition {timer['moved_on_by']} came after)"
               if timer.get("moved_on_by") else "scheduled")
    outcome = {TimerStatus.PENDING: pending, TimerStatus.FIRED: f"fired: transition {timer['fired_transition']}",
               TimerStatus.VOID: f"void: {timer['reason']}"}.get(timer["status"], timer["status"])
    return f"    timeout {timer['trigger']!r} due {timer['due_at']}: {outcome}"


def _known_model(session: Session, model: str) -> None:
    """Refuse a model neither imported here nor in the transition log, naming those that are.

    Raises:
        ConfigurationError: an unknown model (a typo, or its module not imported), with a did-you-mean.
    """
    known = sorted(set(session.scalars(select(TransitionRecord.model).distinct())) | set(stateful_models()))
    if model not in known:
        raise ConfigurationError(f"Unknown model {model!r}: no Stateful model of that name is imported and the "
                                 f"transition log has none; known: {', '.join(known) or 'none'}."
                                 f"{did_you_mean(model, known)}")


def _why_none(session: Session, record: TransitionRecord) -> str:
    """Why a transition has no delivery, as far as this process can tell: its registry is the command's."""
    if record.fanned_out_at is None and record.held_reason:
        return f"held back, not fanned out: {record.held_reason}"
    if record.fanned_out_at is None:
        return "not fanned out yet (is a worker running? the sweeper retries it)"
    if record.model not in registry.models():
        return (f"no notifier for {record.model} is registered in this command, so it cannot tell whether one was "
                f"due: set TIDINGS_NOTIFIERS (or pass --import) as for the workers")
    if not registry.for_transition(record.model, record.trigger):
        return f"no notifier is registered for {record.model}.{record.trigger}"
    due = len(fanout.missing_deliveries(session, {record.id: record})[record.id])
    if due:
        return (f"{due} deliveries are due by the notifiers registered here, but none was written (was it fanned out "
                f"by a worker without them?): `tidings refan {record.id}` writes them")
    return "the parties resolved to nobody"


def _digest_sizes(session: Session, timeline: list[dict[str, Any]]) -> None:
    """Each delivery in a digest gets ``digest_events``: how many events the digest holds (sent in it, or waiting)."""
    ids = {d["digest"] for entry in timeline for d in entry["deliveries"] if d.get("digest")}
    if not ids:
        return
    sizes = dict(session.execute(select(Delivery.digest_id, func.count()).where(
        Delivery.digest_id.in_(ids), Delivery.status.in_([Status.SENT, Status.DIGEST])).group_by(Delivery.digest_id)).all())
    for d in (d for entry in timeline for d in entry["deliveries"] if d.get("digest")):
        d["digest_events"] = int(sizes.get(d["digest"], 0))


def _outcome(d: dict[str, Any]) -> str:
    """``sent, 1 attempt(s)``; ``sent in digest #7 with 19 others``; ``held for digest #7 (with 4 others so far)``."""
    if not d.get("digest") or d["status"] not in (Status.SENT, Status.DIGEST):
        return f"{d['status']}, {d['attempts']} attempt(s)"
    others = max(d.get("digest_events", 1) - 1, 0)
    if d["status"] == Status.SENT:
        return f"sent in digest #{d['digest']} with {others} other{'s' if others != 1 else ''}"
    return f"held for digest #{d['digest']} (with {others} other{'s' if others != 1 else ''} so far)"


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
            due = f", due {d['due']}" if d.get("due") else ""
            lines.append(f"    {d['party']} <{d['to']}> by {d['channel']}{due}: {_outcome(d)}{error}")
        if "why_none" in entry:
            lines.append(f"    nobody told: {entry['why_none']}")
        lines += [_timer_line(timer) for timer in entry.get("timers", [])]
    return "\n".join(lines)
