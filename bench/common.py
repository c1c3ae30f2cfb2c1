"""What every benchmark prints: the machine, and a table of figures with their targets."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any


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
