"""Fan-out: one delivery row per (transition, notifier, recipient, channel), written once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from jobs import Delivery, Status, TransitionNotFound
from jobs import taking
from jobs import rows as delivery_rows
from jobs.delivery_log import delivery_key
from jobs.claims import claim_many
from jobs.fanout import fan_out, plan, plan_many
from jobs.sweeper import sweep
from notifiers import opt_out
from sqlalchemy import Engine, delete, event, select, update
from sqlalchemy.orm import Session, object_session
from workflow import TransitionRecord

from tests.app import Account, Order, Person
from tests.scenarios import paid_orders


def test_one_delivery_per_party_recipient_and_channel(session: Session, order: Order) -> None:
    record = order.cancel()
    session.commit()
    fan_out(session, record.id)
    rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.party, d.address, d.status) for d in rows] == [
        ("buyer", "bea@example.com", "pending"), ("watchers", "w1@example.com", "pending"),
        ("watchers", "w2@example.com", "pending")]
    assert session.get(TransitionRecord, record.id).fanned_out_at is not None  # type: ignore[union-attr]


def test_a_fan_out_of_more_rows_than_one_returning_insert_takes_marks_its_transition_fanned_out(
        session: Session, order: Order) -> None:
    order.watchers = [f"w{n}@example.com" for n in range(60)]  # 61 rows: the executemany path on SQLite
    record = order.cancel()
    session.commit()
    assert len(fan_out(session, record.id)) == 61
    session.expire_all()
    assert session.get(TransitionRecord, record.id).fanned_out_at is not None  # type: ignore[union-attr]


def test_running_the_fan_out_twice_writes_nothing_new(session: Session, order: Order,
                                                      count: Callable[[type], int]) -> None:
    record = order.pay()
    session.commit()
    assert len(fan_out(session, record.id)) == 2
    assert fan_out(session, record.id) == []
    assert count(Delivery) == 2


def test_a_second_fan_out_writes_nothing_again_whose_key_was_written_before_keys_carried_the_installation_id(
        session: Session, order: Order, count: Callable[[type], int]) -> None:
    record = order.pay()
    session.commit()
    assert len(fan_out(session, record.id)) == 2
    session.execute(update(Delivery).values(key="old-" + Delivery.key))  # as an older release wrote them
    session.commit()
    assert fan_out(session, record.id) == []
    assert count(Delivery) == 2


def test_a_transition_nobody_listens_to_writes_no_delivery(session: Session, order: Order,
                                                           count: Callable[[type], int]) -> None:
    record = order.reopen()
    session.commit()
    assert fan_out(session, record.id) == []
    assert count(Delivery) == 0


def test_an_unknown_transition_is_a_clear_error(session: Session) -> None:
    with pytest.raises(TransitionNotFound, match="Transition 999 does not exist"):
        fan_out(session, 999)


def test_a_party_without_an_address_is_recorded_as_failed(session: Session, order: Order) -> None:
    order.buyer.email = None
    record = order.pay()
    session.commit()
    assert len(fan_out(session, record.id)) == 1
    failed = session.scalars(select(Delivery).where(Delivery.status == Status.FAILED)).one()
    assert failed.party == "buyer" and "has no email address" in (failed.last_error or "")


def test_an_opted_out_recipient_gets_a_skipped_delivery_with_the_reason(session: Session) -> None:
    account = Account(owner=Person(name="Ann", email="ann@example.com"))
    session.add(account)
    session.commit()
    opt_out(session, account.owner, channel="email")
    account.lock()
    session.commit()
    account.unlock()
    session.commit()
    for record in session.scalars(select(TransitionRecord).order_by(TransitionRecord.id)).all():
        fan_out(session, record.id)
    rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.notifier.rsplit(".", 1)[1], d.channel, d.status, d.last_error) for d in rows] == [
        ("locked", "email", Status.PENDING, None), ("locked", "inapp", Status.PENDING, None),
        ("unlocked", "email", Status.SKIPPED, "Opted out of email."), ("unlocked", "inapp", Status.PENDING, None)]


def test_a_few_deliveries_are_written_claimed_for_the_fan_out_to_send_itself(session: Session, order: Order) -> None:
    record = order.pay()
    session.commit()
    planned = plan(session, record.id, claim_up_to=2, lease_seconds=60)
    assert sorted(c.address for c in planned.claimed) == ["bea@example.com", "sam@example.com"]
    assert planned.pending == [] and planned.loaded[record.id][1] is order
    rows = session.scalars(select(Delivery)).all()
    assert {(d.status, d.attempts) for d in rows} == {(Status.SENDING, 1)}
    assert all(d.lease_until is not None for d in rows)


def test_more_deliveries_than_it_may_claim_are_written_pending(session: Session, order: Order) -> None:
    record = order.pay()
    session.commit()
    planned = plan(session, record.id, claim_up_to=1, lease_seconds=60)
    assert planned.claimed == [] and len(planned.pending) == 2


def test_a_second_fan_out_claims_nothing(session: Session, order: Order) -> None:
    record = order.pay()
    session.commit()
    first = plan(session, record.id, claim_up_to=0)
    session.execute(delete(Delivery).where(Delivery.id == first.pending[0]))  # as if one row were lost
    session.commit()
    again = plan(session, record.id, claim_up_to=10)
    assert again.claimed == [] and len(again.pending) == 1


# --- Several transitions in one fan-out ------------------------------------------------------------


def statements_to_plan(session: Session, ids: list[int]) -> int:
    """The statements planning ``ids`` takes in a new session, as a worker's message has."""
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(session.get_bind(), "before_cursor_execute", listener)
    try:
        with Session(session.get_bind()) as fresh:
            plan_many(fresh, ids)
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listener)
    return len(statements)


