"""The partitioning recipe of docs/operations.md on 1,000,000 rows: applying it, throughput on it, dropping a span.

Run: ``python -m bench.partitions`` (alone; not in ``make bench``). Two schemas are filled as
``bench.scale`` fills them; one gets the recipe (spans of 100,000 transitions), timed. Rounds
alternate figure 4's backlog (2,000 transitions, 2 processes x 8 threads, PostgreSQL + Redis) on
the plain log and on the partitioned one. Then the oldest span (its deliveries all final) is
detached concurrently and dropped, timed: what a prune would delete row by row.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import create_engine, text

from .common import Figure, fmt_seconds, header, quiet_logs, reachable, report, scratch_space
from .runs import Run
from .throughput import COUNT, rate_figure, tidings

ROUNDS = 3
SPAN = 100_000


def recipe() -> str:
    """The recipe's SQL from docs/operations.md, with spans of ``SPAN`` transitions."""
    operations = (Path(__file__).parents[1] / "docs" / "operations.md").read_text()
    sql = operations.split("## Partitioning the delivery log (PostgreSQL)", 1)[1].split("```sql\n", 1)[1]
    return sql.split("```", 1)[0].replace("span bigint := 1000000;", f"span bigint := {SPAN};")


def partition(url: str) -> float:
    """Apply the recipe on ``url`` in one transaction; the seconds it took."""
    engine = create_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.connection.driver_connection.execute(recipe())  # as psql runs it
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE tidings_deliveries")
    engine.dispose()
    return time.perf_counter() - started


def drop_oldest(url: str) -> tuple[int, float]:
    """Detach (concurrently) and drop the oldest span: its rows and the seconds it took."""
    engine = create_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        rows = int(connection.scalar(text("SELECT count(*) FROM tidings_deliveries_p0")) or 0)
        started = time.perf_counter()
        connection.exec_driver_sql("ALTER TABLE tidings_deliveries DETACH PARTITION tidings_deliveries_p0 CONCURRENTLY")
        connection.exec_driver_sql("DROP TABLE tidings_deliveries_p0")
        seconds = time.perf_counter() - started
    engine.dispose()
    return rows, seconds


def main() -> list[Figure]:
    header("Partitioning the delivery log",
           f"bench.scale's 1,000,000-row tables, plain and partitioned by the recipe (spans of {SPAN:,} transitions); "
           f"{COUNT} mails per run (bench.throughput's backlog), {ROUNDS} rounds alternating; mails/s.")
    quiet_logs()
    if not (reachable(5432) and reachable(6379)):
        print("PostgreSQL or Redis not reachable on 127.0.0.1: skipped.")
        return []
    from .scale import filled

    plain: list[Run] = []
    parted: list[Run] = []
    with filled() as plain_url, filled() as parted_url, scratch_space() as (_, queue):
        seconds = partition(parted_url)
        print(f"The recipe on 1,000,000 deliveries (copy, keys, indexes, VACUUM ANALYZE): {fmt_seconds(seconds)}.\n")
        for _ in range(ROUNDS):
            plain.append(tidings(f"{queue}_plain", plain_url))
            parted.append(tidings(f"{queue}_parted", parted_url))
        figures = report([rate_figure("deliveries per second, the partitioned log vs the plain one", parted, plain,
                                      "plain log", 0.9)],
                         "Rates of each run (mails/s): plain " + ", ".join(f"{r.rate:.0f}" for r in plain)
                         + "; partitioned " + ", ".join(f"{r.rate:.0f}" for r in parted) + ".")
        rows, dropped = drop_oldest(parted_url)
        print(f"\nThe oldest span, {rows:,} deliveries, detached concurrently and dropped in {fmt_seconds(dropped)}.")
    return figures


if __name__ == "__main__":
    main()
