"""Stage timers for the throughput bench's profile run: where a worker's time goes per delivery.

Loaded by the worker processes (``dramatiq jobs bench.app bench.stages``); it does nothing
unless ``BENCH_STAGES`` names a folder. Then it wraps the steps of a delivery (claim, render,
send, mark), the fan-out and each whole message, sums their wall times per process, and writes
the sums to ``BENCH_STAGES/<pid>.json`` when the worker shuts down. The timers cost a few
microseconds per step, so the profile run is not one of the measured runs.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq

_totals: defaultdict[str, float] = defaultdict(float)
_counts: defaultdict[str, int] = defaultdict(int)
_lock = threading.Lock()
_started = threading.local()


def timed(stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, adding its wall time to ``stage``."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            took, used = time.perf_counter() - start, time.thread_time() - cpu
            with _lock:
                _totals[stage] += took
                _totals[f"{stage}, CPU"] += used
                _counts[stage] += 1
    return wrapper


class Stages(dramatiq.Middleware):
    """Times each message as Dramatiq runs it (middleware included), and writes the sums at shutdown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        _started.at, _started.cpu = time.perf_counter(), time.thread_time()

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        took = time.perf_counter() - getattr(_started, "at", time.perf_counter())
        cpu = time.thread_time() - getattr(_started, "cpu", time.thread_time())
        with _lock:
            _totals[f"message {message.actor_name}"] += took
            _counts[f"message {message.actor_name}"] += 1
            _totals[f"message {message.actor_name}, CPU"] += cpu

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        with _lock:
            data = {"totals": dict(_totals), "counts": dict(_counts)}
        (self.folder / f"{os.getpid()}.json").write_text(json.dumps(data))


def install(folder: Path) -> None:
    """Wrap what the worker process runs (Tidings' steps when ``jobs`` is loaded, the bare actor's send)."""
    import sys

    if "jobs" in sys.modules:
        from jobs import claims, delivery, fanout
        from notifiers import SMTPChannel

        claims.claim = timed("claim", claims.claim)
        claims.claim_many = timed("claim", claims.claim_many)
        delivery._compose = timed("load + render", delivery._compose)  # type: ignore[attr-defined]
        claims.finish = timed("mark (one outcome)", claims.finish)
        claims.SentLog.flush = timed("mark (sent outcomes, together)", claims.SentLog.flush)  # type: ignore[method-assign]
        fanout.plan_many = timed("fan-out (plan, write, claim)", fanout.plan_many)
        SMTPChannel.send = timed("send", SMTPChannel.send)  # type: ignore[method-assign]
    broker = dramatiq.get_broker() if "jobs" in sys.modules else None
    if "bench.bare_actor" in sys.modules:
        from . import bare_actor

        bare_actor.send = timed("send", bare_actor.send)
        broker = bare_actor.broker
    if broker is not None:
        broker.add_middleware(Stages(folder))


if os.environ.get("BENCH_STAGES"):
    install(Path(os.environ["BENCH_STAGES"]))
