"""The issue tracker, tested as its users would: with the ``tidings`` fixture Tidings installs."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode
from wsgiref.util import setup_testing_defaults

import pytest
import workflow
from jobs.console import Console
from jobs.testing import Kit
from notifiers import Email, InAppChannel, Inbox, Recipient, UnsubscribeEndpoint, make_token, opt_out, preferences_of
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from examples.issues.models import Base, Issue, User
from examples.issues.notifications import IssueNotifier  # noqa: F401 - registers the notifier
from examples.issues.web import WSGIApp, inbox_app


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back after the test."""
    engine = create_engine(f"sqlite:///{tmp_path / 'issues.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with engine.connect() as connection:
        outer = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        outer.rollback()
    engine.dispose()


@dataclass
class Cast:
    """The people of the tests: Ann filed the issue, Bob fixes things, the rest watch it."""

    ann: User
    bob: User
    cleo: User
    dieter: User
    eve: User


@pytest.fixture(autouse=True)
def daytime() -> None:
    """Every test starts at noon UTC, outside the watchers' quiet hours (the kit puts the clock back after)."""
    now = workflow.utcnow()
    workflow.clock.advance((now.replace(hour=12, minute=0, second=0, microsecond=0) - now) % dt.timedelta(days=1))


@pytest.fixture
def cast(session: Session) -> Cast:
    """Five people; Dieter reads German."""
    cast = Cast(ann=User(name="Ann", email="ann@example.com"), bob=User(name="Bob", email="bob@example.com"),
                cleo=User(name="Cleo", email="cleo@example.com"),
                dieter=User(name="Dieter", email="dieter@example.com", locale="de"),
                eve=User(name="Eve", email="eve@example.com"))
    session.add_all(vars(cast).values())
    session.commit()
    return cast


@pytest.fixture
def issue(session: Session, cast: Cast) -> Issue:
    """Ann's issue, watched by Cleo, Dieter and Eve, assigned to nobody yet."""
    issue = Issue(title="Printing crashes on A5 paper", author=cast.ann, watchers=[cast.cleo, cast.dieter, cast.eve])
    session.add(issue)
    session.commit()
    issue.file(actor=cast.ann)
    session.commit()
    return issue


def received(tidings: Kit, user: User) -> list[tuple[str, str]]:
    """What ``user`` was sent, as sorted (trigger, channel) pairs."""
    return sorted((n.trigger, n.channel) for n in tidings.notifications(user.email))


def test_three_hundred_watchers_each_get_what_their_preferences_and_locale_say(
        session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    # Given 300 watchers: Cleo opted out of email, Eve of everything, Dieter reads German
    issue.watchers.extend(User(name=f"Watcher {n}", email=f"watcher{n}@example.com") for n in range(297))
    opt_out(session, cast.cleo, channel="email")
    opt_out(session, cast.eve)
    session.commit()

    # When Ann updates her issue (ordinary mail), then flags it as a security issue (required mail)
    issue.update(actor=cast.ann, summary="Added the steps to reproduce")
    session.commit()
    issue.flag_security(actor=cast.ann, disclose_on="2026-12-15")
    session.commit()
    tidings.advance(hours=1)  # the watchers' update comes in their hourly digest

    # Then each watcher receives exactly what their choices allow, on each channel
    everything = [("flag_security", "email"), ("flag_security", "inapp"), ("update", "email"), ("update", "inapp")]
    assert received(tidings, cast.cleo) == [("flag_security", "email"), ("flag_security", "inapp"),
                                            ("update", "inapp")]
    assert received(tidings, cast.eve) == [("flag_security", "email"), ("flag_security", "inapp")]
    assert received(tidings, cast.dieter) == everything
    assert received(tidings, cast.ann) == []  # she made both changes
    others = [watcher for watcher in issue.watchers if watcher not in (cast.cleo, cast.dieter, cast.eve)]
    assert len(others) == 297 and all(received(tidings, watcher) == everything for watcher in others)
    tidings.assert_sent_count(300 * 2 * 2 - 1 - 2)  # 300 watchers, 2 channels, 2 changes; Cleo's and Eve's skips

    # ... and Dieter reads German: subject, text and dates
    [update] = tidings.notifications(cast.dieter.email, trigger="update", channel="email")
    assert update.subject == f"[#{issue.id}] Printing crashes on A5 paper: geändert von Ann"
    assert "Was sich geändert hat: Added the steps to reproduce" in update.text
    [flagged] = tidings.notifications(cast.dieter.email, trigger="flag_security", channel="inapp")
    assert flagged.subject == f"[#{issue.id}] Sicherheitslücke: Details unter Sperrfrist"
    assert "bis zum 15.12.2026 nicht öffentlich" in flagged.text
    [english] = tidings.notifications(cast.cleo.email, trigger="flag_security", channel="email")
    assert "hidden from the public until Dec 15, 2026" in english.text

    # ... and what was held back is recorded as skipped, with the reason
    assert [(s.trigger, s.channel, s.reason) for s in tidings.skipped(cast.cleo.email)] == [
        ("update", "email", "Opted out of email.")]
    assert [(s.trigger, s.channel, s.reason) for s in tidings.skipped(cast.eve.email)] == [
        ("update", "email", "Opted out of all notifications."), ("update", "inapp", "Opted out of all notifications.")]
    assert tidings.skipped(cast.dieter.email) == []
    tidings.assert_skipped(cast.ann.email, reason="The notifier returned None for this recipient.", count=4)


def test_an_update_tells_the_author_and_every_watcher_by_email_and_in_app(
        session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    issue.update(actor=cast.bob, summary="Narrowed it down to the A5 tray")
    session.commit()
    assert received(tidings, cast.ann) == [("update", "email"), ("update", "inapp")]  # the author at once
    assert received(tidings, cast.cleo) == []  # the watchers in the hour's digest
    tidings.advance(hours=1)
    for user in (cast.ann, cast.cleo, cast.dieter, cast.eve):
        assert received(tidings, user) == [("update", "email"), ("update", "inapp")]
    tidings.assert_notified(cast.ann.email, party="author", subject="updated by Bob",
                            body="You receive this because you filed the issue.", count=2)
    tidings.assert_notified(cast.cleo.email, party="watchers", body="because you watch the issue", count=2)
    tidings.assert_sent_count(8)


def test_nobody_is_told_of_their_own_change(session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    issue.update(actor=cast.cleo, summary="Same on A6")
    session.commit()
    tidings.advance(hours=1)
    assert received(tidings, cast.cleo) == []
    tidings.assert_skipped(cast.cleo.email, reason="returned None", count=2)
    tidings.assert_sent_count(6)


def test_assigning_tells_the_assignee_it_is_theirs_and_the_others_who_has_it(
        session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    issue.assign(actor=cast.ann, assignee_id=cast.bob.id)
    session.commit()
    assert issue.assignee is cast.bob
    [mine] = tidings.notifications(cast.bob.email, channel="email")
    assert (mine.party, mine.subject) == ("assignee", f"[#{issue.id}] Assigned to you: Printing crashes on A5 paper")
    assert "Ann assigned issue" in mine.text and "to you." in mine.text
    tidings.assert_notified(cast.cleo.email, channel="email", subject="assigned to Bob", count=1)
    tidings.assert_notified(cast.dieter.email, channel="email", subject="Bob zugewiesen", count=1)


def test_assigning_to_an_unknown_user_is_refused_and_tells_nobody(
        session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    with pytest.raises(ValueError, match="cannot be assigned to user 999: no such user"):
        issue.assign(actor=cast.ann, assignee_id=999)
    session.commit()
    assert issue.assignee is None
    tidings.assert_nothing_sent()


def test_closing_gives_the_date_and_time_spent_in_each_readers_language(
        session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    record = issue.close(actor=cast.bob, resolution="fixed", hours_spent=3.5)
    session.commit()
    day = record.created_at
    [english] = tidings.notifications(cast.cleo.email, channel="email")
    assert f"on {day:%b} {day.day}, {day.year} as fixed." in english.text
    assert "Time spent: 3.5 hours." in english.text
    [german] = tidings.notifications(cast.dieter.email, channel="email")
    assert german.subject == f"[#{issue.id}] Geschlossen: Printing crashes on A5 paper"
    assert f"am {day:%d.%m.%Y} geschlossen (behoben)." in german.text
    assert "Aufgewendete Zeit: 3,5 Stunden." in german.text


def test_someone_in_several_parties_is_told_once(session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    issue.watchers.append(cast.ann)  # the author watches her own issue
    session.commit()
    issue.update(actor=cast.bob)
    session.commit()
    [email] = tidings.notifications(cast.ann.email, channel="email")
    assert email.party == "author"


def test_an_issue_is_flagged_as_a_security_issue_once(session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    issue.flag_security(actor=cast.bob)
    session.commit()
    tidings.clear()
    with pytest.raises(workflow.ConditionFailed, match="unless is_security"):
        issue.flag_security(actor=cast.bob)
    session.rollback()
    tidings.assert_nothing_sent()


def test_a_closed_issue_can_be_reopened_and_everyone_hears_why(
        session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    issue.close(actor=cast.bob, resolution="fixed")
    session.commit()
    tidings.clear()
    issue.reopen(actor=cast.ann, reason="Still crashes on A5 landscape")
    session.commit()
    tidings.assert_notified(cast.eve.email, channel="inapp", subject="Reopened", body="Why: Still crashes", count=1)
    tidings.assert_notified(cast.dieter.email, channel="email", subject="Wieder geöffnet", count=1)


def test_a_rolled_back_assignment_tells_nobody(session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    issue.assign(actor=cast.ann, assignee_id=cast.bob.id)
    session.rollback()
    tidings.assert_nothing_sent()


# --- The inbox page (web.py), called as a WSGI application ----------------------------------------


def call(app: WSGIApp, method: str, path: str, form: dict[str, list[str]] | None = None,
         query: str = "") -> tuple[str, dict[str, str], str]:
    """One request to ``app``: its status, headers and page."""
    body = urlencode(form or {}, doseq=True).encode()
    environ: dict[str, object] = {}
    setup_testing_defaults(environ)
    environ.update({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
                    "CONTENT_TYPE": "application/x-www-form-urlencoded", "wsgi.input": io.BytesIO(body)})
    answer: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(headers))

    page = b"".join(app(environ, start_response)).decode()
    return str(answer["status"]), dict(answer["headers"]), page  # type: ignore[call-overload]


@pytest.fixture
def inbox_page(session: Session, cast: Cast) -> WSGIApp:
    """The inbox web app on the test's connection, with three items in Dieter's inbox and one in Cleo's."""
    channel = InAppChannel(session.connection())  # what the worker's in-app channel does for each delivery
    dieter = Recipient(cast.dieter.email, ref=f"User:{cast.dieter.id}")
    cleo = Recipient(cast.cleo.email, ref=f"User:{cast.cleo.id}")
    for n, subject in enumerate(["Geändert", "Zugewiesen", "<Geschlossen>"]):
        channel.send(Email(subject=subject, text=f"Text {n}"), dieter, key=f"dieter-{n}")
    channel.send(Email(subject="Updated", text="Cleo's"), cleo, key="cleo-0")
    session.commit()
    return inbox_app(session.connection())


def test_the_inbox_page_shows_the_unread_count_and_the_newest_items_first(inbox_page: WSGIApp, cast: Cast) -> None:
    status, headers, page = call(inbox_page, "GET", f"/users/{cast.dieter.id}/inbox")
    assert (status, headers["Content-Type"]) == ("200 OK", "text/html; charset=utf-8")
    assert "<span id=unread>3</span> unread" in page
    assert page.index("&lt;Geschlossen&gt;") < page.index("Zugewiesen") < page.index("Geändert")
    assert "Cleo's" not in page


def test_marking_ticked_items_read_redirects_back_and_lowers_the_count(
        inbox_page: WSGIApp, session: Session, cast: Cast) -> None:
    first = Inbox(session, cast.dieter).items()[-1]
    status, headers, _ = call(inbox_page, "POST", f"/users/{cast.dieter.id}/inbox/read", {"item": [str(first.id)]})
    assert (status, headers["Location"]) == ("303 See Other", f"/users/{cast.dieter.id}/inbox")
    assert "<span id=unread>2</span> unread" in call(inbox_page, "GET", headers["Location"])[2]
    call(inbox_page, "POST", f"/users/{cast.dieter.id}/inbox/read", {"all": ["1"]})
    assert Inbox(session, cast.dieter).unread_count() == 0


def test_nobody_can_mark_another_users_items_read(inbox_page: WSGIApp, session: Session, cast: Cast) -> None:
    [cleos] = Inbox(session, cast.cleo).items()
    call(inbox_page, "POST", f"/users/{cast.dieter.id}/inbox/read", {"item": [str(cleos.id)]})
    assert Inbox(session, cast.cleo).unread_count() == 1


def test_the_page_answers_the_mails_one_click_unsubscribe_links(session: Session, cast: Cast) -> None:
    secret = b"issues-unsubscribe-secret"
    app = inbox_app(session.connection(), unsubscribe=UnsubscribeEndpoint(session.connection(), secret))
    watching = "examples.issues.notifications.IssueNotifier.updated_for_watchers"
    token = make_token(secret, f"User:{cast.cleo.id}", watching, "email",
                       expires=workflow.utcnow() + dt.timedelta(days=1))
    assert call(app, "GET", "/unsubscribe", query=f"token={quote(token)}")[0] == "200 OK"  # the form, no change
    assert preferences_of(session, cast.cleo) == []
    status, _, page = call(app, "POST", "/unsubscribe", {"List-Unsubscribe": ["One-Click"]}, f"token={quote(token)}")
    assert (status, "Unsubscribed" in page) == ("200 OK", True)
    assert [(p.notifier, p.channel, p.enabled) for p in preferences_of(session, cast.cleo)] == [
        (watching, "email", False)]
    assert call(app, "POST", "/unsubscribe", query="token=forged")[0] == "400 Bad Request"


def test_an_unknown_user_or_method_is_refused(inbox_page: WSGIApp, cast: Cast) -> None:
    assert call(inbox_page, "GET", "/users/999/inbox")[0] == "404 Not Found"
    assert call(inbox_page, "POST", f"/users/{cast.dieter.id}/inbox")[0] == "405 Method Not Allowed"


def test_an_update_at_night_reaches_the_watchers_in_the_morning(session: Session, cast: Cast, issue: Issue,
                                                               tidings: Kit) -> None:
    workflow.clock.advance(dt.timedelta(hours=11))  # 23:00 UTC
    issue.update(actor=cast.bob)
    session.commit()
    assert [n.to for n in tidings.notifications(channel="email")] == [cast.ann.email]  # the author, at once
    digests = tidings.digests(status="open")  # the watchers': the hour's window closes at midnight, in their night
    assert {d.to for d in digests} == {cast.cleo.email, cast.dieter.email, cast.eve.email}
    assert {(d.due_at.hour, d.due_at.minute) for d in digests} == {(8, 0)}
    assert tidings.advance(hours=8, minutes=59) == []
    assert len(tidings.advance(minutes=1)) == 6  # 08:00: each watcher, by email and in the app


def file_issue(session: Session, cast: Cast) -> Issue:
    """An issue Ann files now (the ``issue`` fixture's was filed before the test's kit started)."""
    issue = Issue(title="Scanning stops at page 2", author=cast.ann, watchers=[cast.cleo])
    session.add(issue)
    session.commit()
    issue.file(actor=cast.ann)
    session.commit()
    return issue


def test_a_new_issue_nobody_takes_is_escalated_to_the_lead_after_two_days(session: Session, cast: Cast,
                                                                          tidings: Kit) -> None:
    issue = file_issue(session, cast)
    tidings.run()
    assert [n for n in tidings.advance(days=1, hours=23) if n.to == "lead@example.com"] == []
    [escalation] = [n for n in tidings.advance(hours=1) if n.to == "lead@example.com"]
    assert (escalation.trigger, escalation.subject) == ("file", f"Nobody has taken issue #{issue.id} for two days")


def test_a_new_issue_assigned_in_time_is_not_escalated(session: Session, cast: Cast, tidings: Kit) -> None:
    issue = file_issue(session, cast)
    issue.assign(actor=cast.ann, assignee_id=cast.bob.id)
    session.commit()
    tidings.run()
    assert [n for n in tidings.advance(days=3) if n.to == "lead@example.com"] == []
    tidings.assert_skipped("lead@example.com", trigger="file", reason="superseded by assign at ", count=1)


def test_a_reopened_issue_nobody_takes_is_escalated_to_the_lead_after_two_days(
        session: Session, cast: Cast, issue: Issue, tidings: Kit) -> None:
    issue.close(actor=cast.bob)
    session.commit()
    issue.reopen(actor=cast.ann)
    session.commit()
    tidings.run()
    [escalation] = tidings.advance(days=2)
    assert (escalation.to, escalation.subject) == ("lead@example.com", f"Nobody has taken issue #{issue.id} for two days")


def test_a_reopened_issue_assigned_in_time_is_not_escalated(session: Session, cast: Cast, issue: Issue,
                                                            tidings: Kit) -> None:
    issue.close(actor=cast.bob)
    session.commit()
    issue.reopen(actor=cast.ann)
    session.commit()
    issue.assign(actor=cast.ann, assignee_id=cast.bob.id)
    session.commit()
    tidings.run()
    assert [n for n in tidings.advance(days=3) if n.to == "lead@example.com"] == []
    tidings.assert_skipped("lead@example.com", trigger="reopen", reason="superseded by assign at ", count=1)


def test_the_page_mounts_the_operators_console_at_console(session: Session, cast: Cast) -> None:
    app = inbox_app(session.connection(), console=Console(session.connection()))
    for path in ("/console/", "/console/deliveries", "/console/failures", "/console/timeline", "/console/graph",
                 "/console/actions"):
        status, _, page = call(app, "GET", path)
        assert status == "200 OK" and 'href="/console/failures"' in page, path
    assert "<h1>Inboxes</h1>" in call(app, "GET", "/")[2]  # the application's own pages are still its own


def test_a_form_posted_to_the_mounted_console_reaches_its_action(session: Session, cast: Cast) -> None:
    app = inbox_app(session.connection(), console=Console(session.connection()))
    status, _, page = call(app, "POST", "/console/resend", {"delivery": ["1"]})
    assert status == "403 Forbidden" and "Actions are disabled" in page
