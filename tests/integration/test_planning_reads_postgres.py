"""On PostgreSQL, the preferences and suppressions of a fan-out's recipients are read in one statement each, however many."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jobs import Delivery
from jobs.claims import SentLog, claim_many
from jobs.fanout import plan
from notifiers import opt_out, registry, skip_reasons, suppress, suppression_reasons
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from tests.app import Order, Person

pytestmark = pytest.mark.integration

UNLOCKED = registry.for_transition("Account", "unlock")[0]
REQUIRED = registry.for_transition("Account", "lock")[0]


@pytest.fixture
def statements(shop: Engine) -> Iterator[list[str]]:
    """The SQL each statement sent to the shop's database, from now on."""
    sent: list[str] = []

    def note(*args: object) -> None:
        sent.append(str(args[2]))

    event.listen(shop, "before_cursor_execute", note)
    yield sent
    event.remove(shop, "before_cursor_execute", note)


def cancelled_order(session: Session, watchers: int) -> int:
    """An order with ``watchers`` watchers (w<n>@example.com), cancelled and committed; the transition's id."""
    order = Order(buyer=Person(name="Bea", email="bea@example.com"), seller=Person(name="Sam", email="sam@example.com"),
                  watchers=[f"w{n}@example.com" for n in range(watchers)])
    session.add(order)
    session.commit()
    transition_id = order.cancel().id
    session.commit()
    return int(transition_id)


def test_the_suppressed_and_opted_out_among_a_thousand_recipients_are_skipped_the_others_pending(
        shop: Engine, statements: list[str]) -> None:
    with Session(shop) as session:
        suppress(session, "W3@Example.com ", "bounced", detail="5.1.1")
        suppress(session, "w4@example.com", "bounced", channel="sms")  # another channel: not this one
        opt_out(session, "w5@example.com", channel="email")
        transition_id = cancelled_order(session, 1000)
        statements.clear()
        planned = plan(session, transition_id)
        found = {d.address: (d.status, d.last_error) for d in
                 session.scalars(select(Delivery).where(Delivery.transition_id == transition_id))}
    assert found["w3@example.com"][0] == "skipped" and "suppressed: bounced 5.1.1" in str(found["w3@example.com"][1])
    assert found["w5@example.com"] == ("skipped", "Opted out of email.")
    assert len(planned.pending) == len(found) - 2 == 999 and found["w4@example.com"] == ("pending", None)
    assert [len([s for s in statements if f"FROM {table}" in s]) for table in
            ("tidings_preferences", "tidings_suppressions")] == [1, 1]


def test_the_suppressions_of_a_thousand_pairs_are_read_at_once_each_reason_on_its_own_channel(shop: Engine) -> None:
    with Session(shop) as session:
        suppress(session, "a7@example.com", "unsubscribed")
        suppress(session, "a8@example.com", "complained", channel="sms")
        session.commit()
        reason = suppression_reasons(session, [(channel, f"A{n}@example.com") for n in range(500)
                                               for channel in ("email", "sms")])
    assert reason("email", "a7@example.com", False) is not None and reason("email", "a7@example.com", True) is None
    assert reason("sms", "a8@example.com", True) is not None and reason("email", "a8@example.com", False) is None
    assert [n for n in range(500) for channel in ("email", "sms") if reason(channel, f"a{n}@example.com", False)] == [
        7, 8]


def test_each_address_asked_is_matched_on_the_channel_asked_with_it(shop: Engine) -> None:
    with Session(shop) as session:
        suppress(session, "a7@example.com", "unsubscribed")
        suppress(session, "a8@example.com", "complained", channel="sms")
        session.commit()
        reason = suppression_reasons(session, [("email", "a7@example.com"), ("sms", "a8@example.com"),
                                               ("email", "b1@example.com")])
    assert reason("email", "a7@example.com", False) is not None and reason("sms", "a8@example.com", False) is not None
    assert reason("email", "b1@example.com", False) is None


def test_an_address_longer_than_its_column_is_not_cut_to_match_a_suppressed_one(shop: Engine) -> None:
    stored = "x" * 308 + "@example.com"  # 320 characters, the column's length
    with Session(shop) as session:
        suppress(session, stored, "manual")
        session.commit()
        reason = suppression_reasons(session, [("email", stored + "m"), ("email", stored)])
    assert reason("email", stored + "m", False) is None and reason("email", stored, False) is not None


def test_the_preferences_of_a_thousand_refs_are_read_at_once(shop: Engine, statements: list[str]) -> None:
    with Session(shop) as session:
        opt_out(session, "Person:7", channel="email")
        opt_out(session, "Person:900")
        session.commit()
        statements.clear()
        choices = skip_reasons(session, [f"Person:{n}" for n in range(1000)])
    assert [n for n in range(1000) if choices(f"Person:{n}", UNLOCKED, "email")] == [7, 900]
    assert choices("Person:7", UNLOCKED, "inapp") is None and choices("Person:900", REQUIRED, "email") is None
    assert len([s for s in statements if "FROM tidings_preferences" in s]) == 1


def test_a_ref_longer_than_its_column_is_not_cut_to_match_another_recipients_preference(shop: Engine) -> None:
    stored = "Person:" + "7" * 248  # 255 characters, the column's length
    with Session(shop) as session:
        opt_out(session, stored)
        session.commit()
        choices = skip_reasons(session, [stored + "7", stored])
    assert choices(stored + "7", UNLOCKED, "email") is None and choices(stored, UNLOCKED, "email") is not None


def test_claims_and_sent_outcomes_of_one_delivery_or_many_send_the_same_statements(
        shop: Engine, statements: list[str]) -> None:
    with Session(shop) as session:
        pending = plan(session, cancelled_order(session, 5)).pending
        texts = []
        for ids in (pending[:1], pending[1:]):
            statements.clear()
            sent = SentLog(session)
            for held in claim_many(session, ids, lease_seconds=60):
                sent.add(held)
            sent.flush()
            texts.append([s for s in statements if "tidings_deliveries" in s])
        statuses = set(session.scalars(select(Delivery.status).where(Delivery.id.in_(pending))))
    assert len(pending) == 6 and statuses == {"sent"}
    assert texts[0] == texts[1] and len(texts[0]) == 2  # one text whatever the count: prepared once by the server
