"""Delivery status notifications (RFC 3464): hard bounces read and suppressed, soft ones not, any input survived."""

from __future__ import annotations

from email.message import EmailMessage

from hypothesis import given, settings, strategies as st
from notifiers import read_dsn, record_dsn, suppressed
from sqlalchemy.orm import Session

from tests.bounces import HARD, SOFT, dsn, group


def test_a_hard_bounce_is_read_with_its_status_and_the_servers_reply() -> None:
    [bounce] = read_dsn(dsn(HARD))
    assert (bounce.recipient, bounce.action, bounce.status, bounce.hard) == ("ann@example.com", "failed", "5.1.1", True)
    assert bounce.detail() == "5.1.1 550 5.1.1 <ann@example.com>: user unknown"


def test_a_soft_bounce_is_not_hard() -> None:
    assert [b.hard for b in read_dsn(dsn(SOFT))] == [False]


def test_recording_a_report_suppresses_only_the_hard_bounces(session: Session) -> None:
    recorded = record_dsn(session, dsn(HARD, SOFT))
    session.commit()
    assert [(s.address, s.reason) for s in recorded] == [("ann@example.com", "bounced")]
    assert [s.address for s in suppressed(session)] == ["ann@example.com"]


def test_a_failure_with_a_4xx_status_suppresses_nothing(session: Session) -> None:
    assert record_dsn(session, dsn(group("cy@example.com", "failed", "4.2.2", "452 mailbox full"))) == []


def test_a_mail_that_is_not_a_report_reports_nothing() -> None:
    message = EmailMessage()
    message["Subject"] = "Out of office"
    message.set_content("Final-Recipient: rfc822; ann@example.com\nAction: failed\nStatus: 5.1.1\n")
    assert read_dsn(message) == [] and read_dsn(message.as_string()) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_reading_arbitrary_bytes_never_raises(raw: bytes) -> None:
    assert isinstance(read_dsn(raw), list)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=60), st.text(max_size=20), st.text(max_size=12), st.text(max_size=80)),
                max_size=4))
def test_reading_a_report_with_arbitrary_fields_never_raises(groups: list[tuple[str, str, str, str]]) -> None:
    raw = dsn(*(group(*(part.replace("\n", " ").replace("\r", " ") for part in fields)) for fields in groups))
    assert all(b.recipient and "@" in b.recipient for b in read_dsn(raw))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_reading_a_mangled_report_never_raises(noise: str) -> None:
    raw = dsn(HARD).decode()
    cut = len(noise) % len(raw)
    assert isinstance(read_dsn(raw[:cut] + noise + raw[cut:]), list)
