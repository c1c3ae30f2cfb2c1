"""The signup example, tested as its users would: with the ``tidings`` fixture Tidings installs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import workflow
from jobs.testing import Kit
from notifiers import opt_out
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from examples.signup.models import Base, User
from examples.signup.notifications import AccountNotifier  # noqa: F401 - registers the notifier


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back after the test."""
    engine = create_engine(f"sqlite:///{tmp_path / 'signup.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with engine.connect() as connection:
        outer = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        outer.rollback()
    engine.dispose()


@pytest.fixture
def admins(session: Session) -> list[User]:
    """Two active administrators, seeded as they are (no transition, so nobody is told); Greta reads German."""
    admins = [User(name="Ada", email="ada@example.com", is_admin=True, state="active"),
              User(name="Greta", email="greta@example.com", is_admin=True, state="active", locale="de")]
    session.add_all(admins)
    session.commit()
    return admins


def sign_up(session: Session, name: str, **fields: object) -> User:
    """A new user, who signs up: the request handler's work, committed."""
    user = User(name=name, email=f"{name.lower()}@example.com", **fields)
    session.add(user)
    user.sign_up(actor=user)
    session.commit()
    return user


def test_signing_up_asks_the_user_to_confirm_and_tells_every_administrator(
        session: Session, admins: list[User], tidings: Kit) -> None:
    sam = sign_up(session, "Sam")
    tidings.assert_notified("sam@example.com", party="user", subject="Confirm your address, Sam",
                            body=f"https://accounts.example/confirm/{sam.id}", count=1)
    for admin, channel in [(a, c) for a in admins for c in ("email", "inapp")]:
        tidings.assert_notified(admin.email, party="administrators", channel=channel, count=1)
    [german] = tidings.notifications("greta@example.com", channel="email")
    assert german.subject == "Neue Anmeldung: Sam <sam@example.com>"
    tidings.assert_sent_count(5)


def test_an_administrator_signing_up_is_not_told_about_themselves(
        session: Session, admins: list[User], tidings: Kit) -> None:
    sign_up(session, "Omar", is_admin=True)
    assert [(n.party, n.subject) for n in tidings.notifications("omar@example.com")] == [
        ("user", "Confirm your address, Omar")]
    tidings.assert_notified("ada@example.com", subject="New signup: Omar", body="as an administrator", count=2)
    tidings.assert_notified("greta@example.com", subject="Neue Anmeldung: Omar", body="als Administrator", count=2)


def test_creating_a_latent_user_tells_nobody(session: Session, admins: list[User], tidings: Kit) -> None:
    lee = User(name="Lee", email="lee@example.com")
    session.add(lee)
    lee.create_latent(actor="import:crm-2026-11")
    session.commit()
    assert lee.state == "latent"
    tidings.assert_nothing_sent()
    assert tidings.skipped() == []


def test_a_latent_user_who_claims_the_account_is_welcomed_and_administrators_are_not_told(
        session: Session, admins: list[User], tidings: Kit) -> None:
    lee = User(name="Lee", email="lee@example.com")
    session.add(lee)
    lee.create_latent()
    session.commit()
    lee.activate(actor=lee)
    session.commit()
    [email] = tidings.notifications("lee@example.com", channel="email")
    assert "created for you, and you have now claimed it" in email.text
    tidings.assert_sent_count(2)  # Lee's welcome, by email and in the app


def test_each_step_tells_the_user(session: Session, admins: list[User], tidings: Kit) -> None:
    sam = sign_up(session, "Sam")
    for trigger in ("activate", "reset_password", "close"):
        sam.fire(trigger, actor=sam)
        session.commit()
    assert [(n.trigger, n.channel, n.subject) for n in tidings.notifications("sam@example.com")] == [
        ("sign_up", "email", "Confirm your address, Sam"),
        ("activate", "email", "Welcome, Sam"),
        ("activate", "inapp", "Welcome, Sam"),
        ("reset_password", "email", "Reset your password"),
        ("close", "email", "Your account is closed"),
    ]
    tidings.assert_notified("sam@example.com", trigger="reset_password", body=f"/reset/{sam.reset_token}")


def test_a_password_reset_reaches_a_user_who_opted_out_of_email(
        session: Session, admins: list[User], tidings: Kit) -> None:
    sam = sign_up(session, "Sam")
    sam.activate(actor=sam)
    opt_out(session, sam, channel="email")
    session.commit()
    tidings.clear()
    sam.reset_password(actor=sam)
    sam.close(actor=sam)
    session.commit()
    tidings.assert_notified("sam@example.com", trigger="reset_password", channel="email", count=1)
    tidings.assert_notified("sam@example.com", trigger="close", count=0)
    [skip] = tidings.skipped("sam@example.com")
    assert (skip.trigger, skip.reason) == ("close", "Opted out of email.")


def test_a_german_user_reads_every_step_in_german_with_german_dates(
        session: Session, admins: list[User], tidings: Kit) -> None:
    jonas = sign_up(session, "Jonas", locale="de")
    jonas.activate(actor=jonas)
    jonas.reset_password(actor=jonas)
    record = jonas.close(actor=jonas)
    session.commit()
    assert [n.subject for n in tidings.notifications("jonas@example.com", channel="email")] == [
        "Bitte bestätigen Sie Ihre Adresse, Jonas", "Willkommen, Jonas", "Ihr Passwort zurücksetzen",
        "Ihr Konto ist geschlossen"]
    [closed] = tidings.notifications("jonas@example.com", trigger="close")
    deleted_on = (record.created_at + dt.timedelta(days=30)).date()
    assert f"bis zum {deleted_on.day}. {GERMAN_MONTHS[deleted_on.month - 1]} {deleted_on.year} auf" in closed.text


def test_a_rolled_back_signup_tells_nobody(session: Session, admins: list[User], tidings: Kit) -> None:
    sam = User(name="Sam", email="sam@example.com")
    session.add(sam)
    sam.sign_up(actor=sam)
    session.rollback()
    tidings.assert_nothing_sent()


GERMAN_MONTHS = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
                 "November", "Dezember"]


