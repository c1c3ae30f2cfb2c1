"""Retention on SQLite: what ``prune`` deletes, what it always keeps, the dry run, the command, the schedule's task."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery, Settings, Status
from jobs.commands.cli import main
from jobs.retention import FINAL, Pruned, Turns, prune
from jobs.schedule import Schedule
from jobs.timers import Timer, TimerStatus
from notifiers.inbox import InboxItem
from sqlalchemy import Engine
from workflow import TransitionRecord

from tests.retention_rows import count, delivery, inbox, timer, transition

RECENT = dt.timedelta(days=1)


@pytest.fixture
def settings() -> Settings:
    return Settings(keep_deliveries_days=30, keep_read_inbox_days=30, prune_batch=2)


@pytest.fixture
def done(engine: Engine) -> Iterator[int]:
    """An old transition, its deliveries all final and old."""
    transition_id = transition(engine)
    for status in FINAL:
        delivery(engine, transition_id, status)
    yield transition_id


def test_final_deliveries_past_the_limit_go_in_batches_and_the_others_stay(engine: Engine, done: int,
                                                                            settings: Settings) -> None:
    kept = [delivery(engine, done, status) for status in (Status.PENDING, Status.SCHEDULED, Status.SENDING)]
    kept.append(delivery(engine, done, Status.SENT, age=RECENT))
    assert prune(engine, settings) == Pruned(deliveries=4)  # four final and old, two per transaction
    assert count(engine, Delivery) == len(kept)


def test_the_transition_log_is_kept_by_default(engine: Engine, done: int) -> None:
    assert Settings().keep_transitions_days == 0
    prune(engine, Settings(keep_deliveries_days=30))
    assert count(engine, TransitionRecord) == 1


def test_a_fully_delivered_transition_goes_with_its_deliveries_and_timers_when_asked(engine: Engine, done: int) -> None:
    timer(engine, done, TimerStatus.FIRED)
    assert prune(engine, Settings(keep_deliveries_days=0, keep_transitions_days=30)) == Pruned(transitions=1)
    assert (count(engine, TransitionRecord), count(engine, Delivery), count(engine, Timer)) == (0, 0, 0)


@pytest.mark.parametrize("waiting", ["a delivery not final", "a recent delivery", "a pending timer",
                                     "a later delivery of its record", "not fanned out"])
def test_a_transition_with_something_still_to_happen_is_kept(engine: Engine, done: int, waiting: str) -> None:
    if waiting == "a delivery not final":
        delivery(engine, done, Status.PENDING)
    elif waiting == "a recent delivery":
        delivery(engine, done, Status.SENT, age=RECENT)
    elif waiting == "a pending timer":
        timer(engine, done, TimerStatus.PENDING)
    elif waiting == "a later delivery of its record":
        delivery(engine, transition(engine, age=RECENT), Status.SCHEDULED)
    else:
        transition(engine, key="2", fanned_out=False)
    prune(engine, Settings(keep_deliveries_days=0, keep_transitions_days=30))
    # kept: the transition (and the later one of its record); not fanned out: that one, the done one goes
    assert count(engine, TransitionRecord) == (2 if waiting == "a later delivery of its record" else 1)


def test_read_inbox_items_past_the_limit_go_and_unread_ones_stay(engine: Engine, settings: Settings) -> None:
    inbox(engine, read_age=dt.timedelta(days=40))
    inbox(engine, read_age=RECENT)
    inbox(engine, read_age=None)
    assert prune(engine, settings) == Pruned(inbox=1)
    assert count(engine, InboxItem) == 2


def test_a_dry_run_counts_and_deletes_nothing(engine: Engine, done: int, settings: Settings) -> None:
    assert prune(engine, settings, dry_run=True) == Pruned(deliveries=4)
    assert count(engine, Delivery) == 4


def test_tidings_prune_dry_run_says_what_would_go(broker: StubBroker, engine: Engine, done: int,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", "--dry-run"]) == 0
    assert capsys.readouterr().out == ("would delete 4 deliveries, 0 transitions, 0 read inbox items, 0 digests, "
                                       "0 throttle windows\n")
    assert main(["prune", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"dry_run": False, "deliveries": 4, "transitions": 0, "inbox": 0,
                                                       "digests": 0, "throttles": 0}
    assert count(engine, Delivery) == 0


def test_pruning_is_a_task_of_each_worker_s_schedule_and_not_of_due_work(broker: StubBroker) -> None:
    [schedule] = [m for m in jobs.broker.middleware if isinstance(m, Schedule)]
    assert "prune" in schedule.tasks
    assert "prune" not in [task.name for task in jobs.due_work]


@pytest.mark.parametrize(("name", "value"), [("keep_deliveries_days", -1), ("prune_interval", -1), ("prune_batch", 0)])
def test_a_retention_setting_out_of_range_is_refused(name: str, value: float) -> None:
    with pytest.raises(jobs.ConfigurationError, match=name):
        Settings(**{name: value})


def test_a_worker_s_turn_stops_after_its_time_and_the_next_comes_soon_while_rows_are_left(
        broker: StubBroker, engine: Engine, done: int, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs.configure(engine=engine, prune_batch=1, prune_interval=3600)
    turns = Turns()
    monkeypatch.setattr(Turns, "TURN_SECONDS", 0.0)  # out of time after the first batch
    assert turns.run() == Pruned(deliveries=1)
    assert turns.interval() == 1.0
    monkeypatch.setattr(Turns, "TURN_SECONDS", 60.0)
    assert turns.run() == Pruned(deliveries=3)
    assert turns.interval() == 3600
