"""The console's pages with 1,000,000 rows in the transition and delivery logs: server time of each, and plans.

Run: ``python -m bench.console`` (PostgreSQL on 127.0.0.1:5432). The tables are filled as for
figure 5 (``bench.scale.filled``: months of use, nearly all sent, 0.1 % failed and 0.1 % dead);
each page is answered in-process by ``Console.answer`` (no HTTP), interleaved with the others,
and its time is the server's: the queries and the rendering. Then each statement a page ran
is shown as PostgreSQL plans it (``EXPLAIN (ANALYZE, BUFFERS)``, rolled back), with a note of
every sequential scan of a Tidings table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jobs
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.console import Console, Request
from sqlalchemy import Engine, create_engine, event

from . import app as _bench_app  # noqa: F401 - the model and notifier the filled rows name
from .common import Figure, header, interleaved, quiet_logs, reachable, report
from .scale import ROWS, filled

RUNS = 15
LIMIT_MS = 200.0
#: The pages timed: name -> path and query string.
PAGES = {
    "overview": ("/", ""),
    "deliveries, newest": ("/deliveries", ""),
    "deliveries, older page": ("/deliveries", f"before={ROWS // 2}"),
    "deliveries, status dead": ("/deliveries", "status=dead"),
    "deliveries, status sent, channel email": ("/deliveries", "status=sent&channel=email"),
    "deliveries, notifier": ("/deliveries", "notifier=TaskNotifier.changed"),
    "deliveries, written in the last 2 h": ("/deliveries", "since=2h"),
    "deliveries, written a week ago": ("/deliveries", "since=8d&until=7d"),
    "failures": ("/failures", ""),
    "failures, older page": ("/failures", f"before={ROWS // 2}"),
    "timeline (200 transitions)": ("/timeline", "model=BenchTask&key=1"),
    "preview": ("/preview", f"delivery={ROWS - 200}"),
    "graph": ("/graph", ""),
    "actions": ("/actions", ""),
}


def request(path: str, query: str) -> Request:
    from urllib.parse import parse_qs

    return Request("GET", path, query=parse_qs(query))


def timings(console: Console) -> dict[str, list[float]]:
    """Each page's server times (seconds), the pages taking turns."""
    def page(path: str, query: str) -> Callable[[], object]:
        def answer() -> object:
            response = console.answer(request(path, query))
            assert response.status == 200, (path, query, response.body[:500])
            return response
        return answer

    actions = {name: page(*where) for name, where in PAGES.items()}
    interleaved(2, actions)  # warm: plans cached, pages compiled
    return interleaved(RUNS, actions)


def plans(engine: Engine, console: Console) -> None:
    """Every statement each page runs, EXPLAIN ANALYZE'd; the sequential scans of Tidings' tables named."""
    seen: list[tuple[str, str, Any]] = []
    current = [""]

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "tidings_" in statement and statement.lstrip().startswith("SELECT"):
            seen.append((current[0], statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    for name, where in PAGES.items():
        current[0] = name
        console.answer(request(*where))
    event.remove(engine, "before_cursor_execute", capture)
    scans = []
    with engine.connect() as connection:
        for name, statement, parameters in seen:
            transaction = connection.begin()
            try:
                lines = [row[0] for row in connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)]
            finally:
                transaction.rollback()
            if any("Seq Scan on tidings_" in line for line in lines):
                scans.append(name)
            print(f"**{name}**: `{' '.join(statement.split())[:200]}`\n\n```\n" + "\n".join(lines) + "\n```\n")
    print("Every statement uses an index." if not scans else f"Sequential scans in: {', '.join(sorted(set(scans)))}.")


WRITES = 100_000  # deliveries written, then marked sent, per run of the write-cost figure
_CONSOLE_INDEXES = ("ix_tidings_deliveries_sent_at", "ix_tidings_deliveries_provider")


def write_cost() -> Figure:
    """What the console's two indexes cost the delivery log's writes: insert then mark sent, with and without them."""
    from sqlalchemy import text
    from workflow import metadata

    from .common import scratch_space

    with scratch_space() as (url, _):
        engine = create_engine(url)
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(text(f"""INSERT INTO tidings_transitions (model, key, trigger, source, dest, context,
                created_at) SELECT 'BenchTask', i::text, 'finish', 'open', 'done', '{{}}', now()
                FROM generate_series(1, {WRITES}) AS i"""))

        times: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(5):  # taking turns, so the machine's drift hits both alike
            for name in times:
                with engine.begin() as connection:  # untimed: an empty table, with or without the indexes
                    connection.exec_driver_sql("TRUNCATE tidings_deliveries CASCADE")
                    for index in Delivery.__table__.indexes:  # type: ignore[attr-defined]
                        if index.name in _CONSOLE_INDEXES:
                            index.drop(connection, checkfirst=True)
                            if name == "with":
                                index.create(connection)
                start = time.perf_counter()
                with engine.begin() as connection:
                    connection.execute(text(f"""INSERT INTO tidings_deliveries (key, transition_id, notifier, party,
                        channel, address, recipient_ref, status, attempts, created_at, updated_at)
                        SELECT md5(i::text), i, 'bench.app.TaskNotifier.changed', 'watchers', 'email',
                               'w' || i || '@example.com', '', 'pending', 0, clock_timestamp(), clock_timestamp()
                        FROM generate_series(1, {WRITES}) AS i"""))
                    connection.execute(text("UPDATE tidings_deliveries SET status = 'sent', "
                                            "sent_at = clock_timestamp(), attempts = 1"))
                times[name].append(time.perf_counter() - start)
        engine.dispose()
    return Figure(f"write {WRITES:,} deliveries, then mark them sent: with the console's indexes vs without", unit="s",
                  tidings=times["with"], baseline=times["without"], baseline_name="without", limit=1.1, digits=2)


def main(full_url: str | None = None) -> list[Figure]:
    """The console's figure: each page's server time on the full tables; then the plans."""
    header("The console's pages", f"{ROWS:,} transitions and {ROWS:,} deliveries; server time of each page, "
                                  f"answered in-process (median and p90 of {RUNS} runs, interleaved; ms).")
    quiet_logs()
    if not reachable(5432):
        print("PostgreSQL not reachable on 127.0.0.1:5432: skipped.")
        return []
    if full_url is None:
        with filled() as url:
            return main(url)
    engine = create_engine(full_url)
    stub = StubBroker()
    stub.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=stub, engine=engine, sweep_interval=0)
    console = Console(engine, authorize=lambda request: "bench", actions=True)
    times = timings(console)
    figures = report([Figure(f"console: {name}", unit="ms", tidings=times[name], limit=LIMIT_MS, scale=1000.0, digits=1)
                      for name in PAGES])
    plans(engine, console)
    jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
    engine.dispose()
    print("\nWhat the console's indexes cost the writes (each run: the rows written in one statement, then updated "
          "in one; time of both):\n")
    return figures + report([write_cost()])


if __name__ == "__main__":
    main()
