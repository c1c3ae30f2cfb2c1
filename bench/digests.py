"""Digests: what a digesting notifier costs the request, and the worker time of 300 watchers x 50 comments.

Run: ``python -m bench.digests`` (part of ``make bench``).

1. The request firing a transition whose notifier digests against the same transition of a model
   whose notifier does not (SQLite and PostgreSQL, StubBroker): the digest is planned by the
   worker's fan-out, so the request should pay nothing.
2. 300 watchers x 50 comments in one window, on PostgreSQL, in process: the fan-outs of the 50
   comments (15,000 delivery rows, members of 300 digests), then the ``digests`` task sending
   the 300 digests of 50 events each through a channel that only counts; worker time of each part
   and in all, ``RUNS`` runs, each on a fresh schema.
"""

from __future__ import annotations

import datetime as dt
import time
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jobs
from dramatiq.brokers.stub import StubBroker
from jobs import digest_sending, fanout
from notifiers import Channel
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord, clock
from workflow import metadata as tidings_metadata

from .app import Base, DigestedTask, DigestIssue, DigestWatcher, InstantTask
from .common import Figure, header, interleaved, machine, quiet_logs, reachable, report, scratch_space
from .request import BLOCK, ITERATIONS, ms, settle

WATCHERS, COMMENTS, RUNS = 300, 50, 5


class Counting(Channel):
    """Accepts each message and keeps nothing but a count (the worker's own time is measured, not a server's)."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, message: Any, to: Any, *, key: str, **extra: Any) -> None:
        self.sent += 1


def flipping(engine: Engine, model: type) -> Callable[[], None]:
    def op() -> None:
        with Session(engine) as session:
            row = session.get(model, 1)
            assert row is not None
            row.fire("flip" if row.state == "a" else "flop", actor="bench")
            session.commit()
    return op


def requests(engine: Engine, label: str) -> Figure:
    """Figure (i): a transition whose notifier digests against one whose notifier does not, interleaved."""
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([DigestedTask(id=1, state="a"), InstantTask(id=1, state="a")])
        session.commit()
    ops = {"instant": flipping(engine, InstantTask), "digested": flipping(engine, DigestedTask)}
    interleaved(20, ops, settle)
    times = interleaved(ITERATIONS, ops, settle, block=BLOCK)
    return ms(f"{label}: transition whose notifier digests vs one that does not", times["digested"],
              times["instant"], "same transition, no digest", 1.02)


def digest_run(url: str) -> tuple[float, float, int]:
    """One run of 300 x 50 on a fresh schema: (fan-out seconds, digest sending seconds, events sent)."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    channel = Counting()
    jobs.configure(jobs.Settings(), broker=StubBroker(), engine=engine, channels={"email": channel}, sweep_interval=0)
    with Session(engine) as session:
        issue = DigestIssue(id=1, state="open", watchers=[DigestWatcher(email=f"w{n}@example.com")
                                                         for n in range(WATCHERS)])
        session.add(issue)
        session.commit()
        for _ in range(COMMENTS):
            issue.fire("comment", actor="bench")
            session.commit()
        ids = list(session.scalars(select(TransitionRecord.id).order_by(TransitionRecord.id)))
    start = time.perf_counter()
    with Session(engine) as session:
        for transition_id in ids:  # as the workers' fan-out messages do, one transition each
            fanout.plan(session, transition_id)
    planned = time.perf_counter() - start
    clock.advance(dt.timedelta(hours=1))
    start = time.perf_counter()
    closed = digest_sending.run()
    sending = time.perf_counter() - start
    clock.reset()
    assert channel.sent == WATCHERS and closed.events == WATCHERS * COMMENTS, (channel.sent, closed)
    engine.dispose()
    return planned, sending, closed.events


def main() -> list[Figure]:
    header("Digests", f"(i) the request of a transition whose notifier digests, median and p90 of "
                      f"{ITERATIONS * BLOCK} requests, interleaved in blocks of {BLOCK} (ms); (ii) {WATCHERS} watchers "
                      f"x {COMMENTS} comments in one window on PostgreSQL, in process, {RUNS} runs (s).")
    quiet_logs()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
        engine = create_engine(f"sqlite:///{Path(folder) / 'digests.db'}")
        figures.append(requests(engine, "SQLite + StubBroker"))
        engine.dispose()
    if not reachable(5432):
        return report(figures, "PostgreSQL is not reachable on 127.0.0.1:5432: only the embedded default was measured.")
    with scratch_space() as (url, _):
        jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
        engine = create_engine(url)
        figures.append(requests(engine, "PostgreSQL + StubBroker"))
        engine.dispose()
    runs = []
    for _ in range(RUNS):
        with scratch_space() as (url, _):
            runs.append(digest_run(url))
    figures.append(Figure(f"{WATCHERS} x {COMMENTS}: fan-out of the {COMMENTS} comments ({WATCHERS * COMMENTS:,} "
                          f"rows, {WATCHERS} digests)", unit="s", tidings=[r[0] for r in runs], digits=2))
    figures.append(Figure(f"{WATCHERS} x {COMMENTS}: sending the {WATCHERS} digests of {COMMENTS} events", unit="s",
                          tidings=[r[1] for r in runs], digits=2))
    figures.append(Figure(f"{WATCHERS} x {COMMENTS}: planning and sending, worker time in all", unit="s",
                          tidings=[r[0] + r[1] for r in runs], limit=5.0, digits=2))
    jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
    return report(figures)


if __name__ == "__main__":
    from .__main__ import commit

    print(f"# Tidings benchmarks: digests\n\nCommit: {commit()}.\nStarted: "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\nMachine: {machine()}.", flush=True)
    main()
