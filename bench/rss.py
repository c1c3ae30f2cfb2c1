"""A worker's memory: its RSS after 100,000 deliveries against its RSS after 10,000.

Run: ``python -m bench.rss`` (part of ``make bench``). The worker runs in a process of its own
(``python -m bench.rss --child``): a real Dramatiq ``Worker`` with one worker thread on the
StubBroker, running Tidings' actors (fan-out, then claim, render, send, mark for each delivery)
on a SQLite file, with a channel that accepts and forgets each message. That is the fast path:
the same Python code per delivery as a production worker, without network round trips, so that
100,000 deliveries take about a minute instead of several. Transitions come in batches of 1,000,
each to 10 recipients; the RSS (``VmRSS``) is read once each batch is delivered and the
queues are empty, so queued messages are not counted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Figure, header, report

BATCHES = 10
TRANSITIONS = 1_000
RECIPIENTS = 10
PER_BATCH = TRANSITIONS * RECIPIENTS


def rss_mib() -> float:
    """This process's resident set size, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(folder: Path) -> None:
    """Deliver ``BATCHES`` batches; print one JSON line per batch: deliveries so far, RSS, seconds."""
    import dramatiq
    import jobs
    from dramatiq.brokers.stub import StubBroker
    from notifiers import Channel
    from sqlalchemy import create_engine, event
    from sqlalchemy.orm import Session
    from workflow import metadata as tidings_metadata

    from .app import Base, Task, watchers
    from .common import quiet_logs

    class Discard(Channel):
        """Accepts each message and keeps nothing but a count."""

        sent = 0

        def send(self, message: Any, to: Any, *, key: str, **extra: Any) -> None:
            Discard.sent += 1

    quiet_logs()
    engine = create_engine(f"sqlite:///{folder / 'rss.db'}")

    @event.listens_for(engine, "connect")
    def fast(connection: Any, record: Any) -> None:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")

    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    broker = StubBroker()
    broker.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, channels={"email": Discard()}, sweep_interval=0)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=10)
    worker.start()
    start = time.perf_counter()
    try:
        for batch in range(BATCHES):
            with Session(engine) as session:
                first = batch * TRANSITIONS
                tasks = [Task(id=first + n + 1, watchers=watchers(RECIPIENTS, first=(first + n) * RECIPIENTS))
                         for n in range(TRANSITIONS)]
                session.add_all(tasks)
                session.commit()
                for task in tasks:
                    task.finish()
                session.commit()
            for queue in list(broker.queues):
                broker.join(queue, timeout=600_000)
            worker.join()
            delivered = (batch + 1) * PER_BATCH
            if Discard.sent != delivered:
                raise RuntimeError(f"{Discard.sent} deliveries instead of {delivered}")
            print(json.dumps({"deliveries": delivered, "rss": rss_mib(), "seconds": time.perf_counter() - start}),
                  flush=True)
    finally:
        worker.stop()
        engine.dispose()


def main() -> list[Figure]:
    header("Figure 6: a worker's memory", f"RSS of a worker process after {PER_BATCH:,} and after "
                                          f"{BATCHES * PER_BATCH:,} deliveries (fast path: SQLite, StubBroker, "
                                          f"1 worker thread, a discarding channel; see bench/rss.py).")
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.run([sys.executable, "-m", "bench.rss", "--child", folder], capture_output=True,
                                 text=True, timeout=900, cwd=Path(__file__).parents[1])
    if process.returncode != 0:
        raise RuntimeError(f"the worker process failed:\n{process.stderr[-3000:]}")
    points = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]
    curve = ", ".join(f"{p['deliveries'] // 1000}k: {p['rss']:.1f}" for p in points)
    seconds = points[-1]["seconds"]
    return report([Figure(f"worker RSS after {points[-1]['deliveries']:,} deliveries vs after {points[0]['deliveries']:,}",
                          unit="MiB", tidings=[points[-1]["rss"]], baseline=[points[0]["rss"]],
                          baseline_name=f"after {points[0]['deliveries']:,}", limit=1.1, digits=1)],
                  f"RSS (MiB) after each batch: {curve}. {points[-1]['deliveries']:,} deliveries in {seconds:.0f} s "
                  f"({points[-1]['deliveries'] / seconds:.0f}/s on the fast path).")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]))
    else:
        main()
