"""The delivery row's life: claimed under a lease, renewed, its outcome recorded, reset for a re-send.

:mod:`jobs.delivery` sends one claim; this module is everything that reads or writes the
``tidings_deliveries`` row around that send. Outcomes are written only while the claim is still
the writer's (same attempt, not finished since), so a late worker never overwrites another's.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any, cast

from notifiers import Recipient
from sqlalchemy import BigInteger, ColumnElement, Engine, Integer, Table, and_, any_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from workflow import utcnow

from . import metrics, supersession
from .addressed import recipient_of
from .delivery_log import Delivery, Status
from .errors import DeliveryNotFound

__all__ = ["Claim", "SentLog", "claim", "claim_many", "finish", "renew", "reset_for_resend", "single_statement"]

# Outcomes are logged under "jobs.delivery", as they were when this module was part of it:
# operators filter the worker's log lines on that name (docs/operations.md).
_log = logging.getLogger("jobs.delivery")
_table = cast(Table, Delivery.__table__)
_COLUMNS = ("id", "key", "transition_id", "notifier", "party", "channel", "address", "name", "recipient_ref",
            "locale", "attempts")

# Core statements, built once: claiming and recording run once per delivery, and an ORM
# statement costs several times their Python work (see docs/PERFORMANCE.md).
# Never before its due time. A delivery without a supersession rule is claimed by a statement as
# simple as before rules existed (two NULL checks more); one with a rule by a second statement,
# which claims it only if no later transition voided it (jobs.supersession), in that same UPDATE.
def _claiming(ids: ColumnElement[bool]) -> Any:
    return (
        update(_table)
        .where(or_(_table.c.status == Status.PENDING,
                   and_(_table.c.status == Status.SENDING, _table.c.lease_until < bindparam("claim_now"))),
               or_(_table.c.due_at.is_(None), _table.c.due_at <= bindparam("claim_now")), ids)
        .values(status=Status.SENDING, attempts=_table.c.attempts + 1, updated_at=bindparam("claim_now"),
                lease_until=bindparam("claim_lease"), claimed_at=bindparam("claim_now"))
        .returning(*(_table.c[name] for name in _COLUMNS))
    )


# The ids as an IN list of one placeholder each, or on PostgreSQL as one array (= ANY): one
# statement text however many ids, so neither SQLAlchemy nor psycopg renders it again for each
# count, and the server prepares it once.
_CLAIMING = _claiming(_table.c.id.in_(bindparam("claim_ids", expanding=True)))
_CLAIMING_PG = _claiming(_table.c.id == any_(bindparam("claim_ids", type_=postgresql.ARRAY(BigInteger))))
# An outcome is written only while the claim is still this worker's: the same attempt, and not
# finished since. Once its lease ran out, another worker may have claimed the delivery again
# (attempts + 1); a late outcome must not overwrite what that one recorded.
_HELD = and_(_table.c.id == bindparam("record_id"), _table.c.attempts == bindparam("record_attempts"),
             _table.c.status.in_([Status.SENDING, Status.PENDING]))
_RENEW = (
    update(_table)
    .where(tuple_(_table.c.id, _table.c.attempts).in_(bindparam("renew_ids", expanding=True)),
           _table.c.status == Status.SENDING)
    .values(lease_until=bindparam("renew_lease"))
    .returning(_table.c.id)
)
_RECORD = (
    update(_table)
    .where(_HELD)
    .values(status=bindparam("record_status"), last_error=bindparam("record_error"),
            updated_at=bindparam("record_now"), lease_until=bindparam("record_lease"),
            sent_at=bindparam("record_sent_at"), provider=bindparam("record_provider"))
)

_SENT_VALUES: dict[str, Any] = dict(status=Status.SENT, last_error=None, updated_at=bindparam("sent_now"), lease_until=None,
                    sent_at=bindparam("sent_now"))
_STILL_HELD = _table.c.status.in_([Status.SENDING, Status.PENDING])
_RECORD_SENT = (
    update(_table)
    .where(tuple_(_table.c.id, _table.c.attempts).in_(bindparam("sent_ids", expanding=True)), _STILL_HELD)
    .values(**_SENT_VALUES)
    .returning(_table.c.id)
)
_SENT_PAIRS = (func.unnest(bindparam("sent_id", type_=postgresql.ARRAY(BigInteger)),
                           bindparam("sent_attempts", type_=postgresql.ARRAY(Integer)))
               .table_valued("id", "attempts").render_derived("sent_"))
_RECORD_SENT_PG = (
    update(_table)
    .where(tuple_(_table.c.id, _table.c.attempts).in_(select(_SENT_PAIRS.c.id, _SENT_PAIRS.c.attempts)), _STILL_HELD)
    .values(**_SENT_VALUES)
    .returning(_table.c.id)
)
_CLAIMS = (_CLAIMING.where(supersession.UNRULED), _CLAIMING.where(supersession.STANDING))
_CLAIMS_PG = (_CLAIMING_PG.where(supersession.UNRULED), _CLAIMING_PG.where(supersession.STANDING))


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds (``sending``, under a lease): what sending it needs."""

    id: int
    key: str
    transition_id: int
    notifier: str
    party: str
    channel: str
    address: str
    name: str | None
    recipient_ref: str
    locale: str | None
    attempts: int

    def recipient(self, address_kind: str = "email") -> Recipient:
        """Who it is sent to: the row's address is the one of its channel's kind."""
        return recipient_of(self, address_kind)


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def single_statement(session: Session) -> None:
    """Let the session's next statement be a transaction of its own (autocommit), on PostgreSQL.

    A claim and an outcome are one UPDATE each, as atomic alone; psycopg would wrap each in a
    BEGIN and a COMMIT round trip of their own (3 round trips instead of 1, each costing context
    switches on a worker's few CPUs). Only through an engine: a test's connection inside an
    outer transaction must stay in it.
    """
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        if session.in_transaction():
            session.commit()
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def claim(session: Session, delivery_id: int, lease_seconds: float) -> Claim | None:
    """pending -> sending (or sending past its lease -> sending), committed; the claim, or None."""
    return next(iter(claim_many(session, [delivery_id], lease_seconds)), None)


