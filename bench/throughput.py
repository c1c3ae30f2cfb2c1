"""Worker throughput: Tidings' delivery path against a bare Dramatiq actor sending the same mail.

Run: ``python -m bench.throughput`` (part of ``make bench``). Both run as ``dramatiq`` worker
processes (2 processes x 8 threads, Dramatiq's default prefetch) on the same Redis, mailing the
same aiosmtpd server on loopback. Two ways of timing:

- *a backlog*: the run queues its messages first (Tidings: 2,000 transitions, each to one
  recipient), then starts the worker; the rate is taken from the first mail accepted to the end
  of the worker's work (the last mail, or the last message acknowledged if later), so start-up
  and the commits are left out of both;
- *from the first commit*: the worker runs (warmed by one mail) before anything is committed
  or sent; the rate is taken from the first commit (bare: the first ``send()``) to the end of
  the worker's work, one commit (one send) after the other, as requests would make them.

Runs alternate bare (bytes with ``sendmail``, as Tidings sends a plain mail), bare through
``EmailMessage``, Tidings on empty tables (the 2,000 transitions in one commit, then in 2,000
commits of one each), the two from-the-first-commit runs and, for figure 5, Tidings on tables
holding 1,000,000 rows; one more run of each with stage timers (``bench/stages.py``) shows where
the worker's time goes.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import jobs
from jobs import outbox
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from .app import Base, PlainTask, Task, watchers
from .common import QUICK, REDIS_URL, Figure, header, quiet_logs, reachable, report, scratch_space, table
from .runs import WINDOW, Run, run_worker, sink

COUNT = 1000 if QUICK else 2000
ROUNDS = 1 if QUICK else 3


def bare(queue: str, *, mime: bool = False, live: str | None = None, stages: Path | None = None) -> Run:
    """A bare Dramatiq run: ``COUNT`` messages, each sending one mail (built as bytes, or through ``EmailMessage``).

    ``live``, a database URL: the worker runs first, and each message is sent by a request that
    commits a plain state update first, as an application enqueuing its own job would.
    """
    with sink() as (handler, port):
        env = {"BENCH_REDIS_URL": REDIS_URL, "BENCH_QUEUE": queue, "BENCH_SMTP_HOST": "127.0.0.1",
               "BENCH_SMTP_PORT": str(port)}
        os.environ.update(env)  # the actor's queue and broker are read when it is imported
        from .bare_actor import bare_send, bare_send_mime

        actor = bare_send_mime if mime else bare_send
        produce = _requests(live, actor.send) if live else None
        if produce is None:
            for number in range(COUNT):
                actor.send(number)
        else:
            actor.send(COUNT)  # the warm-up mail
        modules = ["bench.bare_actor:broker"]
        if stages is not None:
            env["BENCH_STAGES"] = str(stages)
            modules.append("bench.stages")
        return run_worker(modules, env, handler, COUNT, actor.queue_name, produce)


def _requests(database_url: str, send: Callable[[int], object]) -> Callable[[], None]:
    """``COUNT`` requests, each committing a plain state update then sending its message (made ready now)."""
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    session = Session(engine)
    first = (session.scalar(select(func.max(PlainTask.id))) or 0) + 1
    tasks = [PlainTask(id=n, state="open") for n in range(first, first + COUNT)]
    session.add_all(tasks)
    session.commit()

    def produce() -> None:
        try:
            for number, task in enumerate(tasks):
                task.state = "done"
                session.commit()
                send(number)
        finally:
            session.close()
            engine.dispose()

    return produce


def tidings(queue: str, database_url: str, *, stages: Path | None = None, one_commit: bool = True,
            live: bool = False, recipients: int = 1) -> Run:
    """A Tidings run: ``COUNT`` transitions, each telling one watcher, committed at once or one per commit.

    Committed at once, the outbox's thread finds them all waiting and sends them in messages of
    up to 50 transitions. One per commit, as requests commit them, it sends each as soon as it
    is committed: the worker gets one message per transition. ``live``: committed one per
    commit while the worker runs, timed from the first commit. ``recipients``: watchers per
    transition (``COUNT // recipients`` transitions, ``COUNT`` mails).
    """
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    jobs.configure(jobs.Settings(), broker_url=REDIS_URL, queue=queue, database_url=database_url, sweep_interval=0)
    session = Session(engine)
    first = (session.scalar(select(func.max(Task.id))) or 0) + 1
    count = COUNT // recipients
    tasks = [Task(id=n, watchers=watchers(recipients, first=n)) for n in range(first, first + count + live)]
    session.add_all(tasks)
    session.commit()

    def produce(each: bool = True) -> None:
        for task in tasks:
            task.finish()
            if each:
                session.commit()
        session.commit()

    if live:
        tasks.pop(0).finish()  # the warm-up mail
        session.commit()
    else:
        produce(each=not one_commit)
    outbox.dispatcher.flush(60)
    with sink() as (handler, port):
        env = {"TIDINGS_DATABASE_URL": database_url, "TIDINGS_BROKER_URL": REDIS_URL, "TIDINGS_QUEUE": queue,
               "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": "127.0.0.1", "TIDINGS_SMTP_PORT": str(port),
               "TIDINGS_SWEEP_INTERVAL": "0"}
        modules = ["jobs", "bench.app"]
        if stages is not None:
            env["BENCH_STAGES"] = str(stages)
            modules.append("bench.stages")
        try:
            return run_worker(modules, env, handler, count * recipients, queue, produce if live else None)
        finally:
            session.close()
            engine.dispose()


def profile(queue: str, database_url: str) -> None:
    """One more run of each worker with stage timers (bench/stages.py); print where the time goes."""
    rows = []
    for label, go in (("bare Dramatiq", lambda folder: bare(f"{queue}_bare", stages=folder)),
                      ("Tidings", lambda folder: tidings(f"{queue}_tidings", database_url, stages=folder))):
        with tempfile.TemporaryDirectory() as folder:
            run = go(Path(folder))
            totals: dict[str, float] = {}
            for file in Path(folder).glob("*.json"):
                for stage, seconds in json.loads(file.read_text())["totals"].items():
                    totals[stage] = totals.get(stage, 0.0) + seconds
        for stage in sorted(name for name in totals if "CPU" not in name):
            cpu = totals.get(f"{stage}, CPU")
            rows.append((label, stage, f"{totals[stage] / COUNT * 1000:.2f}",
                         f"{cpu / COUNT * 1000:.2f}" if cpu is not None else ""))
        rows.append((label, "all the worker's processes and threads (CPU only)", "",
                     f"{run.cpu / COUNT * 1000:.2f}"))
        rows.append((label, "rate of this profiled run", f"{run.rate:.0f} mails/s", ""))
    print("Where a worker's time goes: a profiled run of each, per delivery. Wall time is a thread's, "
          "so with 16 threads on 2 CPUs (shared with PostgreSQL, Redis and the SMTP server) it includes "
          "waiting for the CPU and the GIL; CPU is that thread's own.\n")
    table(rows, ["worker", "stage", "wall ms", "CPU ms"])


def main(full_url: str | None = None) -> list[Figure]:
    """Figure 4, and figure 5's throughput when ``full_url`` names a database holding 1,000,000 rows."""
    header("Figure 4: worker throughput",
           f"{COUNT} mails per run to aiosmtpd, dramatiq 2 processes x 8 threads, PostgreSQL + Redis; "
           f"{ROUNDS} rounds alternating the workers. 'Backlog': the messages are queued before the "
           f"worker starts, timed from its first mail. 'From the first commit': the worker runs first, "
           f"the commits (bare: the sends) are made one after the other, timed from the first. Median of "
           f"the runs' rates; p90 column: the rate that 90 % of {WINDOW}-mail windows reached (mails/s).")
    quiet_logs()
    if not (reachable(5432) and reachable(6379)):
        print("PostgreSQL or Redis not reachable on 127.0.0.1: skipped.")
        return []
    runs: dict[str, list[Run]] = {name: [] for name in ("bare", "bare_mime", "empty", "each", "bare_live",
                                                         "each_live", "full")}
    with scratch_space() as (database_url, queue):
        for _ in range(ROUNDS):  # the quick run: the bare actor and the one-commit-each backlog only
            runs["bare"].append(bare(f"{queue}_bare"))
            if not QUICK:
                runs["bare_mime"].append(bare(f"{queue}_bare", mime=True))
                runs["empty"].append(tidings(f"{queue}_tidings", database_url))
            runs["each"].append(tidings(f"{queue}_each", database_url, one_commit=False))
            if not QUICK:
                runs["bare_live"].append(bare(f"{queue}_bare", live=database_url))
                runs["each_live"].append(tidings(f"{queue}_live", database_url, live=True))
            if full_url is not None:
                runs["full"].append(tidings(f"{queue}_full", full_url))
        bytes_actor = "bare actor, bytes with sendmail"
        each = rate_figure(f"a backlog of {COUNT:,} commits of one transition each vs bare Dramatiq", runs["each"],
                           runs["bare"], bytes_actor, 1.0)
        figures = [each] if QUICK else [
            rate_figure("deliveries per second, a backlog queued before the worker starts: Tidings "
                        f"({COUNT:,} transitions in one commit) vs bare Dramatiq", runs["empty"], runs["bare"],
                        bytes_actor, 0.7),
            each,
            rate_figure("the bare actor building each mail through EmailMessage, against the bytes one",
                        runs["bare_mime"], runs["bare"], bytes_actor, None),
            rate_figure("deliveries per second from the first commit, the worker running: Tidings, "
                        f"{COUNT:,} commits of one, vs bare Dramatiq, {COUNT:,} requests committing a plain update, "
                        "then sending", runs["each_live"], runs["bare_live"], "bare actor, from the first commit", None)]
        if runs["full"]:
            figures.append(rate_figure("deliveries per second, 1,000,000 rows in the logs vs empty", runs["full"],
                                       runs["empty"], "empty tables", 0.9))
        cpu = {name: statistics.median(r.cpu for r in rs) / COUNT * 1000 for name, rs in runs.items() if rs}
        note = "Worker CPU per mail (ms, median of runs): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()) + "."
        spread = "Rates of each run (mails/s): " + "; ".join(
            f"{k} " + ", ".join(f"{r.rate:.0f}" for r in rs) for k, rs in runs.items() if rs) + "."
        reported = report(figures, f"{note}\n{spread}")
        if not QUICK:
            profile(queue, database_url)
    jobs.configure(jobs.Settings(), broker_url="stub", sweep_interval=0)
    return reported


def rate_figure(name: str, tidings_runs: list[Run], baseline_runs: list[Run], baseline_name: str,
                limit: float | None) -> Figure:
    """A rate figure: medians over runs, the p90 column from the windows of every run."""
    return Figure(name, unit="mails/s", tidings=[r.rate for r in tidings_runs],
                  baseline=[r.rate for r in baseline_runs], baseline_name=baseline_name, limit=limit,
                  at_most=False, lower_is_better=False, digits=0,
                  tidings_tail=[w for r in tidings_runs for w in r.windows()],
                  baseline_tail=[w for r in baseline_runs for w in r.windows()])


if __name__ == "__main__":
    from .scale import filled

    with filled() as full_url:
        main(full_url)
