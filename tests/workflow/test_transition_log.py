from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import String, TypeDecorator, Uuid, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from workflow import Stateful, TransitionRecord, Workflow, load_subject, load_subjects, metadata, read_records

from tests.app import Order
from tests.scenarios import paid_orders


class Base(DeclarativeBase):
    pass


class Ticket(Stateful, Base):
    __tablename__ = "log_tickets"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workflow = Workflow(states=["open", "closed"], initial="open", transitions=[["close", "open", "closed"]])


class Page(Stateful, Base):
    __tablename__ = "log_pages"
    slug: Mapped[str] = mapped_column(String(50), primary_key=True)
    workflow = Workflow(states=["draft", "live"], initial="draft", transitions=[["publish", "draft", "live"]])


class Code(TypeDecorator[str]):
    """A key type that, like many TypeDecorators, does not say which Python type it holds."""

    impl = String(20)
    cache_ok = True


class Badge(Stateful, Base):
    __tablename__ = "log_badges"
    code: Mapped[str] = mapped_column(Code, primary_key=True)
    workflow = Workflow(states=["new", "issued"], initial="new", transitions=[["issue", "new", "issued"]])


def test_committed_transitions_are_in_the_log(session: Session, order: Order,
                                              count: Callable[[type], int]) -> None:
    order.pay()
    order.ship()
    session.commit()
    assert [(r.trigger, r.source, r.dest) for r in session.query(TransitionRecord).order_by(TransitionRecord.id)] == [
        ("pay", "new", "paid"), ("ship", "paid", "shipped")]


def test_a_rolled_back_transition_leaves_no_log_row(session: Session, order: Order,
                                                    count: Callable[[type], int]) -> None:
    order.pay()
    session.rollback()
    assert count(TransitionRecord) == 0


def test_uuid_and_string_keys_are_recorded_and_lead_back_to_the_row() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    metadata.create_all(engine)
    with Session(engine) as session:
        ticket, page = Ticket(), Page(slug="about")
        session.add_all([ticket, page])
        records = [ticket.close(), page.publish()]
        session.commit()
        assert records[0].key == str(ticket.id) and records[1].key == "about"
        assert load_subject(session, records[0]) is ticket
        assert load_subject(session, records[1]) is page


def test_a_key_of_a_type_that_does_not_say_its_python_type_leads_back_to_the_row() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    metadata.create_all(engine)
    with Session(engine) as session:
        badge = Badge(code="B-7")
        session.add(badge)
        record = badge.issue()
        session.commit()
        assert load_subject(session, record) is badge
        assert load_subjects(session, [record]) == {record.id: badge}


def test_many_transitions_are_read_back_in_one_statement_with_their_rows_and_parties_in_a_few(
        session: Session) -> None:
    ids = paid_orders(session, 10)
    statements: list[str] = []
    with Session(session.get_bind()) as fresh:
        event.listen(fresh.get_bind(), "before_cursor_execute", lambda *args: statements.append(args[2]))
        records = read_records(fresh.connection(), [*ids, 999])
        subjects = load_subjects(fresh, records.values())
        buyers = [subjects[i].parties()["buyer"].email for i in ids]  # type: ignore[union-attr]
    assert sorted(records) == ids and buyers == [f"b{n}@example.com" for n in range(10)]
    assert len(statements) == 4  # the transitions; the orders; their buyers and their sellers, each loaded at once


def test_rows_read_without_their_parties_cost_one_statement_and_load_a_party_when_touched(
        session: Session) -> None:
    ids = paid_orders(session, 10)
    statements: list[str] = []
    with Session(session.get_bind()) as fresh:
        records = read_records(fresh.connection(), ids)
        event.listen(fresh.get_bind(), "before_cursor_execute", lambda *args: statements.append(args[2]))
        subjects = load_subjects(fresh, records.values(), parties=False)
        read = len(statements)
        buyer = subjects[ids[0]].parties()["buyer"].email  # type: ignore[union-attr]
    assert read == 1 and buyer == "b0@example.com" and len(statements) == 3  # then the buyer, the seller


def test_a_transition_whose_row_is_gone_reads_back_as_none(session: Session, order: Order) -> None:
    record = order.pay()
    session.commit()
    session.delete(order)
    session.commit()
    assert load_subjects(session, [record]) == {record.id: None}
