"""Every value a console page shows is escaped: a hostile subject, address, error or name never becomes markup."""

from __future__ import annotations

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.console import Console, Request
from jobs.testing import drain
from notifiers import Email, Event, Notifier, Recipient, on
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.app import Order, Person
from tests.failing_channels import Refusing

HOSTILE = "<script>alert(1)</script>"




@pytest.fixture
def hostile(broker: StubBroker, engine: Engine, session: Session, restore_registry: None) -> Order:
    """An order whose buyer's name, message subject and failure all carry a script tag."""

    class HostileNotifier(Notifier):
        @on(Order, "cancel", to="buyer")
        def cancelled(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject=f"Cancelled {HOSTILE}", text=f"Dear {recipient.name}", html=f"<p>{HOSTILE}</p>")

    order = Order(buyer=Person(name=HOSTILE, email="bea@example.com"), seller=Person(name="Sam", email="s@example.com"))
    session.add(order)
    session.commit()
    jobs.configure(broker=broker, engine=engine, channels={"email": Refusing(f"550 {HOSTILE}")})
    order.cancel(actor=HOSTILE, note=HOSTILE)
    session.commit()
    drain()
    session.execute(update(Delivery).values(channel=HOSTILE[:60]))
    session.commit()
    return order


PAGES = [("/", {}), ("/deliveries", {}), ("/failures", {}), ("/timeline", {"model": "Order"}),
         ("/deliveries", {"notifier": HOSTILE, "channel": HOSTILE, "since": HOSTILE}), ("/actions", {}), ("/graph", {})]


@pytest.mark.parametrize(("path", "query"), PAGES)
def test_no_page_shows_a_hostile_value_as_markup(engine: Engine, hostile: Order, path: str,
                                                 query: dict[str, str]) -> None:
    if path == "/timeline":
        query = {**query, "key": str(hostile.id)}
    console = Console(engine, authorize=lambda request: HOSTILE, actions=True)
    page = console.answer(Request("GET", path, query={k: [v] for k, v in query.items()})).body.decode()
    assert "<script" not in page.lower()


def test_the_timeline_shows_the_hostile_subject_and_body_escaped(engine: Engine, hostile: Order) -> None:
    console = Console(engine, authorize=lambda request: "ops")
    page = console.answer(Request("GET", "/timeline", query={"model": ["Order"], "key": [str(hostile.id)]})).body.decode()
    assert "Cancelled &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;p&gt;&lt;script&gt;" in page and "by &lt;script&gt;" in page


def test_a_hostile_path_is_escaped_in_the_not_found_page(engine: Engine) -> None:
    page = Console(engine).answer(Request("GET", f"/{HOSTILE}")).body.decode()
    assert "<script" not in page and "&lt;script&gt;" in page


def test_the_failures_by_reason_are_escaped_on_the_overview(engine: Engine, hostile: Order, session: Session) -> None:
    assert session.scalar(select(Delivery.last_error)) == f"550 {HOSTILE}"
    page = Console(engine).answer(Request("GET", "/")).body.decode()
    assert "550 &lt;script&gt;alert(1)&lt;/script&gt;" in page
