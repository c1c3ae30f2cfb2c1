"""On PostgreSQL a fan-out message also plans the transitions waiting behind it, each taken by one fan-out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from jobs import Delivery, Status, fanout
from jobs.fanout import plan, plan_many
from jobs.sweeper import sweep
from jobs.taking import take as _take
from sqlalchemy import Engine, delete, event, func, insert, select, update
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from tests import scenarios
from tests.app import Order, Person
from tests.jobs.test_fanout import three_paid_orders_the_second_of_which_cannot_be_planned

pytestmark = pytest.mark.integration


def paid_orders(engine: Engine, count: int) -> list[int]:
    """``count`` orders paid and committed, their transitions not fanned out yet; the transitions' ids."""
    with Session(engine) as session:
        return scenarios.paid_orders(session, count)


def cancelled_order(engine: Engine, watchers: int) -> int:
    """An order with ``watchers`` watchers, cancelled and committed (its buyer and watchers are told); the transition's id."""
    with Session(engine) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"),
                      watchers=[f"Watcher {n} <w{n}@example.com>" for n in range(watchers)])
        session.add(order)
        session.commit()
        transition_id = order.cancel().id
        session.commit()
        return transition_id


def unfanned(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).where(TransitionRecord.fanned_out_at.is_(None))) or 0


def test_a_fan_out_plans_the_transitions_waiting_behind_its_own(shop: Engine) -> None:
    ids = paid_orders(shop, 5)
    with Session(shop) as session:
        planned = plan_many(session, [ids[0]], waiting=10)
    assert sorted(planned.loaded) == ids and len(planned.pending) == 10 and unfanned(shop) == 0


def test_a_message_whose_transition_was_planned_by_another_does_nothing(shop: Engine) -> None:
    ids = paid_orders(shop, 3)
    with Session(shop) as session:
        plan_many(session, [ids[0]], waiting=1)  # plans ids[0] and ids[1]
        # ids[2] waits too, but this message has nothing to do (read from the database, not recalled)
        again = plan_many(session, [ids[1]], waiting=10, recall=False)
        assert again.loaded == {} and again.pending == [] and again.missing == []
        assert session.scalar(select(func.count()).select_from(Delivery)) == 4


def test_two_fan_outs_at_once_take_different_transitions(shop: Engine) -> None:
    ids = paid_orders(shop, 5)
    with Session(shop) as first, Session(shop) as second:
        held, _ = _take(first, [ids[0]], 2, recall=True)  # the first fan-out holds three, still planning them
        planned = plan_many(second, [ids[1]], waiting=10)  # its own is among them
        assert sorted(held) == ids[:3]
        assert sorted(planned.loaded) == ids[3:] and planned.missing == []
        first.rollback()


def test_a_fan_out_never_takes_a_waiting_transition_of_a_model_this_process_has_no_notifier_for(
        shop: Engine) -> None:
    # Given a transition of a model only another deployment's workers know, waiting
    with Session(shop) as session:
        other = session.connection().execute(insert(TransitionRecord).returning(TransitionRecord.id), {
            "model": "Unheard", "key": "1", "trigger": "go", "source": "a", "dest": "b", "actor": None,
            "context": {}, "created_at": utcnow(), "traceparent": None}).scalar_one()
        session.commit()
    ids = paid_orders(shop, 2)
    # When a fan-out here plans its own and those waiting behind it
    with Session(shop) as session:
        planned = plan_many(session, [ids[0]], waiting=10)
        left = session.execute(select(TransitionRecord.fanned_out_at, TransitionRecord.held_reason)
                               .where(TransitionRecord.id == other)).one()
    # Then it takes the others of its models only: that one waits, untouched, for the workers that know it
    assert sorted(planned.loaded) == ids and tuple(left) == (None, None)


def test_a_transition_that_does_not_exist_is_reported_missing(shop: Engine) -> None:
    ids = paid_orders(shop, 1)
    with Session(shop) as session:
        planned = plan_many(session, [424242, ids[0]], waiting=10)
    assert planned.missing == [424242] and sorted(planned.loaded) == ids


