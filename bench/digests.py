"""Digests: what a digesting notifier costs the request, and the worker time of 300 watchers x 50 comments.

Run: ``python -m bench.digests`` (part of ``make bench``); ``python -m bench.digests --requests``
measures the request alone (``--runs N`` of it).

1. The request firing a transition whose notifier digests against the same transition of a model
   whose notifier does not (SQLite and PostgreSQL, StubBroker): the digest is planned by the
   worker's fan-out, so the request should pay nothing. Two models of the same table shape; each
   run on fresh tables, the same warm-up for both, then ``ROUNDS`` rounds: in each, a block of
   each request (one untimed, then ``BLOCK`` timed), in an order that turns over the rounds (every
   order of the three as often), and the round's ratio of block medians. The figure is each run's
   median of its per-round ratios, over ``REQUEST_RUNS`` runs; the spread is printed per run
   (the quartiles of its per-round ratios). A third request, the non-digesting one again, is the
   control: its ratio to itself is what the method reads when there is no difference at all.
2. 300 watchers x 50 comments in one window, on PostgreSQL, in process: the fan-outs of the 50
   comments (15,000 delivery rows, members of 300 digests), then the ``digests`` task sending
   the 300 digests of 50 events each through a channel that only counts; worker time of each part
   and in all, ``RUNS`` runs, each on a fresh schema.
"""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
import time
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
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
from .common import Figure, header, interleaved, machine, quiet_logs, reachable, report, scratch_space, table
from .request import settle

WATCHERS, COMMENTS, RUNS = 300, 50, 5
#: The request measurement: runs on fresh tables, rounds per run (after untimed ones), timed requests per block.
REQUEST_RUNS, ROUNDS, WARM_UP, BLOCK = 3, 240, 12, 5


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


#: The rounds' orders: every order of the three requests, in turn.
ORDERS = list(itertools.permutations(("instant", "digested", "control")))


def request_run(engine: Engine) -> tuple[list[float], list[float], float, float]:
    """One run on fresh tables: per-round ratios (digesting / not, control / not) and the medians of each (ms)."""
    broker = StubBroker()
    jobs.configure(jobs.Settings(), broker=broker, sweep_interval=0)
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([DigestedTask(id=1, state="a"), InstantTask(id=1, state="a")])
        session.commit()
    ops = {"instant": flipping(engine, InstantTask), "digested": flipping(engine, DigestedTask)}
    ops["control"] = ops["instant"]
    times: dict[str, list[float]] = {name: [] for name in ops}
    ratios: list[float] = []
    control: list[float] = []
    for round_ in range(WARM_UP + ROUNDS):
        blocks = {}
        for name in ORDERS[round_ % len(ORDERS)]:
            blocks[name] = statistics.median(interleaved(1, {name: ops[name]}, settle, block=BLOCK)[name])
        broker.flush_all()  # untimed: the fan-out messages the requests enqueued are dropped alike
        if round_ >= WARM_UP:
            ratios.append(blocks["digested"] / blocks["instant"])
            control.append(blocks["control"] / blocks["instant"])
            for name, value in blocks.items():
                times[name].append(value * 1000)
    return ratios, control, statistics.median(times["instant"]), statistics.median(times["digested"])


def requests(fresh: Callable[[], AbstractContextManager[Engine]], label: str) -> list[Figure]:
    """Figure (i): the run medians of per-round ratios, a transition whose notifier digests vs not; and the control."""
    runs = []
    for _ in range(REQUEST_RUNS):
        with fresh() as engine:
            runs.append(request_run(engine))
    rows = [(f"{label}, run {n + 1}", f"{instant:.3f}", f"{digested:.3f}", _spread(ratios), _spread(control))
            for n, (ratios, control, instant, digested) in enumerate(runs)]
    table(rows, ("run", "not digesting (ms)", "digesting (ms)", "ratio: median (quartiles)",
                 "control: median (quartiles)"))
    return [Figure(f"{label}: request of a transition whose notifier digests / one that does not, median of "
                   f"{ROUNDS} per-round ratios, {REQUEST_RUNS} runs", unit="ratio",
                   tidings=[statistics.median(run[0]) for run in runs], limit=1.02, digits=3),
            Figure(f"{label}: control, the request that does not digest / itself, the same way", unit="ratio",
                   tidings=[statistics.median(run[1]) for run in runs], digits=3)]


def _spread(ratios: list[float]) -> str:
    """The median of ``ratios`` and its quartiles."""
    low, middle, high = statistics.quantiles(ratios, n=4)
    return f"{middle:.3f} ({low:.3f}-{high:.3f})"


@contextmanager
def sqlite_tables() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'digests.db'}")
        yield engine
        engine.dispose()


@contextmanager
def postgres_tables() -> Iterator[Engine]:
    with scratch_space() as (url, _):
        engine = create_engine(url)
        yield engine
        engine.dispose()


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


def main(*, only_requests: bool = False) -> list[Figure]:
    header("Digests", f"(i) the request of a transition whose notifier digests against one whose notifier does "
                      f"not: {REQUEST_RUNS} runs on fresh tables, each of {ROUNDS} rounds (after {WARM_UP} alike, "
                      f"untimed) of a block of each ({BLOCK} timed after one untimed, the order turning over the "
                      f"rounds); a run's figure is the median of its per-round ratios of block medians (the "
                      f"figures' median: of the runs' figures; p90: the highest run's); the control is the request "
                      f"that does not digest against itself."
           + ("" if only_requests else f" (ii) {WATCHERS} watchers x {COMMENTS} comments in one window on "
                                       f"PostgreSQL, in process, {RUNS} runs (s)."))
    quiet_logs()
    figures = requests(sqlite_tables, "SQLite + StubBroker")
    if not reachable(5432):
        return report(figures, "PostgreSQL is not reachable on 127.0.0.1:5432: only the embedded default was measured.")
    figures += requests(postgres_tables, "PostgreSQL + StubBroker")
    if only_requests:
        jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
        return report(figures)
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
    import argparse

    from .__main__ import commit

    parser = argparse.ArgumentParser(prog="python -m bench.digests")
    parser.add_argument("--requests", action="store_true", help="measure the request alone, not the 300 x 50 case")
    parser.add_argument("--runs", type=int, default=REQUEST_RUNS, help="runs of the request measurement")
    args = parser.parse_args()
    REQUEST_RUNS = args.runs
    print(f"# Tidings benchmarks: digests\n\nCommit: {commit()}.\nStarted: "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\nMachine: {machine()}.", flush=True)
    main(only_requests=args.requests)
