"""The schedule: named tasks on their own intervals in one thread of each worker process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import dramatiq
import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

import jobs
from jobs.schedule import Schedule, Task

BOUND = 10  # seconds: the longest a test waits for an event that must come


class Counter:
    """Counts runs and sets ``reached`` at the ``target``-th."""

    def __init__(self, target: int = 3, fails: bool = False) -> None:
        self.runs, self.target, self.fails = 0, target, fails
        self.reached = threading.Event()

    def __call__(self) -> None:
        self.runs += 1
        if self.runs >= self.target:
            self.reached.set()
        if self.fails:
            raise RuntimeError("the database is down")


@pytest.fixture
def run_worker() -> Iterator[Callable[[Schedule], Worker]]:
    started: list[tuple[Schedule, Worker]] = []

    def start(schedule: Schedule) -> Worker:
        broker = StubBroker(middleware=[schedule])
        broker.emit_after("process_boot")
        worker = Worker(broker, worker_threads=1, worker_timeout=50)
        worker.start()
        started.append((schedule, worker))
        return worker

    yield start
    for _, worker in started:
        worker.stop()


def every(seconds: float) -> Callable[[], float]:
    return lambda: seconds


def test_a_task_runs_again_and_again_at_its_interval(run_worker: Callable[[Schedule], Worker]) -> None:
    often = Counter(target=3)
    run_worker(Schedule([Task("often", often, every(0.01))]))
    assert often.reached.wait(BOUND)


def test_a_task_runs_as_often_as_its_interval_says_even_below_a_second(
        run_worker: Callable[[Schedule], Worker]) -> None:
    often = Counter(target=50)
    run_worker(Schedule([Task("often", often, every(0.01))]))
    assert often.reached.wait(BOUND)  # 50 runs 10 ms apart: well within the bound, not if a run waited a second


def test_each_task_keeps_its_own_interval(run_worker: Callable[[Schedule], Worker]) -> None:
    often, rarely = Counter(target=5), Counter()
    run_worker(Schedule([Task("rarely", rarely, every(3600)), Task("often", often, every(0.01))]))
    assert often.reached.wait(BOUND)
    assert rarely.runs == 0


def test_a_failing_task_neither_stops_itself_nor_the_others(run_worker: Callable[[Schedule], Worker]) -> None:
    failing, healthy = Counter(target=3, fails=True), Counter(target=3)
    run_worker(Schedule([Task("failing", failing, every(0.01)), Task("healthy", healthy, every(0.01))]))
    assert failing.reached.wait(BOUND) and healthy.reached.wait(BOUND)


def _schedule_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "tidings-schedule"}


def test_the_schedule_stops_with_the_worker(run_worker: Callable[[Schedule], Worker]) -> None:
    before, often = _schedule_threads(), Counter(target=1)
    worker = run_worker(Schedule([Task("often", often, every(0.01))]))
    assert often.reached.wait(BOUND)
    started = _schedule_threads() - before
    worker.stop()
    assert len(started) == 1 and not any(t.is_alive() for t in started)


@pytest.fixture
def started_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads started during the test (one that ends at once is counted too)."""
    names: list[str] = []
    start = threading.Thread.start

    def noting(thread: threading.Thread) -> None:
        names.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", noting)
    return names


def test_a_task_with_no_interval_never_runs_and_starts_no_thread(run_worker: Callable[[Schedule], Worker],
                                                                 started_threads: list[str]) -> None:
    off, never = Counter(target=1), Counter(target=1)
    run_worker(Schedule([Task("off", off, every(0)), Task("never", never, every(-1))]))
    assert "tidings-schedule" not in started_threads and off.runs == never.runs == 0


def test_a_task_with_no_interval_never_runs_beside_tasks_that_do(run_worker: Callable[[Schedule], Worker]) -> None:
    off, often = Counter(target=1), Counter(target=3)
    run_worker(Schedule([Task("off", off, every(0)), Task("often", often, every(0.01))]))
    assert often.reached.wait(BOUND) and off.runs == 0


class Signal(dramatiq.Middleware):
    """Calls ``then`` when the worker begins to stop (placed before the schedule) or has stopped it (after)."""

    def __init__(self, then: Callable[[], object]) -> None:
        self.then = then

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Worker) -> None:
        self.then()


def test_the_worker_stops_only_once_the_task_in_progress_has_ended() -> None:
    running, stopping, finished = threading.Event(), threading.Event(), threading.Event()
    ended_before_stop: list[bool] = []

    def task() -> None:
        running.set()
        stopping.wait(BOUND)
        finished.set()

    schedule = Schedule([Task("slow", task, every(0.01))])
    broker = StubBroker(middleware=[Signal(stopping.set), schedule,
                                    Signal(lambda: ended_before_stop.append(finished.is_set()))])
    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    assert running.wait(BOUND)
    worker.stop()
    assert ended_before_stop == [True]


def test_by_default_each_wait_is_the_interval_give_or_take_a_tenth() -> None:
    task = Task("sweep", Counter(), every(10))
    waits = [task.next_wait() or 0.0 for _ in range(200)]
    assert all(9 <= wait <= 11 for wait in waits) and len(set(waits)) > 1


def test_a_task_cannot_be_changed_once_built() -> None:
    task = Task("sweep", Counter(), every(10))
    with pytest.raises(AttributeError):
        task.jitter = 0.5  # type: ignore[misc]


def test_each_wait_is_the_interval_jittered_within_its_bounds() -> None:
    task = Task("sweep", Counter(), every(10), jitter=0.1)
    waits = [task.next_wait() or 0.0 for _ in range(200)]
    assert all(9 <= wait <= 11 for wait in waits) and len(set(waits)) > 1


def test_a_task_added_under_a_scheduled_name_replaces_it() -> None:
    schedule = Schedule([Task("sweep", Counter(), every(1))])
    schedule.add(Task("sweep", Counter(), every(2)))
    schedule.add(Task("digests", Counter(), every(3)))
    assert schedule.tasks == ["sweep", "digests"]


def test_the_brokers_of_jobs_carry_one_schedule_whose_first_task_is_the_sweep() -> None:
    schedules = [m for m in jobs.broker.middleware if isinstance(m, Schedule)]
    assert [s.tasks[0] for s in schedules] == ["sweep"]
