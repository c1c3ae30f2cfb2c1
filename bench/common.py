"""What every benchmark prints: the machine, and a table of figures with their targets."""

from __future__ import annotations

import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/12"


def header(title: str, compared: str) -> None:
    """Print the benchmark's title, what it compares, and the machine it runs on."""
    print(f"\n# {title}\n{compared}")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs\n")


def best_of(runs: int, action: Callable[[], object]) -> float:
    """The shortest wall time of ``runs`` calls of ``action``, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(iterations: int, actions: Mapping[Any, Callable[[], object]]) -> dict[Any, float]:
    """The median wall time of each action, calling them in turn ``iterations`` times, in seconds."""
    times: dict[Any, list[float]] = {name: [] for name in actions}
    for _ in range(iterations):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def table(rows: Sequence[Sequence[object]], columns: Sequence[str]) -> None:
    """Print ``rows`` as a Markdown table."""
    cells = [[str(c) for c in columns], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


@contextmanager
def scratch_space() -> Iterator[tuple[str, str]]:
    """A PostgreSQL URL on a schema of its own and a queue-name prefix, both removed afterwards."""
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
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = client.keys(f"dramatiq:{name}*")
        if keys:
            client.delete(*keys)
        client.close()
