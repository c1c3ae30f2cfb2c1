"""The issue tracker on the embedded default: SQLite, the StubBroker, .eml files and the in-app inbox.

Run it with ``make demo-issues`` (or ``python -m examples.issues.demo``). Ann's issue has 300
watchers; Cleo opted out of email, Eve out of everything, Dieter reads German. Each change is
committed on its own, as request handlers would, and the in-process worker delivers it; the
watchers get the hour's updates in a digest, sent once the clock is moved an hour on. Then
it prints what each named person found in their mailbox and in their in-app inbox, what the
other watchers got, how many deliveries went at once and how many in digests, and which
deliveries were skipped and why.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import sqlite3
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jobs
import workflow
from jobs.testing import drain, stop_workers
from notifiers import Inbox, opt_out
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session

from .models import Base, Issue, User
from .notifications import IssueNotifier  # noqa: F401 - importing registers the notifier

WATCHERS = 300


@dataclass(frozen=True)
class Story:
    """What :func:`tell` leaves behind: the database, the mail folder, and who is who."""

    engine: Engine
    mail: Path
    named: list[int]
    issue_id: int


def tell(folder: Path, say: Callable[[str], object] = print) -> Story:
    """Create the tracker in ``folder``, make each change to Ann's issue, and deliver everything."""
    engine = create_engine(f"sqlite:///{folder / 'issues.db'}")
    event.listen(engine, "connect", write_ahead)
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    mail = folder / "mail"
    jobs.configure(broker_url="stub", email_channel="files", mail_dir=str(mail), engine=engine,
                   sender="Tracker <issues@tracker.example>")  # the in-app channel writes to the same engine

    with Session(engine, expire_on_commit=False) as session:
        ann, bob = User(name="Ann", email="ann@example.com"), User(name="Bob", email="bob@example.com")
        cleo, eve = User(name="Cleo", email="cleo@example.com"), User(name="Eve", email="eve@example.com")
        dieter = User(name="Dieter", email="dieter@example.com", locale="de")
        crowd = [User(name=f"Watcher {n:03}", email=f"watcher{n:03}@example.com") for n in range(WATCHERS - 3)]
        issue = Issue(title="Printing crashes on A5 paper", author=ann, watchers=[cleo, dieter, eve, *crowd])
        session.add_all([ann, bob, issue])
        session.flush()
        opt_out(session, cleo, channel="email")
        opt_out(session, eve)
        session.commit()
        issue.file(actor=ann)
        session.commit()
        say(f"Ann filed issue #{issue.id}, watched by {len(issue.watchers)} people; Cleo opted out of email, "
            f"Eve out of everything, Dieter reads German.")

        steps: list[tuple[User, str, dict[str, Any]]] = [
            (ann, "update", {"summary": "Added the steps to reproduce"}),
            (ann, "update", {"summary": "Same on A6 paper"}),
            (ann, "update", {"summary": "Attached the printer's log"}),
            (ann, "assign", {"assignee_id": bob.id}),
            (bob, "flag_security", {"disclose_on": "2026-12-15"}),
            (bob, "close", {"resolution": "fixed", "hours_spent": 3.5}),
        ]
        for actor, trigger, context in steps:
            issue.fire(trigger, actor=actor, **context)
            session.commit()  # the fan-out message is enqueued only now
            say(f"{actor.name} fired {trigger!r}: issue #{issue.id} is now {issue.state!r}")
            drain(timeout=60)
        workflow.clock.advance(dt.timedelta(hours=1))  # the hour ends: its digests go out to the watchers
        for task in jobs.due_work:
            task.run()
        drain(timeout=60)
        say("An hour later, the watchers' digests of the hour's updates went out.")
        story = Story(engine, mail, [user.id for user in (ann, bob, cleo, dieter, eve)], issue.id)
        try:
            issue.flag_security(actor=bob)
        except workflow.InvalidTransition as error:
            session.rollback()
            say(f"Refused, nothing recorded or sent: {error}")
    stop_workers()
    return story


def write_ahead(connection: sqlite3.Connection, record: object) -> None:
    """SQLite in WAL mode: the worker threads' many small commits skip the fsync of each one."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


def main(folder: Path) -> int:
    """Tell the story, then print each person's mailbox and inbox, the other watchers, and the skips."""
    story = tell(folder)
    mailboxes = read_mail(story.mail)
    with Session(story.engine) as session:
        for user_id in story.named:
            user = session.get(User, user_id)
            assert user is not None
            show_person(session, user, mailboxes.get(user.email, []))
        show_crowd(session, story, mailboxes)
        show_digests(session)
        show_skips(session)
    return 0


def read_mail(mail: Path) -> dict[str, list[email.message.EmailMessage]]:
    """Every .eml file in ``mail``, by recipient address, oldest first."""
    boxes: dict[str, list[email.message.EmailMessage]] = defaultdict(list)
    for path in sorted(mail.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        boxes[message["To"].addresses[0].addr_spec].append(message)
    return boxes


def show_person(session: Session, user: User, mailbox: list[email.message.EmailMessage]) -> None:
    """Print one person's mail (bodies in full) and the items of their in-app inbox."""
    inbox = Inbox(session, user)
    print(f"\n=== {user.name} <{user.email}>{f' (locale {user.locale})' if user.locale else ''}: "
          f"{len(mailbox)} email(s), {inbox.unread_count()} unread in-app item(s)")
    for message in mailbox:
        body = message.get_body(preferencelist=("plain",))
        print(f"--- Email: {message['Subject']}")
        for line in (body.get_content().strip() if body else "").splitlines():
            print(f"    | {line}")
    for item in reversed(inbox.items()):
        print(f"--- In app: {item.subject}")


def show_crowd(session: Session, story: Story, mailboxes: dict[str, list[email.message.EmailMessage]]) -> None:
    """Print what the watchers who are not named got, in one line."""
    issue = session.get(Issue, story.issue_id)
    assert issue is not None
    crowd = [user for user in issue.watchers if user.id not in story.named]
    emails = Counter(len(mailboxes.get(user.email, [])) for user in crowd)
    inapp = Counter(Inbox(session, user).unread_count() for user in crowd)
    print(f"\n=== The other {len(crowd)} watchers: emails per watcher {dict(emails)}, "
          f"in-app items per watcher {dict(inapp)}")


def show_digests(session: Session) -> None:
    """Print how many deliveries were sent alone, at once, and how many inside digests (and how many digests)."""
    sent = jobs.Delivery.status == jobs.Status.SENT
    alone = session.scalar(select(func.count()).where(sent, jobs.Delivery.digest_id.is_(None)))
    inside = session.scalar(select(func.count()).where(sent, jobs.Delivery.digest_id.is_not(None)))
    digests = session.scalar(select(func.count()).where(jobs.DigestRow.status == jobs.DigestStatus.SENT))
    print(f"\n=== Instant vs digest: {alone} deliveries sent at once, {inside} told in {digests} digests")


def show_skips(session: Session) -> None:
    """Print the deliveries recorded as skipped, with their reasons."""
    skipped = session.scalars(select(jobs.Delivery).where(jobs.Delivery.status == jobs.Status.SKIPPED)
                              .order_by(jobs.Delivery.id)).all()
    print(f"\n=== Skipped deliveries: {len(skipped)}")
    for delivery in skipped:
        print(f"    {delivery.name} <{delivery.address}> by {delivery.channel}, "
              f"{delivery.notifier.rpartition('.')[2]}: {delivery.last_error}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="tidings-issues-") as tmp:
        sys.exit(main(Path(tmp)))
