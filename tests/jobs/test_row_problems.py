"""What a delivery row records when one of its recipient's values cannot be stored: the first such value, and why."""

from __future__ import annotations

import pytest
from jobs import Delivery, Status
from jobs.fanout import plan
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.app import Order, Person


def watcher_rows(session: Session, watchers: list[str]) -> dict[str, tuple[str, str | None]]:
    """Cancel an order with these watchers and plan it: each watcher's row (status, error), by name or address."""
    order = Order(buyer=Person(name="Bea", email="bea@example.com"), seller=Person(name="Sam", email="sam@example.com"),
                  watchers=watchers)
    session.add(order)
    session.commit()
    record = order.cancel()
    session.commit()
    plan(session, record.id)
    rows = session.scalars(select(Delivery).where(Delivery.transition_id == record.id, Delivery.party == "watchers"))
    return {(row.name or row.address)[:12]: (row.status, row.last_error) for row in rows}


@pytest.mark.parametrize(("watcher", "reason"), [
    ("N" * 300 + " <n@example.com>", "name 'NNNNNNNNNNNN...NNNNNNNNNNNNN' is 300 characters long; its column holds 255"),
    ("Zoë <" + "z" * 320 + "@example.com>",
     "address 'zzzzzzzzzzzz...z@example.com' is 332 characters long; its column holds 320"),
    ("Ünïcödé " + "Ü" * 300 + " <u@example.com>", "name 'Ünïcödé ÜÜÜÜ...ÜÜÜÜÜÜÜÜÜÜÜÜÜ' is 308 characters long"),
])
def test_a_value_too_long_for_its_column_fails_its_row_naming_it(session: Session, watcher: str, reason: str) -> None:
    rows = watcher_rows(session, [watcher, "Wes <wes@example.com>"])
    failed = [error for status, error in rows.values() if status == Status.FAILED]
    assert len(failed) == 1 and failed[0] is not None and reason in failed[0] and failed[0].endswith("; not sent.")
    assert rows["Wes"] == (Status.PENDING, None)


def test_of_two_values_that_cannot_be_stored_the_row_names_the_address_before_the_name(session: Session) -> None:
    rows = watcher_rows(session, ["N" * 300 + " <" + "a" * 320 + "@example.com>"])
    [(status, error)] = rows.values()
    assert status == Status.FAILED and error is not None and "address 'aaaaaa" in error and "name" not in error


def test_short_text_that_is_not_ascii_is_stored_as_it_is(session: Session) -> None:
    rows = watcher_rows(session, ["Zoë Ünïcödé <zoe@example.com>"])
    assert rows == {"Zoë Ünïcödé": (Status.PENDING, None)}
