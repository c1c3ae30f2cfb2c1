"""Time: the due task's query among 1,000,000 deliveries held for later, and what the claim's time checks cost.

Run: ``python -m bench.due`` (part of ``make bench``). A scratch schema holds 1,000,000
transitions and 1,000,000 pending deliveries not due yet (due over the next two years, half of
them with a supersession rule), plus ``DUE`` that became due. Shown: the plans of the due task's
SELECT and UPDATE, of a claim checking a rule against the transition log and of the sweeper's
search for lost deliveries
(``EXPLAIN (ANALYZE, BUFFERS)``, rolled back); timed: the due task taking the ``DUE`` rows, and
claiming ``CHUNK`` deliveries without a rule with today's claim statement against the statement
before deliveries had a due time and a rule (interleaved).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, cast

from jobs import Delivery, Status
from jobs.claims import claim, claim_many
from jobs.due import take_due
from jobs.sweeper import sweep
from sqlalchemy import Engine, Table, and_, bindparam, create_engine, event, or_, text, update
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata
from workflow import utcnow

from .common import Figure, fmt_seconds, header, interleaved, quiet_logs, reachable, report, scratch_space

ROWS = 1_000_000
DUE = 100
CHUNK = 50
ITERATIONS = 100
_table = cast(Table, Delivery.__table__)
# The claim statement as it was before deliveries had a due time and a supersession rule.
_BEFORE = (update(_table)
           .where(or_(_table.c.status == Status.PENDING,
                      and_(_table.c.status == Status.SENDING, _table.c.lease_until < bindparam("claim_now"))),
                  _table.c.id.in_(bindparam("claim_ids", expanding=True)))
           .values(status=Status.SENDING, attempts=_table.c.attempts + 1, updated_at=bindparam("claim_now"),
                   lease_until=bindparam("claim_lease"))
           .returning(_table.c.id, _table.c.key, _table.c.transition_id))


def fill(engine: Engine) -> float:
    """``ROWS`` transitions and deliveries held for later, ``DUE`` due ones and 2 x ``CHUNK`` at once; VACUUM ANALYZE."""
    start = time.perf_counter()
    total = ROWS + DUE + 2 * CHUNK
    with engine.begin() as connection:
        connection.execute(text(f"""
            INSERT INTO tidings_transitions (model, key, trigger, source, dest, actor, context, created_at, fanned_out_at)
            SELECT 'BenchTask', i::text, 'open', 'new', 'open', 'bench', '{{}}', now(), now()
            FROM generate_series(1, {total}) AS i"""))
        connection.execute(text(f"""
            INSERT INTO tidings_deliveries (key, transition_id, notifier, party, channel, address, recipient_ref,
                                            status, attempts, created_at, updated_at, due_at, void_unless_in)
            SELECT md5(i::text), i, 'bench.Reminder', 'watchers', 'email', 'w' || i || '@example.com', '',
                   CASE WHEN i <= {ROWS + DUE} THEN 'scheduled' ELSE 'pending' END, 0, now() - interval '1 day',
                   now() - interval '1 day',
                   CASE WHEN i <= {ROWS} THEN now() + i * interval '1 minute'
                        WHEN i <= {ROWS + DUE} THEN now() - interval '1 minute' END,
                   CASE WHEN i % 2 = 0 AND i <= {ROWS + DUE} THEN 'open' END
            FROM generate_series(1, {total}) AS i"""))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE tidings_transitions")
        connection.exec_driver_sql("VACUUM ANALYZE tidings_deliveries")
    return time.perf_counter() - start


def _reset(session: Session, ids: list[int], status: str = Status.SCHEDULED) -> None:
    """Put deliveries back as they were: ``status``, untouched since a day."""
    values: dict[str, Any] = {"status": status, "lease_until": None, "attempts": 0,
                              "updated_at": utcnow() - dt.timedelta(days=1)}
    session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(**values))
    session.commit()


def plans(engine: Engine) -> list[str]:
    """Run the due task and a claim with a rule once, then EXPLAIN ANALYZE what they ran; the plans' lines."""
    seen: dict[tuple[str, str], tuple[str, Any]] = {}
    step = [""]

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM tidings_deliveries" in statement or statement.startswith("UPDATE tidings_deliveries"):
            if step[0].startswith("a claim") or (step[0], statement.split()[0]) not in seen:  # a claim: its last UPDATE
                seen[(step[0], statement.split()[0])] = (statement, parameters)

    event.listen(engine, "before_cursor_execute", capture)
    with Session(engine) as session:
        step[0] = "the due task"
        _reset(session, take_due(session))
        _reset(session, [ROWS + 2], Status.PENDING)
        step[0] = "a claim of a delivery with a rule"
        claim(session, ROWS + 2, 60)  # an even id: one with a rule
        step[0] = "the sweeper"  # what looks for lost work must not read the rows held for later
        sweep(session, grace_seconds=60)
        _reset(session, list(range(ROWS + 1, ROWS + DUE + 1)))
        _reset(session, [ROWS + 2], Status.PENDING)  # for its claim's plan
    event.remove(engine, "before_cursor_execute", capture)
    chosen = {key: found for key, found in seen.items() if key in (
        ("the due task", "SELECT"), ("the due task", "UPDATE"), ("a claim of a delivery with a rule", "UPDATE"),
        ("the sweeper", "SELECT"))}
    lines: list[str] = []
    with engine.connect() as connection:
        for (where, verb), (statement, parameters) in chosen.items():
            print(f"**{where}, {verb}**: ", end="")
            transaction = connection.begin()
            try:
                plan = [row[0] for row in connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)]
            finally:
                transaction.rollback()
            print(f"`{' '.join(statement.split())[:200]}`\n\n```\n" + "\n".join(plan) + "\n```\n")
            lines += plan
    return lines


