"""Retention: worker throughput while ``tidings prune`` deletes a 1,000,000-row delivery log, against without.

Run: ``python -m bench.prune`` (part of ``make bench``). The tables are ``bench.scale``'s
(1,000,000 transitions and 1,000,000 deliveries, nearly all final, their last change spread over
the 11.6 days before the fill). Rounds alternate the throughput run of ``bench.throughput`` (a
backlog of 2,000 transitions to one watcher each, ``dramatiq`` 2 processes x 8 threads, PostgreSQL
+ Redis, aiosmtpd on loopback) alone and with ``tidings prune`` running as a process of its own
(``TIDINGS_KEEP_DELIVERIES_DAYS`` one hour, batches of 1,000, the default pause after each), started before the run's commit
and stopped (SIGTERM) after its last mail. A round's rows deleted are counted from the table.
Then the prune of what is left runs alone to its end: the time a full prune takes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from .common import Figure, fmt_seconds, header, quiet_logs, reachable, report, scratch_space
from .runs import Run
from .throughput import COUNT, rate_figure, tidings

ROUNDS = 4
ROOT = Path(__file__).parents[1]
KEEP_DAYS = 1 / 24


def deliveries(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text("SELECT count(*) FROM tidings_deliveries")) or 0)
    finally:
        engine.dispose()


def start_prune(url: str) -> subprocess.Popen[bytes]:
    """``tidings prune`` on ``url`` in a process of its own."""
    env = {**os.environ, "TIDINGS_DATABASE_URL": url, "TIDINGS_BROKER_URL": "stub",
           "TIDINGS_KEEP_DELIVERIES_DAYS": str(KEEP_DAYS), "TIDINGS_KEEP_READ_INBOX_DAYS": "0",
           "TIDINGS_PRUNE_BATCH": "1000"}
    return subprocess.Popen([sys.executable, "-m", "jobs", "prune"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> bool:
    """Stop the prune (its batch in progress rolls back); whether it had finished first."""
    finished = process.poll() is not None
    if not finished:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    return finished


def during(queue: str, url: str) -> tuple[Run, int, float, bool]:
    """A throughput run with a prune going: the run, rows the prune deleted, its seconds, whether it ended."""
    before = deliveries(url)
    started = time.perf_counter()
    pruning = start_prune(url)
    try:
        run = tidings(queue, url)
    finally:
        ended = stop(pruning)
    seconds = time.perf_counter() - started
    return run, before + COUNT - deliveries(url), seconds, ended


def main(full_url: str | None = None) -> list[Figure]:
    """Throughput during a prune against without, then the full prune's time."""
    if full_url is None and reachable(5432) and reachable(6379):
        from .scale import filled

        with filled() as url:
            return main(url)
    header("Retention: throughput during a prune",
           f"{COUNT} mails per run (bench.throughput's backlog) on the 1,000,000-row tables, {ROUNDS} rounds "
           f"alternating without and with `tidings prune` deleting the final deliveries older than an hour "
           f"(batches of 1,000 rows, the default pause); mails/s, median of runs, p90 column: what 90 % of windows reached.")
    quiet_logs()
    if full_url is None:
        print("PostgreSQL or Redis not reachable on 127.0.0.1: skipped.")
        return []
    alone: list[Run] = []
    pruned: list[Run] = []
    notes = []
    with scratch_space() as (_, queue):
        for n in range(ROUNDS):
            alone.append(tidings(f"{queue}_alone", full_url))
            run, deleted, seconds, ended = during(f"{queue}_prune", full_url)
            pruned.append(run)
            notes.append(f"round {n + 1}: {deleted:,} rows deleted in {fmt_seconds(seconds)}"
                         f"{' (the prune had ended)' if ended else ''}")
    figures = report([rate_figure("deliveries per second during a prune of the delivery log vs without",
                                  pruned, alone, "no prune", 0.9)],
                     "Rates of each run (mails/s): without " + ", ".join(f"{r.rate:.0f}" for r in alone)
                     + "; during " + ", ".join(f"{r.rate:.0f}" for r in pruned) + ".\nThe prune during the runs: "
                     + "; ".join(notes) + ".")
    left = deliveries(full_url)
    started = time.perf_counter()
    start_prune(full_url).wait(timeout=3600)
    seconds = time.perf_counter() - started
    gone = left - deliveries(full_url)
    print(f"\nThe rest of the prune alone: {gone:,} rows in {fmt_seconds(seconds)} ({gone / seconds:,.0f} rows/s), "
          f"{deliveries(full_url):,} deliveries left (those changed within the hour, or not final).")
    return figures


if __name__ == "__main__":
    main()
