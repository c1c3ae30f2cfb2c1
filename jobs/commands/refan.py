"""``tidings refan``: plan transitions again, writing only the deliveries they are missing.

For transitions fanned out by a worker that lacked their notifiers (before it refused to start,
or with a partial module list), and for a notifier added after the fact. The planning is the
fan-out's own: each delivery's unique key (transition, notifier, address, channel) is written
once, so a second run writes nothing, and a delivery sent already is never sent again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from notifiers import registry
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord, read_records

from .. import batches, fanout
from ..delivery_log import Delivery
from ..errors import ConfigurationError, TransitionNotFound
from .resend import add_window, parse_time

__all__ = ["Refanned", "add_command", "dry_run", "refan", "run", "select_transitions"]

BATCH = 500  # transitions per transaction, and one progress line each past the first


@dataclass
class Refanned:
    """How far a re-plan got: transitions planned so far, of how many, and the deliveries they gained."""

    transitions: int
    total: int
    written: int


def select_transitions(session: Session, *, ids: Sequence[int] = (), model: str | None = None,
                       key: str | None = None, trigger: str | None = None, since: dt.datetime | None = None,
                       until: dt.datetime | None = None) -> list[int]:
    """The ids of the transitions matching every criterion given, in id order (``since``/``until``: when committed).

    Raises:
        ConfigurationError: no criterion at all (re-planning the whole log is never a default).
        TransitionNotFound: an id given does not exist.
    """
    return [transition_id for transition_id, _ in _select(session, ids=ids, model=model, key=key, trigger=trigger,
                                                          since=since, until=until)]


def _select(session: Session, *, ids: Sequence[int], model: str | None, key: str | None, trigger: str | None,
            since: dt.datetime | None, until: dt.datetime | None) -> list[tuple[int, str]]:
    """:func:`select_transitions`, each id with its model."""
    if not (ids or model or since or until):
        raise ConfigurationError("tidings refan needs transitions to re-plan: ids, --model (and --key), "
                                 "or --since/--until.")
    query = select(TransitionRecord.id, TransitionRecord.model).order_by(TransitionRecord.id)
    if ids:
        query = query.where(TransitionRecord.id.in_(list(ids)))
    for column, value in ((TransitionRecord.model, model), (TransitionRecord.key, key),
                          (TransitionRecord.trigger, trigger)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(TransitionRecord.created_at >= since)
    if until is not None:
        query = query.where(TransitionRecord.created_at < until)
    found = [(transition_id, model_name) for transition_id, model_name in session.execute(query)]
    missing = sorted(set(ids) - {transition_id for transition_id, _ in found})
    if missing:
        raise TransitionNotFound(f"No transition has id {', '.join(map(str, missing))}"
                                 f"{' among those the filters select' if (model or since or until) else ''}.")
    return found


def refan(session: Session, ids: Sequence[int], send: Callable[[list[int]], object], *,
          batch: int = BATCH) -> Iterator[Refanned]:
    """Plan ``ids`` again, a batch per transaction, and ``send`` the new pending deliveries; progress after each batch."""
    written = 0
    for start in range(0, len(ids), batch):
        chunk = list(ids[start:start + batch])
        before = _deliveries(session, chunk)
        planned = fanout.plan_many(session, chunk)
        written += _deliveries(session, chunk) - before
        session.commit()
        for pending in batches.split(planned.pending, 50):
            send(pending)
        yield Refanned(min(start + batch, len(ids)), len(ids), written)


def dry_run(session: Session, ids: Sequence[int], *, batch: int = BATCH) -> dict[int, int]:
    """How many deliveries each transition would gain (those that would gain any), writing nothing."""
    gains: dict[int, int] = {}
    for start in range(0, len(ids), batch):
        records = read_records(session.connection(), ids[start:start + batch])
        for transition_id, rows in fanout.missing_deliveries(session, records).items():
            if rows:
                gains[transition_id] = len(rows)
        session.rollback()
    return gains


def _warn_unnotified(models: list[str]) -> None:
    """Say which models have no notifier in this process: their transitions cannot gain anything here.

    Raises:
        ConfigurationError: none of them has one (TIDINGS_NOTIFIERS unset?): re-planning would write nothing.
    """
    known = registry.models()
    lacking = [model for model in models if model not in known]
    if not lacking:
        return
    hint = "set TIDINGS_NOTIFIERS (or pass --import) to the modules that declare the notifiers, as for the workers"
    if len(lacking) == len(models):
        raise ConfigurationError(f"tidings refan: no notifier for {', '.join(lacking)} is registered here: {hint}.")
    print(f"note: no notifier for {', '.join(lacking)} is registered here; their transitions gain nothing ({hint}).",
          file=sys.stderr)


def _deliveries(session: Session, transition_ids: list[int]) -> int:
    return int(session.scalar(select(func.count()).select_from(Delivery)
                              .where(Delivery.transition_id.in_(transition_ids))) or 0)


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``refan`` subcommand's arguments."""
    again = commands.add_parser(
        "refan", help="plan transitions again, writing only the deliveries they are missing",
        description="Plan transitions again with the notifiers registered now (TIDINGS_NOTIFIERS, --import): for "
                    "those fanned out by a worker without their notifiers, or a notifier added since. Only missing "
                    "deliveries are written and sent; what was written already, sent or not, is left alone.")
    again.add_argument("ids", nargs="*", type=int, help="transition ids")
    again.add_argument("--model", help="only transitions of this model, e.g. Loan")
    again.add_argument("--key", help="only this record of --model (its primary key)")
    again.add_argument("--trigger", help="only this trigger, e.g. accept")
    add_window(again, happened="committed", dry_run="say what would be written, change nothing")


def run(args: argparse.Namespace, session: Session, send: Callable[[list[int]], object]) -> int:
    """Run ``tidings refan`` as parsed; the exit code."""
    if args.key is not None and args.model is None:
        raise ConfigurationError("tidings refan: --key needs --model (a key is unique within one model).")
    selected = _select(session, ids=args.ids, model=args.model, key=args.key, trigger=args.trigger,
                       since=parse_time(args.since) if args.since else None,
                       until=parse_time(args.until) if args.until else None)
    session.commit()
    ids = [transition_id for transition_id, _ in selected]
    _warn_unnotified(sorted({model for _, model in selected}))
    if args.dry_run:
        gains = dry_run(session, ids)
        print(json.dumps({"would_write": {str(i): n for i, n in gains.items()}}) if args.json else
              f"would write {sum(gains.values())} deliveries for {len(gains)} of {len(ids)} transitions"
              + "".join(f"\n  transition {i}: {n}" for i, n in gains.items()))
        return 0
    done = Refanned(0, len(ids), 0)
    for done in refan(session, ids, send, batch=BATCH):
        if len(ids) > BATCH:  # long runs: one progress line per batch, on stderr
            print(f"re-planned {done.transitions}/{done.total} transitions, {done.written} new deliveries",
                  file=sys.stderr, flush=True)
    print(json.dumps({"transitions": done.total, "written": done.written}) if args.json else
          f"re-planned {done.total} transitions: {done.written} new deliveries")
    return 0