def claim_many(session: Session, delivery_ids: list[int], lease_seconds: float) -> list[Claim]:
    """:func:`claim` for several deliveries in one statement (two with supersession rules); the claims, in the order asked.

    Those not taken were sent already, are not due yet, or are void: the void ones are recorded ``skipped``.
    """
    now = utcnow()
    params = {"claim_ids": delivery_ids, "claim_now": now, "claim_lease": now + dt.timedelta(seconds=lease_seconds)}
    found: dict[int, Claim] = {}
    for statement in _CLAIMS_PG if _on_postgresql(session) else _CLAIMS:
        single_statement(session)
        found.update((held.id, held) for held in (Claim(*row) for row in session.connection().execute(
            statement, {**params, "claim_ids": [i for i in delivery_ids if i not in found]})))
        session.commit()
        if len(found) == len(delivery_ids):
            return [found[i] for i in delivery_ids]
    _void(supersession.void(session, [i for i in delivery_ids if i not in found]))
    return [found[i] for i in delivery_ids if i in found]


def _void(voided: list[int]) -> None:
    """Log each delivery found void instead of claimed."""
    for delivery_id in voided:
        _log.info("Delivery %s: superseded by a later transition; recorded skipped.", delivery_id,
                  extra={"delivery_id": delivery_id, "status": Status.SKIPPED})


def renew(session: Session, held: list[Claim], lease_seconds: float) -> list[Claim]:
    """Extend the leases of claims held for a while, in one statement; those still held.

    A message sends its deliveries one after the other under leases taken together: a slow
    channel could let the later ones' leases run out while the first are being sent. A claim
    swept or claimed again meanwhile is not returned: it is someone else's now.
    """
    if not held:
        return []
    single_statement(session)
    kept = set(session.connection().execute(_RENEW, {
        "renew_ids": [(one.id, one.attempts) for one in held],
        "renew_lease": utcnow() + dt.timedelta(seconds=lease_seconds)}).scalars().all())
    session.commit()
    return [one for one in held if one.id in kept]


def finish(session: Session, held: Claim, status: str, error: str | None,
           lease_until: dt.datetime | None = None, provider: str | None = None) -> str:
    """Record the outcome of a claim while it is still held (and the failover ``provider`` it ended with, if any);
    the status written, or ``lost (<status now>)``."""
    now = utcnow()
    # A transaction that failed in the database must be rolled back before the outcome can be
    # written; and what rendering changed must not be committed with it (a notifier must not
    # change rows by accident). What it only loaded stays, for the next delivery of the message.
    if isinstance(sys.exc_info()[1], SQLAlchemyError):
        session.rollback()
    if session.dirty or session.new or session.deleted:
        session.expunge_all()
    single_statement(session)
    result = session.connection().execute(_RECORD, {
        "record_id": held.id, "record_attempts": held.attempts, "record_status": status, "record_error": error,
        "record_now": now, "record_lease": lease_until, "record_sent_at": now if status == Status.SENT else None,
        "record_provider": provider})
    session.commit()
    if not getattr(result, "rowcount", 1):
        return _lost(session, held, status)
    _recorded(held, status, error)
    return status


