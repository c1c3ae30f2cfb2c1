from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session
from workflow import (
    ConditionFailed,
    ContextNotSerializable,
    NotInSession,
    TransitionNotAllowed,
    TransitionRecord,
    UnknownTrigger,
)

from tests.app import Order, Person


def recorded(session: Session) -> int:
    """Log rows visible in the session's transaction, uncommitted ones included."""
    return int(session.scalar(select(func.count()).select_from(TransitionRecord)) or 0)


def test_a_new_row_starts_in_the_initial_state() -> None:
    assert Order().state == "new"


def test_firing_sets_the_state_and_records_the_transition(session: Session, order: Order) -> None:
    record = order.pay(actor="clerk-7", note="cash")
    assert order.state == "paid"
    assert (record.model, record.key, record.trigger, record.source, record.dest) == ("Order", str(order.id), "pay",
                                                                                       "new", "paid")
    assert (record.actor, record.context, record.fanned_out_at) == ("clerk-7", {"note": "cash"}, None)
    assert inspect(record).persistent and recorded(session) == 1  # written at once, in the transaction


def test_a_mapped_actor_is_recorded_as_model_and_key(session: Session, order: Order) -> None:
    assert order.pay(actor=order.buyer).actor == f"Person:{order.buyer.id}"


def test_unknown_trigger_lists_the_triggers_and_suggests_one(order: Order) -> None:
    with pytest.raises(UnknownTrigger, match=r"Order \d+ has no trigger 'shp'; its triggers: pay, ship.*Did you mean 'ship'"):
        order.fire("shp")


def test_trigger_not_allowed_names_the_model_id_state_and_the_triggers_allowed_now(order: Order) -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        order.ship()
    assert str(caught.value) == f"Order {order.id} cannot 'ship' from state 'new'; allowed now: cancel, explode, pay, reopen."
    assert (caught.value.state, caught.value.allowed) == ("new", ("cancel", "explode", "pay", "reopen"))


def test_failed_condition_is_named_and_the_state_is_unchanged(session: Session, order: Order) -> None:
    order.paid_in_full = False
    with pytest.raises(ConditionFailed, match=r"condition 'is_paid_in_full' refused it") as caught:
        order.pay()
    assert order.state == "new" and caught.value.condition == "is_paid_in_full"
    assert recorded(session) == 0


def test_unless_refusal_names_the_unless(session: Session, order: Order) -> None:
    order.pay()
    with pytest.raises(ConditionFailed, match=r"condition 'unless is_blocked' refused it"):
        order.ship(blocked=True)
    assert order.state == "paid"


def test_callbacks_receive_the_actor_and_context_they_ask_for(order: Order) -> None:
    order.pay(actor="ann", note="hi")
    assert order.calls == ["before:ann", "after:['actor', 'note']"]


def test_a_failing_callback_leaves_the_state_unchanged(session: Session, order: Order) -> None:
    with pytest.raises(RuntimeError, match="after-callback failed"):
        order.explode()
    assert order.state == "new"
    assert recorded(session) == 0


def test_wildcard_source_allows_the_trigger_from_every_state(order: Order) -> None:
    order.cancel()
    order.reopen()
    assert order.state == "new"


def test_allowed_triggers_lists_those_with_a_transition_from_the_current_state(order: Order) -> None:
    order.pay()
    assert order.allowed_triggers() == ["cancel", "reopen", "ship"]


def test_context_that_is_not_json_is_refused_naming_the_key(order: Order, session: Session) -> None:
    with pytest.raises(ContextNotSerializable, match=r"context 'when' of 'pay' is a object, which is not JSON") as caught:
        order.pay(when=object())
    assert order.state == "new" and caught.value.field == "when"
    assert recorded(session) == 0


def test_not_a_number_in_the_context_is_refused_as_not_json(order: Order, session: Session) -> None:
    with pytest.raises(ContextNotSerializable, match=r"context 'ratio' of 'pay' is a float, which is not JSON"):
        order.pay(ratio=float("nan"))
    assert order.state == "new" and recorded(session) == 0


def test_a_context_nested_too_deep_is_refused_as_not_serializable(order: Order, session: Session) -> None:
    nested: list[object] = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(ContextNotSerializable, match=r"context 'tree' of 'pay' is a list, which is nested too deep"):
        order.pay(tree=nested)
    assert order.state == "new" and recorded(session) == 0


def test_a_row_outside_any_session_cannot_fire() -> None:
    with pytest.raises(NotInSession, match=r"add it to a session before firing 'pay'"):
        Order(buyer=Person(name="x", email="x@example.com")).pay()


def test_a_pending_row_is_flushed_so_its_record_has_a_key(session: Session) -> None:
    order = Order(buyer=Person(name="b", email="b@example.com"), seller=Person(name="s", email="s@example.com"))
    session.add(order)
    assert order.pay().key == str(order.id)


def test_loaded_rows_keep_their_stored_state(session: Session, order: Order, engine: object) -> None:
    order.pay()
    session.commit()
    with Session(engine) as other:  # type: ignore[arg-type]
        assert other.get(Order, order.id).state == "paid"  # type: ignore[union-attr]


def test_no_machine_is_made_or_registered_per_row(session: Session, order: Order) -> None:
    machine = Order.workflow.machine
    for _ in range(20):
        order.cancel()
        order.reopen()
    assert machine is Order.workflow.machine and machine.models == []


def test_firing_logs_no_info_line_of_the_transitions_library(session: Session, order: Order,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        order.pay()
    assert [r for r in caplog.records if r.name.startswith("transitions")] == []


def test_a_level_the_application_gave_the_transitions_logger_is_kept() -> None:
    import subprocess
    import sys

    script = ("import logging; logging.getLogger('transitions').setLevel(logging.DEBUG); import workflow; "
              "print(logging.getLogger('transitions').level)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "10", done.stderr
