"""The console's pages on SQLite with failures seeded: each page answers, shows what it should and escapes it."""

from __future__ import annotations

import re

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.console import Console, Request
from jobs.testing import drain
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.app import Order, Person
from tests.failing_channels import Refusing




@pytest.fixture
def failed(broker: StubBroker, engine: Engine, session: Session, order: Order) -> list[int]:
    """Order paid while the server refused: two failed deliveries (buyer and seller)."""
    jobs.configure(broker=broker, engine=engine, channels={"email": Refusing("550 mailbox unavailable")})
    order.pay(actor="clerk")
    session.commit()
    drain()
    return list(session.scalars(select(Delivery.id).where(Delivery.status == "failed").order_by(Delivery.id)))


def get(console: Console, path: str, **query: str) -> tuple[int, str]:
    response = console.answer(Request("GET", path, query={k: [v] for k, v in query.items()}))
    return response.status, response.body.decode()


def test_the_overview_shows_the_backlog_by_status_and_the_failures_by_reason(engine: Engine, failed: list[int]) -> None:
    status, page = get(Console(engine), "/")
    assert status == 200
    assert re.search(r"failed<b>2</b>", page) and re.search(r"sent<b>0</b>", page)
    assert '<td class="n">2</td><td>550 mailbox unavailable</td>' in page
    assert '<svg id="chart"' in page and "Scheduled and due" in page


def test_the_overview_charts_what_was_sent_in_the_last_hours(broker: StubBroker, engine: Engine, session: Session,
                                                               order: Order) -> None:
    order.pay()
    session.commit()
    drain()
    status, page = get(Console(engine), "/")
    assert "(2 sent; peak 2 a minute)" in page
    assert len(re.findall(r'<rect x="[\d.]+" y="0.0" width="[\d.]+" height="160.0" fill="#3b6fd6">', page)) == 1


def test_the_deliveries_list_filters_by_status_notifier_and_channel(engine: Engine, failed: list[int],
                                                                   session: Session) -> None:
    console = Console(engine)
    assert get(console, "/deliveries", status="failed")[1].count('class="status-failed">failed<') == 2
    assert "No delivery matches." in get(console, "/deliveries", status="sent")[1]
    assert get(console, "/deliveries", notifier="OrderNotifier.paid")[1].count("<td>buyer</td>") == 1
    assert "No delivery matches." in get(console, "/deliveries", notifier="OrderNotifier.shipped")[1]
    assert "No delivery matches." in get(console, "/deliveries", channel="sms")[1]


def test_the_deliveries_list_filters_by_when_they_were_written(engine: Engine, failed: list[int]) -> None:
    console = Console(engine)
    assert get(console, "/deliveries", since="1h")[1].count("<td>email</td>") == 2
    assert "No delivery matches." in get(console, "/deliveries", until="1h")[1]


def test_a_time_that_does_not_parse_is_said_on_the_page(engine: Engine, failed: list[int]) -> None:
    status, page = get(Console(engine), "/deliveries", since="yesterday")
    assert status == 200 and "&#39;yesterday&#39; is not a time" in page


def test_the_deliveries_list_pages_by_id_newest_first(broker: StubBroker, engine: Engine, session: Session) -> None:
    for n in range(5):
        order = Order(buyer=Person(name=f"B{n}", email=f"b{n}@example.com"),
                      seller=Person(name=f"S{n}", email=f"s{n}@example.com"))
        session.add(order)
        session.commit()
        order.pay()
        session.commit()
    drain()
    ids = sorted(session.scalars(select(Delivery.id)), reverse=True)
    console = Console(engine, page_size=4)
    first = get(console, "/deliveries")[1]
    assert _ids(first) == ids[:4] and f"before={ids[3]}" in first and 'id="newer"' not in first
    second = get(console, "/deliveries", before=str(ids[3]))[1]
    assert _ids(second) == ids[4:8] and f"after={ids[4]}" in second
    assert _ids(get(console, "/deliveries", after=str(ids[4]))[1]) == ids[:4]
    last = get(console, "/deliveries", before=str(ids[7]))[1]
    assert _ids(last) == ids[8:] and 'id="older"' not in last


def _ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr>\s*<td class="n">(\d+)</td><td class="status', page)]


def test_the_failures_page_lists_the_failed_and_dead_deliveries_only(broker: StubBroker, engine: Engine,
                                                                    failed: list[int], session: Session) -> None:
    session.execute(update(Delivery).where(Delivery.id == failed[0]).values(status="dead"))
    session.commit()
    page = get(Console(engine), "/failures")[1]
    assert _ids(page) == sorted(failed, reverse=True)
    assert "Read-only: actions are disabled" in page and "Re-send the ticked" not in page


def test_a_timeline_shows_each_transition_and_who_was_told(engine: Engine, failed: list[int], order: Order) -> None:
    page = get(Console(engine), "/timeline", model="Order", key=str(order.id))[1]
    assert "pay: new &rarr; paid by clerk" in page
    assert page.count("550 mailbox unavailable") == 2 and "<td>bea@example.com</td>" in page