def test_a_transition_this_process_remembers_planning_is_read_again_when_the_sweeper_asks(shop: Engine) -> None:
    ids = paid_orders(shop, 1)
    with Session(shop) as session:
        plan_many(session, ids, waiting=10)
        session.execute(delete(Delivery))
        session.execute(update(TransitionRecord).values(fanned_out_at=None))  # as if the id had been reused
        session.commit()
        assert plan_many(session, ids, waiting=10).loaded == {}  # remembered: not read
        assert sorted(plan_many(session, ids, waiting=10, recall=False).loaded) == ids


def test_a_transition_the_sweeper_had_to_resend_is_never_taken_by_another_fan_out(shop: Engine) -> None:
    # Given three waiting transitions, the second one overdue and re-enqueued by the sweeper (it may fail to plan)
    ids = paid_orders(shop, 3)
    with Session(shop) as session:
        session.execute(update(TransitionRecord).where(TransitionRecord.id == ids[1])
                        .values(created_at=utcnow() - dt.timedelta(hours=1)))
        session.commit()
        assert sweep(session, grace_seconds=60).transitions == [ids[1]]
        # When a fan-out of the first plans the transitions waiting behind it
        planned = plan_many(session, [ids[0]], waiting=10)
    # Then it takes the third, and leaves the swept one to its own message
    assert sorted(planned.loaded) == [ids[0], ids[2]] and unfanned(shop) == 1


def test_a_message_whose_own_transition_cannot_be_planned_raises_though_it_took_others(
        shop: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with Session(shop) as session:
        ids = three_paid_orders_the_second_of_which_cannot_be_planned(session, monkeypatch)
        with pytest.raises(RuntimeError, match="preferences unreadable"):  # so that Dramatiq retries the message
            plan_many(session, [ids[1]], waiting=10)
    assert unfanned(shop) == 3  # the others it took go back to waiting


def test_a_fan_out_of_many_deliveries_gives_each_the_id_of_its_own_row(shop: Engine) -> None:
    transition_id = cancelled_order(shop, 120)
    with Session(shop) as session:
        planned = plan(session, transition_id, claim_up_to=200)
        rows = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.transition_id == transition_id))}
    assert len(planned.claimed) == len(rows) == 121 and planned.pending == []
    for claim in planned.claimed:  # each claim names its own row: the ids came back with the right keys
        row = rows[claim.id]
        assert (row.key, row.address, row.name, row.status) == (claim.key, claim.address, claim.name, Status.SENDING)
    assert rows[planned.claimed[-1].id].name == "Watcher 119"


@pytest.mark.parametrize("watchers", [0, 1], ids=["one delivery", "two"])
def test_a_fan_out_of_one_or_two_deliveries_writes_them_and_marks_its_transition_in_one_statement(
        shop: Engine, watchers: int) -> None:
    transition_id = cancelled_order(shop, watchers)
    sent: list[str] = []

    def note(*args: object) -> None:
        sent.append(str(args[2]))

    event.listen(shop, "before_cursor_execute", note)
    try:
        with Session(shop) as session:
            planned = plan(session, transition_id, claim_up_to=2)
            rows = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.transition_id == transition_id))}
    finally:
        event.remove(shop, "before_cursor_execute", note)
    writes = [s for s in sent if "INSERT INTO tidings_deliveries" in s or s.startswith("UPDATE tidings_transitions")]
    assert len(writes) == 1 and writes[0].startswith("WITH marked AS (UPDATE tidings_transitions")
    assert sorted(rows) == sorted(c.id for c in planned.claimed) and len(rows) == watchers + 1 and unfanned(shop) == 0
    assert {(rows[c.id].key, rows[c.id].address) for c in planned.claimed} == {(c.key, c.address) for c in planned.claimed}