def test_a_user_with_only_a_phone_gets_the_password_reset_link_by_sms(
        session: Session, admins: list[User], tidings: Kit) -> None:
    lee = User(name="Lee", phone="+49 30 1234567", state="active")
    session.add(lee)
    session.commit()
    lee.reset_password(actor=lee)
    session.commit()
    [sms] = tidings.assert_notified("+49301234567", trigger="reset_password", channel="sms", count=1)
    assert f"https://accounts.example/reset/{lee.reset_token}" in sms.text and sms.subject == ""
    [skip] = tidings.skipped(trigger="reset_password")
    assert (skip.channel, skip.reason) == ("email", "Party 'user': Lee (+49301234567) has no email address for "
                                                     "channel 'email'.")



def test_a_user_who_has_not_confirmed_after_a_day_is_reminded(session: Session, admins: list[User],
                                                               tidings: Kit) -> None:
    sam = sign_up(session, "Sam")
    tidings.run()
    [reminder] = tidings.advance(days=1)
    assert (reminder.to, reminder.subject) == ("sam@example.com", "Your account is waiting, Sam")
    assert f"https://accounts.example/confirm/{sam.id}" in reminder.text


def test_a_user_who_confirmed_is_not_reminded(session: Session, admins: list[User], tidings: Kit) -> None:
    sam = sign_up(session, "Sam")
    sam.activate(actor=sam)
    session.commit()
    tidings.run()
    assert [n for n in tidings.advance(days=2) if n.to == "sam@example.com"] == []
    tidings.assert_skipped("sam@example.com", trigger="sign_up", reason="superseded by activate at ", count=1)


def test_a_signup_left_unconfirmed_for_30_days_closes_by_itself_and_tells_the_user(
        session: Session, admins: list[User], tidings: Kit) -> None:
    sam = sign_up(session, "Sam")
    tidings.clear()
    assert [n for n in tidings.advance(days=29) if n.trigger == "lapse"] == []  # the reminder went
    [lapsed] = tidings.advance(days=1)
    assert (lapsed.to, lapsed.trigger, lapsed.subject) == ("sam@example.com", "lapse", "Your account was closed")
    assert "Your address was not confirmed in 30 days, so we closed it." in lapsed.text
    session.refresh(sam)
    assert sam.state == "closed"


def test_a_latent_account_left_unclaimed_for_30_days_closes_by_itself(
        session: Session, admins: list[User], tidings: Kit) -> None:
    lee = User(name="Lee", email="lee@example.com")
    session.add(lee)
    lee.create_latent(actor="import:crm-2026-11")
    session.commit()
    [lapsed] = [n for n in tidings.advance(days=30) if n.trigger == "lapse"]
    assert "The account made for you was not claimed in 30 days" in lapsed.text
    session.refresh(lee)
    assert lee.state == "closed"


def test_an_account_activated_in_time_does_not_lapse(session: Session, admins: list[User], tidings: Kit) -> None:
    sam = sign_up(session, "Sam")
    sam.activate(actor=sam)
    session.commit()
    tidings.clear()
    assert [n for n in tidings.advance(days=31) if n.trigger == "lapse"] == []
    session.refresh(sam)
    assert sam.state == "active"
