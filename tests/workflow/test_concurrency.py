"""Two transactions firing on the same row: one wins, the other gets ConcurrentTransition."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, object_session
from workflow import ConcurrentTransition, InvalidTransition, Stateful, TransitionRecord, Workflow, metadata

from tests.app import Order


def test_the_second_of_two_racing_transitions_gets_a_clear_error(engine: Engine, order: Order,
                                                                 count: Callable[[type], int]) -> None:
    with Session(engine) as first, Session(engine) as second:
        mine, theirs = first.get(Order, order.id), second.get(Order, order.id)
        assert mine is not None and theirs is not None
        theirs.state  # noqa: B018 - loaded before the first one commits
        mine.cancel()
        first.commit()
        with pytest.raises(ConcurrentTransition, match=rf"Order {order.id} was changed by another transaction "
                                                       r"while firing 'pay' from 'new'"):
            theirs.pay()
        assert theirs.state == "new"
        second.rollback()
    assert count(TransitionRecord) == 1


def test_a_concurrent_transition_is_an_invalid_transition_for_request_handlers() -> None:
    assert issubclass(ConcurrentTransition, InvalidTransition)


def test_the_state_update_is_written_once(engine: Engine, session: Session, order: Order) -> None:
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", record)
    try:
        order.cancel()  # no callbacks touching other columns
        session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [s for s in statements if s in ("UPDATE", "INSERT")] == ["UPDATE", "INSERT"]


def test_a_row_whose_only_change_was_its_transition_is_left_clean_for_the_commit(session: Session,
                                                                                  order: Order) -> None:
    order.cancel()
    assert order not in session.dirty  # its state is written: the commit's flush has nothing to walk


def test_a_change_made_before_the_trigger_is_still_flushed_with_the_commit(engine: Engine, session: Session,
                                                                          order: Order) -> None:
    assert order.state == "new"  # loaded: the change below waits in the session, unflushed
    order.paid_in_full = False
    order.cancel()
    session.commit()
    with Session(engine) as other:
        stored = other.get(Order, order.id)
        assert stored is not None and (stored.state, stored.paid_in_full) == ("cancelled", False)


def test_a_callback_that_makes_the_session_autoflush_does_not_defeat_the_check(session: Session,
                                                                              order: Order) -> None:
    order.pay()
    session.commit()  # expires order.buyer: the after-callback of 'ship' loads it again
    order.ship()
    session.commit()
    assert (order.state, order.calls[-1]) == ("shipped", "greet:Bea")


class _Base(DeclarativeBase):
    pass


class Gadget(Stateful, _Base):
    __tablename__ = "concurrency_gadgets"
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow = Workflow(states=["off", "on"], initial="off",
                        transitions=[{"trigger": "switch_on", "source": "off", "dest": "on", "after": "blow_up"}])

    def blow_up(self) -> None:
        raise RuntimeError("after-callback failed")


@pytest.fixture
def gadget() -> Iterator[Gadget]:
    """A committed gadget, off, in a session of its own (in-memory SQLite)."""
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    metadata.create_all(engine)
    with Session(engine) as session:
        gadget = Gadget(id=1)
        session.add(gadget)
        session.commit()
        yield gadget


def test_a_transition_aborted_by_its_after_callback_then_committed_leaves_no_trace(gadget: Gadget) -> None:
    session = object_session(gadget)
    assert session is not None
    with pytest.raises(RuntimeError, match="after-callback failed"):
        gadget.switch_on()  # raises once the state and the log row are written
    assert gadget.state == "off"
    session.commit()  # the handler swallowed the error and committed anyway
    session.expire_all()
    assert gadget.state == "off"
    assert session.scalar(select(func.count()).select_from(TransitionRecord)) == 0


def test_a_transition_aborted_by_its_after_callback_leaves_the_stored_state_unchanged_at_once(
        gadget: Gadget, monkeypatch: pytest.MonkeyPatch) -> None:
    session = object_session(gadget)
    assert session is not None
    with pytest.raises(RuntimeError, match="after-callback failed"):
        gadget.switch_on()
    session.refresh(gadget)  # what the database holds now, in this transaction
    assert gadget.state == "off"
    monkeypatch.setattr(Gadget, "blow_up", lambda self: None)
    gadget.switch_on()  # once the callback is fixed it fires again: no stale write to trip on
    assert gadget.state == "on"


def test_a_transition_rolled_back_with_its_savepoint_leaves_the_row_in_its_old_state(session: Session,
                                                                                    order: Order) -> None:
    assert order.state == "new"
    savepoint = session.begin_nested()
    order.cancel()
    savepoint.rollback()
    assert order.state == "new"  # read again: the stored state, not the one the savepoint wrote
    order.pay()
    session.commit()


def test_an_update_listener_still_hears_of_the_row_a_transition_changed(engine: Engine, session: Session,
                                                                        order: Order) -> None:
    heard: list[object] = []

    def stamp(mapper: object, connection: object, target: Order) -> None:
        heard.append(target)

    event.listen(Order, "before_update", stamp)
    try:
        order.cancel()
        session.commit()
    finally:
        event.remove(Order, "before_update", stamp)
    assert heard == [order]


@pytest.mark.parametrize("name", ["before_flush", "after_flush", "after_flush_postexec"])
def test_a_flush_listener_of_the_session_still_hears_of_the_row_a_transition_changed(
        session: Session, order: Order, name: str) -> None:
    heard: list[bool] = []

    def note(flushing: Session, *args: object) -> None:
        heard.append(order in flushing.identity_map.values())

    event.listen(session, name, note)
    order.cancel()
    session.commit()
    assert heard == [True]  # the commit flushed, so the listener ran
