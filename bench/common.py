"""What every benchmark shares: the services, timing, a figure with its target, and the tables."""

from __future__ import annotations

import math
import os
import platform
import socket
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/12"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

#: ``make bench-quick`` (``BENCH_QUICK=1``): fewer rounds and mails, the same figures; under 3 minutes.
QUICK = os.environ.get("BENCH_QUICK") == "1"

#: Every figure reported so far in this process, for the summary of ``python -m bench``.
REPORTED: list[Figure] = []


def reachable(port: int) -> bool:
    """Whether something answers on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def header(title: str, compared: str) -> None:
    """Print the benchmark's title and what it compares."""
    print(f"\n## {title}\n\n{compared}\n", flush=True)


def machine() -> str:
    """One line naming the machine and the services' versions."""
    parts = [f"Python {platform.python_version()}", f"{platform.system()} {platform.machine()}",
             f"{os.cpu_count()} CPUs"]
    if reachable(5432):
        from sqlalchemy import create_engine

        engine = create_engine(PG_URL)
        with engine.connect() as connection:
            parts.append("PostgreSQL " + str(connection.exec_driver_sql("SHOW server_version").scalar()).split()[0])
        engine.dispose()
    if reachable(6379):
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        parts.append(f"Redis {client.info('server')['redis_version']}")
        client.close()
    if reachable(5672):
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        version = connection._impl.server_properties.get("version", b"?")
        parts.append(f"RabbitMQ {version.decode() if isinstance(version, bytes) else version}")
        connection.close()
    return ", ".join(parts)


def interleaved(iterations: int, actions: Mapping[str, Callable[[], object]],
                settle: Callable[[], object] = lambda: None, *, block: int = 1) -> dict[str, list[float]]:
    """Each action's wall times in seconds, the actions taking turns ``iterations`` times.

    Drift in a shared machine's load then hits every action alike. With ``block`` > 1 each turn
    runs the action once untimed, then ``block`` times timed, so each timed call follows a call
    of the same action: what one action leaves behind (caches filled with other code, the
    outbox thread's enqueue) is not charged to another. ``settle`` runs after each call,
    untimed (e.g. waiting for the outbox thread).
    """
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(iterations):
        for name, action in actions.items():
            if block > 1:
                action()
                settle()
            for _ in range(block):
                start = time.perf_counter()
                action()
                times[name].append(time.perf_counter() - start)
                settle()
    return times


def p90(values: Sequence[float]) -> float:
    """The 90th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]


def p10(values: Sequence[float]) -> float:
    """The 10th percentile (nearest rank): for a rate, what 90 % of the samples reached."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.1 * len(ordered)) - 1, 0)]


@dataclass
class Figure:
    """One measured figure: Tidings against its baseline, both measured in the same run.

    ``lower_is_better`` says which way the figure goes (times: lower; rates: higher): the p90
    column shows the slow tail either way (for a rate, what 90 % of the samples reached), from
    ``*_tail`` samples when given (a rate's windows within runs). The ratio is Tidings' median
    over the baseline's median; ``limit`` is the target on it (or, with no baseline, on Tidings'
    own median), ``at_most`` which side of the limit meets it.
    """

    name: str
    unit: str
    tidings: Sequence[float]
    baseline: Sequence[float] | None = None
    baseline_name: str = ""
    limit: float | None = None
    at_most: bool = True
    lower_is_better: bool = True
    scale: float = 1.0
    digits: int = 2
    tidings_tail: Sequence[float] | None = None
    baseline_tail: Sequence[float] | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return statistics.median(self.tidings) / statistics.median(self.baseline)

    @property
    def measured(self) -> float:
        """What the target applies to: the ratio, or Tidings' median when there is no baseline."""
        ratio = self.ratio
        return ratio if ratio is not None else statistics.median(self.tidings) * self.scale

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit

    @property
    def target(self) -> str:
        if self.limit is None:
            return "report"
        on = "ratio" if self.baseline else self.unit
        return f"{on} {'<=' if self.at_most else '>='} {self.limit:g}"

    def cells(self, values: Sequence[float] | None, tail_values: Sequence[float] | None) -> tuple[str, str]:
        if not values:
            return "", ""
        tail_values = tail_values or values
        tail = p90(tail_values) if self.lower_is_better else p10(tail_values)
        return (f"{statistics.median(values) * self.scale:.{self.digits}f}",
                f"{tail * self.scale:.{self.digits}f}")

    def row(self) -> tuple[str, ...]:
        met = {None: "", True: "yes", False: "**NO**"}[self.met]
        ratio = self.ratio
        return (self.name, self.baseline_name, *self.cells(self.baseline, self.baseline_tail),
                *self.cells(self.tidings, self.tidings_tail),
                self.unit, f"{ratio:.2f}" if ratio is not None else "", self.target, met)


COLUMNS = ("figure", "baseline", "baseline median", "p90", "Tidings median", "p90", "unit", "ratio", "target", "met")


def report(figures: Sequence[Figure], note: str = "") -> list[Figure]:
    """Print ``figures`` as one table (and remember them for the summary); return them."""
    table([figure.row() for figure in figures], COLUMNS)
    if note:
        print(f"\n{note}")
    REPORTED.extend(figures)
    return list(figures)


def table(rows: Sequence[Sequence[object]], columns: Sequence[str]) -> None:
    """Print ``rows`` as a Markdown table."""
    cells = [[str(c) for c in columns], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    print(flush=True)


@contextmanager
def scratch_space() -> Iterator[tuple[str, str]]:
    """A PostgreSQL URL on a schema of its own and a queue name, both removed afterwards.

    The queue's keys in Redis (database 12) and its queues in RabbitMQ are deleted too.
    """
    from sqlalchemy import create_engine

    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}", name
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()
        forget_queues(name)


def forget_queues(prefix: str) -> None:
    """Delete every Redis key (queues, and the acks of workers stopped mid-message) and RabbitMQ queue of ``prefix``."""
    if reachable(6379):
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = client.keys(f"dramatiq:{prefix}*") + client.keys(f"dramatiq:__acks__.*.{prefix}*")
        if keys:
            client.delete(*keys)
        client.close()
    if reachable(5672):
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        channel = connection.channel()
        for queue in _rabbitmq_queues(prefix):
            channel.queue_delete(queue)
        connection.close()


def _rabbitmq_queues(prefix: str) -> list[str]:
    """The queues the bench may have declared under ``prefix`` (RabbitMQ cannot list them over AMQP)."""
    names = [prefix, *(f"{prefix}_{suffix}" for suffix in ("bare", "tidings", "full", "empty", "rabbitmq"))]
    return [f"{name}{tail}" for name in names for tail in ("", ".DQ", ".XQ")]


def fmt_seconds(seconds: float) -> str:
    """Seconds as ``1.2 s`` or ``340 ms``."""
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def quiet_logs() -> None:
    """Keep Tidings' and Dramatiq's per-message log lines out of the tables."""
    import logging

    for name in ("jobs", "dramatiq", "pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def settings_for(**changes: Any) -> Any:
    """``jobs.Settings`` with the sweeper off and ``changes``."""
    import jobs

    return jobs.Settings().replace(sweep_interval=0, **changes)