def timings(engine: Engine) -> list[Figure]:
    """The due task taking ``DUE`` rows; a claim of ``CHUNK`` deliveries now and before, interleaved."""
    with Session(engine) as session:
        due = take_due(session)
        _reset(session, due)
        ids = list(session.scalars(text("SELECT id FROM tidings_deliveries WHERE due_at IS NULL ORDER BY id")))
        before, now = ids[:CHUNK], ids[CHUNK:]

        def settle() -> None:
            _reset(session, due)
            _reset(session, ids, Status.PENDING)

        def old() -> None:
            moment = utcnow()
            session.connection().execute(_BEFORE, {"claim_ids": before, "claim_now": moment,
                                                   "claim_lease": moment + dt.timedelta(seconds=60)}).all()
            session.commit()

        times = interleaved(ITERATIONS, {"due": lambda: take_due(session), "before": old,
                                         "now": lambda: claim_many(session, now, 60)}, settle)
    return [Figure(f"due task: take {DUE} due among {ROWS:,} held for later", unit="ms", tidings=times["due"],
                   limit=50.0, scale=1000.0),
            Figure(f"claim of {CHUNK} deliveries without a rule: now vs before due times and rules", unit="ms",
                   tidings=times["now"], baseline=times["before"], baseline_name="claim before", limit=1.1,
                   scale=1000.0, digits=3)]


def main() -> list[Figure]:
    """The plans and the figures of deliveries held for a time."""
    header("Time: deliveries held for later", f"{ROWS:,} pending deliveries not due yet on PostgreSQL; the due "
                                              f"task's plans and time, and a claim's (median and p90 of {ITERATIONS}).")
    quiet_logs()
    if not reachable(5432):
        print("PostgreSQL not reachable on 127.0.0.1: skipped.")
        return []
    with scratch_space() as (url, _):
        engine = create_engine(url)
        tidings_metadata.create_all(engine)
        print(f"(Filled {ROWS:,} deliveries in {fmt_seconds(fill(engine))}.)\n", flush=True)
        lines = plans(engine)
        used = "ix_tidings_deliveries_due" in "\n".join(lines)
        print("The due task's SELECT reads the partial index on (status, due_at)." if used
              else "**The due task's SELECT does not use ix_tidings_deliveries_due.**")
        figures = report(timings(engine))
        engine.dispose()
    return figures


if __name__ == "__main__":
    main()