def test_a_fan_out_of_many_deliveries_writes_each_as_planned(shop: Engine) -> None:
    transition_id = cancelled_order(shop, 60)
    with Session(shop) as session:
        planned = plan(session, transition_id)
        rows = session.scalars(select(Delivery).where(Delivery.transition_id == transition_id)).all()
        assert sorted(planned.pending) == sorted(d.id for d in rows) and len(rows) == 61
        watcher = next(d for d in rows if d.address == "w7@example.com")
        assert (watcher.party, watcher.channel, watcher.name, watcher.recipient_ref, watcher.status, watcher.attempts,
                watcher.due_at, watcher.lease_until, watcher.digest_id) == (
            "watchers", "email", "Watcher 7", "w7@example.com", Status.PENDING, 0, None, None, None)
        assert watcher.created_at.tzinfo is not None and watcher.notifier.endswith("OrderNotifier.cancelled")
    assert unfanned(shop) == 0  # marked fanned out with them


def test_transitions_planned_together_in_one_insert_of_many_deliveries_are_all_marked_fanned_out(
        shop: Engine) -> None:
    ids = [cancelled_order(shop, 30), cancelled_order(shop, 30)]  # 62 rows: one insert of many
    with Session(shop) as session:
        planned = plan_many(session, ids)
    assert sorted(planned.loaded) == ids and len(planned.pending) == 62 and unfanned(shop) == 0


def test_a_second_fan_out_of_many_deliveries_writes_only_those_missing(shop: Engine) -> None:
    transition_id = cancelled_order(shop, 60)
    with Session(shop) as session:
        first = plan(session, transition_id)
        session.execute(delete(Delivery).where(Delivery.id.in_(first.pending[:55])))
        session.commit()
        again = plan(session, transition_id)
        assert len(again.pending) == 55 and unfanned(shop) == 0
        assert session.scalar(select(func.count()).select_from(Delivery)) == 61


def test_a_fan_out_of_many_deliveries_another_fan_out_committed_first_writes_nothing(
        shop: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a transition to many, and another fan-out of it committing while this one plans
    transition_id = cancelled_order(shop, 60)

    def planned_by_another_meanwhile(*args: object) -> object:
        monkeypatch.undo()  # the other plans as usual
        with Session(shop) as other:
            assert len(plan(other, transition_id).pending) == 61
        return fanout.plan_rows(*args)

    monkeypatch.setattr(fanout, "plan_rows", planned_by_another_meanwhile)
    # When this one writes its rows, their keys taken
    with Session(shop) as session:
        planned = plan(session, transition_id)
        # Then it writes nothing, and raises nothing: the deliveries are the other's
        assert planned.pending == [] and planned.claimed == []
        assert session.scalar(select(func.count()).select_from(Delivery)) == 61


#: A value longer than its column in each row written, as a check that let it through would leave it.
TOO_LONG: dict[str, Callable[[int, dict[str, Any]], None]] = {
    "each its own": lambda n, row: row.update(name=f"W{n}" + "x" * 300),
    "the same in every row": lambda n, row: row.update(party="p" * 200),
}


@pytest.mark.parametrize("spoil", TOO_LONG.values(), ids=TOO_LONG.keys())
def test_a_value_too_long_for_its_column_is_refused_by_the_insert_of_many_deliveries_not_cut(
        shop: Engine, monkeypatch: pytest.MonkeyPatch, spoil: Callable[[int, dict[str, Any]], None]) -> None:
    # Given many deliveries, each with a value longer than its column, past the check
    transition_id = cancelled_order(shop, 60)

    def spoiled(*args: Any) -> dict[int, list[dict[str, Any]]]:
        planned = real(*args)
        for rows_planned in planned.values():
            for n, row in enumerate(rows_planned):
                spoil(n, row)
        return planned

    real = fanout.plan_rows
    monkeypatch.setattr(fanout, "plan_rows", spoiled)
    # Then the database refuses them, and nothing is written
    with Session(shop) as session:
        with pytest.raises(DataError, match="too long"):
            plan(session, transition_id)
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