def _lost(session: Session, held: Claim, status: str) -> str:
    """Report an outcome not written because the claim was taken again meanwhile; what it is now."""
    current = session.scalar(select(Delivery.status).where(Delivery.id == held.id))
    _log.warning("Delivery %s (%s to %s): its claim ran out and was taken again; %s not recorded (now %s).",
                 held.id, held.channel, held.address, status, current,
                 extra={"delivery_id": held.id, "transition_id": held.transition_id, "channel": held.channel})
    return f"lost ({current})"


def _recorded(held: Claim, status: str, error: str | None) -> None:
    """Log and count an outcome written."""
    # A sent delivery is the common case: one line each at DEBUG, so that INFO logs what needs a look.
    log = (_log.debug if status == Status.SENT else _log.info if status in (Status.SKIPPED, Status.PENDING)
           else _log.warning)  # a retry warns itself
    log("Delivery %s (%s to %s): %s%s", held.id, held.channel, held.address, status,
        f" - {error}" if error else "",
        extra={"delivery_id": held.id, "transition_id": held.transition_id, "channel": held.channel,
               "status": status})
    metrics.delivery_finished(held.channel, status)


class SentLog:
    """Deliveries their channel accepted, recorded ``sent`` together: one UPDATE for up to ``size``.

    A message that sends many deliveries one after the other (a batched fan-out, a chunk) would
    otherwise pay a round trip per delivery. What is waiting is written once ``size`` are
    waiting or the oldest has waited ``seconds``, and by :meth:`flush` at the end of the
    message. The price: a worker killed between a send and the next write leaves those
    deliveries ``sending``; once their lease runs out they are sent again (each with the same
    Message-ID, so receivers can drop the copy), as a single unrecorded send is today.
    """

    def __init__(self, session: Session, *, size: int = 8, seconds: float = 0.05) -> None:
        self.session, self.size, self.seconds = session, size, seconds
        self._held: list[Claim] = []
        self._since = 0.0

    def add(self, held: Claim) -> None:
        """Note that ``held`` was sent; write what waits if it is time.

        A transaction rendering began (a lazy load) ends here, as a recorded outcome would end
        it: held open across sends, its read lock would block other threads' writes on SQLite.
        """
        if self.session.in_transaction():
            self._discard_changes()
            self.session.commit()
        if not self._held:
            self._since = time.monotonic()
        self._held.append(held)
        self.flush_if_due()

    def flush_if_due(self) -> None:
        """Write what waits if ``size`` are waiting or the oldest has waited ``seconds`` (call it before a send too)."""
        if len(self._held) >= self.size or (self._held and time.monotonic() - self._since >= self.seconds):
            self.flush()

    def _discard_changes(self) -> None:
        """As in :func:`finish`: what rendering changed is never committed."""
        if self.session.dirty or self.session.new or self.session.deleted:
            self.session.expunge_all()

    def flush(self) -> None:
        """Write every waiting ``sent`` outcome (those whose claim was taken again are reported lost)."""
        held, self._held = self._held, []
        if not held:
            return
        session = self.session
        self._discard_changes()
        now = utcnow()
        single_statement(session)
        params: dict[str, Any]
        if _on_postgresql(session):
            statement, params = _RECORD_SENT_PG, {"sent_id": [one.id for one in held],
                                                  "sent_attempts": [one.attempts for one in held]}
        else:
            statement, params = _RECORD_SENT, {"sent_ids": [(one.id, one.attempts) for one in held]}
        written = set(session.connection().execute(statement, {**params, "sent_now": now}).scalars())
        session.commit()
        for one in held:
            if one.id in written:
                _recorded(one, Status.SENT, None)
            else:
                _lost(session, one, Status.SENT)


def reset_for_resend(session: Session, *, ids: list[int] | None = None, statuses: tuple[str, ...] = ()) -> list[int]:
    """Put failed or dead deliveries back to ``pending`` with their attempts reset; return their ids.

    Only ``failed`` and ``dead`` deliveries are reset (a sent one is never sent again this way).

    Raises:
        DeliveryNotFound: an id names no failed or dead delivery.
    """
    allowed = tuple(s for s in (statuses or (Status.FAILED, Status.DEAD)) if s in (Status.FAILED, Status.DEAD))
    query = select(Delivery.id).where(Delivery.status.in_(allowed)).order_by(Delivery.id)
    if ids is not None:
        query = query.where(Delivery.id.in_(ids))
    found = list(session.scalars(query.with_for_update(skip_locked=True)))
    missing = sorted(set(ids or ()) - set(found))
    if missing:
        session.rollback()
        raise DeliveryNotFound(f"No failed or dead delivery has id {', '.join(map(str, missing))}.")
    if found:
        session.execute(update(Delivery).where(Delivery.id.in_(found))
                        .values(status=Status.PENDING, attempts=0, lease_until=None, updated_at=utcnow())
                        .execution_options(synchronize_session=False))
    session.commit()
    return found