def test_planning_many_transitions_costs_the_statements_of_planning_two(session: Session) -> None:
    ids = paid_orders(session, 13)
    fan_out(session, ids[0])  # the installation id is read once per engine, by the first plan
    assert statements_to_plan(session, ids[3:]) == statements_to_plan(session, ids[1:3])
    assert len(session.scalars(select(Delivery)).all()) == 26


def test_a_batch_claims_whole_transitions_while_they_fit(session: Session) -> None:
    ids = paid_orders(session, 3)  # two deliveries each
    planned = plan_many(session, ids, claim_up_to=2, claim_total=5)
    assert sorted({c.transition_id for c in planned.claimed}) == ids[:2] and len(planned.claimed) == 4
    assert len(planned.pending) == 2 and set(planned.loaded) == set(ids)


def test_a_missing_transition_is_reported_and_the_others_planned(session: Session) -> None:
    ids = paid_orders(session, 2)
    planned = plan_many(session, [ids[0], 999, ids[1]])
    assert planned.missing == [999] and len(planned.pending) == 4


@pytest.mark.parametrize("count", [2, 3])
def test_a_transition_fanned_out_meanwhile_does_not_hold_back_the_others(
        session: Session, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    ids = paid_orders(session, count)
    resolve = delivery_rows.skip_reasons

    def another_worker_first(*args: object) -> object:  # commits a fan-out of ids[1] between read and write
        monkeypatch.setattr(delivery_rows, "skip_reasons", resolve)
        with Session(session.get_bind()) as other:
            plan(other, ids[1])
        return resolve(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(delivery_rows, "skip_reasons", another_worker_first)
    planned = plan_many(session, ids, claim_up_to=10)
    assert sorted({c.transition_id for c in planned.claimed}) == [ids[0], *ids[2:]]
    rows = session.scalars(select(Delivery.transition_id)).all()
    assert sorted(rows) == sorted(ids * 2)  # each transition's two deliveries, once


def test_a_party_that_raises_fails_its_deliveries_with_the_reason_and_not_the_others(
        session: Session, order: Order, monkeypatch: pytest.MonkeyPatch) -> None:
    other = Order(buyer=order.buyer, seller=order.seller)
    session.add(other)
    session.commit()
    broken = order.id

    def nobody(row: Order) -> None:
        if row.id == broken:
            raise RuntimeError("party lookup broke")

    monkeypatch.setitem(Order.workflow.parties, "nobody", nobody)
    ids = [order.cancel().id, other.cancel().id]
    session.commit()
    plan_many(session, ids)
    rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    failed = {(d.transition_id, d.last_error) for d in rows if d.status == Status.FAILED}
    assert {transition for transition, _ in failed} == {ids[0]}
    assert all("raised RuntimeError: party lookup broke" in (error or "") for _, error in failed)
    assert {d.status for d in rows if d.transition_id == ids[1]} == {Status.PENDING}


def three_paid_orders_the_second_of_which_cannot_be_planned(session: Session,
                                                            monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Three paid orders' transitions; planning the second raises (e.g. a value its column cannot hold)."""
    ids = paid_orders(session, 3)
    second = session.get(Order, int(session.get(TransitionRecord, ids[1]).key))  # type: ignore[union-attr]
    broken_ref = f"Person:{second.seller.id}"  # type: ignore[union-attr]
    resolve = delivery_rows.skip_reasons

    def broken_for_the_second(session: Session, refs: Any) -> Any:
        wanted = list(refs)
        if broken_ref in wanted:
            raise RuntimeError("preferences unreadable")
        return resolve(session, wanted)

    monkeypatch.setattr(delivery_rows, "skip_reasons", broken_for_the_second)
    return ids


def test_a_transition_that_cannot_be_planned_is_left_to_the_sweeper_and_the_others_are_planned(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = three_paid_orders_the_second_of_which_cannot_be_planned(session, monkeypatch)
    planned = plan_many(session, ids)
    assert sorted(planned.loaded) == [ids[0], ids[2]]
    unfanned = session.scalars(select(TransitionRecord.id).where(TransitionRecord.fanned_out_at.is_(None))).all()
    assert unfanned == [ids[1]]


def test_planned_each_on_its_own_after_one_failed_a_batch_still_claims_no_more_than_its_total(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = three_paid_orders_the_second_of_which_cannot_be_planned(session, monkeypatch)
    planned = plan_many(session, ids, claim_up_to=2, claim_total=2)
    assert [c.transition_id for c in planned.claimed] == [ids[0]] * 2 and len(planned.pending) == 2


def test_a_lone_transition_that_cannot_be_planned_raises_so_that_the_message_is_retried(
        session: Session, order: Order, monkeypatch: pytest.MonkeyPatch) -> None:
    record = order.pay()
    session.commit()
    monkeypatch.setattr(delivery_rows, "skip_reasons", lambda *args: (_ for _ in ()).throw(RuntimeError("down")))
    with pytest.raises(RuntimeError, match="down"):
        plan_many(session, [record.id])


def test_a_delivery_key_is_32_hex_characters_given_by_its_inputs_alone() -> None:
    key = delivery_key(7, "OrderNotifier.paid", " Bea@Example.com ", "email", installation="a")
    assert re.fullmatch("[0-9a-f]{32}", key)
    assert key == delivery_key(7, "OrderNotifier.paid", "bea@example.com", "email", installation="a")
    assert key != delivery_key(8, "OrderNotifier.paid", "bea@example.com", "email", installation="a")
    assert key != delivery_key(7, "OrderNotifier.paid", "bea@example.com", "email", installation="b")


def test_a_fan_out_through_a_session_bound_to_a_connection_plans_its_deliveries(engine: Engine, order: Order) -> None:
    record_id = order.pay().id
    object_session(order).commit()  # type: ignore[union-attr]
    with engine.connect() as connection, Session(bind=connection) as session:
        assert len(plan(session, record_id).pending) == 2


def test_a_process_remembers_the_last_20000_transitions_it_planned() -> None:
    recent = taking._Recent()
    recent.update(("db", i) for i in range(20_001))
    assert ("db", 0) not in recent and ("db", 1) in recent and ("db", 20_000) in recent


def test_a_party_without_an_address_fails_on_each_channel_of_its_notifier(session: Session) -> None:
    account = Account(owner=Person(name="Ann", email=None))
    session.add(account)
    session.commit()
    record = account.lock()
    session.commit()
    fan_out(session, record.id)
    failed = session.scalars(select(Delivery).where(Delivery.status == Status.FAILED)).all()
    assert sorted(d.channel for d in failed) == ["email", "inapp"]


def test_a_transition_whose_row_is_gone_does_not_hold_back_the_others_of_its_batch(session: Session) -> None:
    ids = paid_orders(session, 3)
    session.execute(delete(Order).where(Order.id == int(session.get(TransitionRecord, ids[0]).key)))  # type: ignore[union-attr]
    session.commit()
    planned = plan_many(session, ids)
    assert sorted(planned.loaded) == ids[1:] and len(planned.pending) == 4


def test_deliveries_written_claimed_are_not_claimed_again_while_their_lease_lasts(engine: Engine,
                                                                                 session: Session) -> None:
    [record_id] = paid_orders(session, 1)
    claimed = plan(session, record_id, claim_up_to=4, lease_seconds=60).claimed
    assert len(claimed) == 2
    assert sweep(session, grace_seconds=0).deliveries == []
    with Session(engine) as other:
        assert claim_many(other, [c.id for c in claimed], lease_seconds=60) == []