def test_an_unknown_status_is_said_on_the_page_with_those_it_shows(engine: Engine, failed: list[int]) -> None:
    status, page = get(Console(engine), "/deliveries", status="faild")
    assert status == 200 and "Unknown status &#39;faild&#39;: this page shows scheduled, pending," in page


def test_a_page_cursor_that_is_not_an_id_is_said_on_the_page(engine: Engine, failed: list[int]) -> None:
    status, page = get(Console(engine), "/deliveries", before="abc")
    assert status == 200 and "before=&#39;abc&#39; is not a delivery id" in page


def test_a_timeline_of_a_transition_id_not_in_the_log_says_so(engine: Engine, failed: list[int]) -> None:
    for asked in ("999999", "abc"):
        page = get(Console(engine), "/timeline", transition=asked)[1]
        assert f"No transition &#39;{asked}&#39; in the log" in page


def test_a_timeline_is_found_from_a_transition_id(engine: Engine, failed: list[int], order: Order,
                                                  session: Session) -> None:
    transition = session.scalar(select(Delivery.transition_id).where(Delivery.id == failed[0]))
    page = get(Console(engine), "/timeline", transition=str(transition))[1]
    assert f"Timeline of Order {order.id}" in page


def test_a_timeline_of_an_unknown_model_says_so(engine: Engine, failed: list[int]) -> None:
    page = get(Console(engine), "/timeline", model="Ordr", key="1")[1]
    assert "Unknown model &#39;Ordr&#39;" in page and "Did you mean &#39;Order&#39;?" in page


def test_a_timeline_renders_each_deliverys_message_for_an_authorised_operator(engine: Engine, failed: list[int],
                                                                             order: Order) -> None:
    page = get(Console(engine, authorize=lambda request: "ops"), "/timeline", model="Order", key=str(order.id))[1]
    assert page.count(f"preview: Order {order.id} paid") == 2
    assert f"Hello Bea, order {order.id} is paid." in page


def test_a_timeline_shows_no_message_body_to_whoever_is_not_authorised(engine: Engine, failed: list[int],
                                                                       order: Order) -> None:
    console = Console(engine, authorize=lambda request: None)
    page = get(console, "/timeline", model="Order", key=str(order.id))[1]
    assert "Hello Bea" not in page and "shown to authorised operators only" in page
    assert get(console, "/preview", delivery=str(failed[0]))[0] == 403


def test_the_preview_page_renders_one_deliverys_message(engine: Engine, failed: list[int], order: Order) -> None:
    status, page = get(Console(engine, authorize=lambda request: "ops"), "/preview", delivery=str(failed[0]))
    assert status == 200 and f"Order {order.id} paid" in page


def test_the_graph_draws_each_workflow_with_who_is_told(engine: Engine) -> None:
    page = get(Console(engine), "/graph")[1]
    assert '<h2 id="model-Order">Order (initial: new)</h2>' in page and 'class="diagram"' in page
    assert "<tr><td>new</td><td>paid</td><td>pay</td><td>buyer (email); seller (email)</td></tr>" in page
    assert "<title>pay / buyer (email); seller (email)</title>" in page


def test_an_unknown_page_is_404_and_a_post_to_a_page_is_405(engine: Engine) -> None:
    console = Console(engine)
    assert get(console, "/nothing")[0] == 404
    assert console.answer(Request("POST", "/deliveries")).status == 405
    assert console.answer(Request("GET", "/resend")).status == 405


def test_every_page_forbids_framing_and_caching(engine: Engine) -> None:
    headers = dict(Console(engine).answer(Request("GET", "/")).all_headers())
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_the_links_of_a_mounted_console_start_with_its_prefix(engine: Engine) -> None:
    page = Console(engine).answer(Request("GET", "/", root="/ops/console")).body.decode()
    assert 'href="/ops/console/deliveries"' in page and 'href="/deliveries"' not in page


def test_a_time_window_selects_exactly_the_deliveries_written_in_it_across_gaps_in_the_ids(
        broker: StubBroker, engine: Engine, session: Session) -> None:
    from datetime import datetime, timedelta, timezone

    for n in range(6):
        order = Order(buyer=Person(name=f"B{n}", email=f"b{n}@example.com"),
                      seller=Person(name=f"S{n}", email=f"s{n}@example.com"))
        session.add(order)
        session.commit()
        order.pay()
        session.commit()
    drain()
    ids = sorted(session.scalars(select(Delivery.id)))
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    for n, delivery_id in enumerate(ids):  # one a day, in id order; then a gap in the ids
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(created_at=start + timedelta(days=n)))
    session.execute(Delivery.__table__.delete().where(Delivery.id.in_(ids[4:7])))
    session.commit()
    page = get(Console(engine), "/deliveries", since="2026-11-03T00:00", until="2026-11-10T00:00")[1]
    assert sorted(_ids(page)) == [ids[2], ids[3], ids[7], ids[8]]
