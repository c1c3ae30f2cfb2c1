"""One-click unsubscribe (RFC 8058): the headers composed mails carry, and the signed, expiring tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import jobs
import pytest
import workflow
from dramatiq.brokers.stub import StubBroker
from hypothesis import given, settings
from hypothesis import strategies as st
from jobs.testing import drain
from notifiers import Email, MemoryChannel, UnsubscribeError, UnsubscribeLinks, make_token, read_token
from notifiers.unsubscribe_links import links_in_use, with_link
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.app import Account, Order, Person

BASE = "https://shop.example.com/unsubscribe"
SECRET = b"unsubscribe-secret-7c1e"
PAID = "tests.app.OrderNotifier.paid"


@pytest.fixture
def links(broker: StubBroker, engine: Engine, mailbox: MemoryChannel) -> Iterator[None]:
    """The workers compose messages with unsubscribe links (none again after the test)."""
    settings = jobs.configure(broker=broker, engine=engine, channels={"email": mailbox}, unsubscribe_url=BASE,
                              unsubscribe_secret=SECRET.decode())
    yield
    jobs.configure(settings.replace(unsubscribe_url=None, unsubscribe_secret=None), broker=broker, engine=engine,
                   channels={"email": mailbox})


@pytest.fixture
def clock() -> Iterator[None]:
    """The clock put back after the test moves it."""
    yield
    workflow.clock.reset()


def token_of(header: str) -> str:
    """The token in a ``List-Unsubscribe: <url>`` value."""
    return parse_qs(urlsplit(header.strip("<>")).query)["token"][0]


def test_a_mail_that_is_not_required_carries_both_one_click_headers(links: None, order: Order, session: Session,
                                                                     mailbox: MemoryChannel) -> None:
    order.pay(actor="bea")
    session.commit()
    drain()
    for sent in mailbox.outbox:
        headers = sent.message.headers
        assert headers["List-Unsubscribe"].startswith(f"<{BASE}?token=") and headers["List-Unsubscribe"][-1] == ">"
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_token_names_the_recipient_the_notifier_and_the_channel(links: None, order: Order, session: Session,
                                                                    mailbox: MemoryChannel) -> None:
    order.pay(actor="bea")
    session.commit()
    drain()
    asked = {read_token(SECRET, token_of(sent.message.headers["List-Unsubscribe"])) for sent in mailbox.outbox}
    assert {(a.recipient, a.notifier, a.channel) for a in asked} == {
        (f"Person:{order.buyer.id}", PAID, "email"), (f"Person:{order.seller.id}", PAID, "email")}


def test_a_required_mail_carries_no_unsubscribe_link(links: None, session: Session, mailbox: MemoryChannel) -> None:
    account = Account(owner=Person(name="Ann", email="ann@example.com"))
    session.add(account)
    session.commit()
    account.lock(actor="security")
    session.commit()
    drain()
    (sent,) = mailbox.outbox
    assert "List-Unsubscribe" not in sent.message.headers


def test_without_the_unsubscribe_url_setting_no_mail_carries_the_headers(broker: StubBroker, order: Order,
                                                                         session: Session,
                                                                         mailbox: MemoryChannel) -> None:
    order.pay(actor="bea")
    session.commit()
    drain()
    assert mailbox.outbox and all("List-Unsubscribe" not in s.message.headers for s in mailbox.outbox)


def test_a_template_reads_the_link_as_unsubscribe_url(links: None, order: Order, session: Session,
                                                      mailbox: MemoryChannel) -> None:
    order.pay(actor="bea")
    session.commit()
    order.ship(actor="sam", template="footer")
    session.commit()
    drain()
    (shipped,) = [s.message for s in mailbox.outbox if "shipped" in s.message.subject]
    assert f"Unsubscribe: {shipped.headers['List-Unsubscribe'].strip('<>')}" in shipped.text


def test_without_links_a_template_reads_unsubscribe_url_as_none(broker: StubBroker, order: Order, session: Session,
                                                                mailbox: MemoryChannel) -> None:
    order.pay(actor="bea")
    session.commit()
    order.ship(actor="sam", template="footer")
    session.commit()
    drain()
    (shipped,) = [s.message for s in mailbox.outbox if "shipped" in s.message.subject]
    assert "No unsubscribe link." in shipped.text


# --- Tokens ---------------------------------------------------------------------------------------


def a_token(days: int = 60) -> str:
    return make_token(SECRET, "Person:1", PAID, "email", expires=workflow.utcnow() + dt.timedelta(days=days))


def test_a_token_reads_back_what_it_names() -> None:
    asked = read_token(SECRET, a_token())
    assert (asked.recipient, asked.notifier, asked.channel) == ("Person:1", PAID, "email")


def test_a_token_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(UnsubscribeError, match="not valid"):
        read_token(b"another secret", a_token())


def test_an_expired_token_is_refused_naming_the_day(clock: None) -> None:
    token = a_token(days=60)
    workflow.clock.advance(dt.timedelta(days=61))
    with pytest.raises(UnsubscribeError, match="expired on 20"):
        read_token(SECRET, token)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_token_changed_anywhere_is_refused(data: st.DataObject) -> None:
    token = a_token()
    at = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters(min_codepoint=32, max_codepoint=0x2FF).filter(lambda c: c != token[at]))
    with pytest.raises(UnsubscribeError):
        read_token(SECRET, token[:at] + replacement + token[at + 1:])


@settings(max_examples=300, deadline=None)
@given(token=st.text(max_size=200))
def test_any_made_up_token_is_refused(token: str) -> None:
    with pytest.raises(UnsubscribeError):
        read_token(SECRET, token)


def test_links_must_be_https() -> None:
    with pytest.raises(jobs.ConfigurationError, match="unsubscribe_url.*not an https:// URL"):
        jobs.Settings(unsubscribe_url="http://shop.example.com/unsubscribe", unsubscribe_secret="s")


def test_links_need_a_secret() -> None:
    with pytest.raises(jobs.ConfigurationError, match="unsubscribe_secret.*need a secret"):
        jobs.Settings(unsubscribe_url=BASE)


def test_the_secret_is_not_in_the_repr_of_links_or_settings() -> None:
    assert "s3cr3t" not in repr(UnsubscribeLinks(BASE, b"s3cr3t"))
    assert "s3cr3t" not in repr(jobs.Settings(unsubscribe_url=BASE, unsubscribe_secret="s3cr3t"))


def test_an_email_with_its_own_list_unsubscribe_keeps_it() -> None:
    own = Email(subject="Hi", text="body", headers={"List-Unsubscribe": "<mailto:leave@example.com>"})
    linked = with_link(own, f"{BASE}?token=abc")
    assert isinstance(linked, Email)
    assert linked.headers["List-Unsubscribe"] == "<mailto:leave@example.com>"


def test_the_links_in_use_are_those_of_the_runtime_configured_last(broker: StubBroker, engine: Engine,
                                                                   mailbox: MemoryChannel) -> None:
    settings = jobs.configure(broker=broker, engine=engine, channels={"email": mailbox}, unsubscribe_url=BASE,
                              unsubscribe_secret="s")
    in_use = links_in_use()
    assert in_use is not None and in_use.base_url == BASE
    jobs.configure(settings.replace(unsubscribe_url=None, unsubscribe_secret=None), broker=broker, engine=engine,
                   channels={"email": mailbox})
    assert links_in_use() is None
