"""Signup, activation, password reset and closing, on the embedded default: SQLite, the StubBroker,
.eml files and the in-app inbox.

Run it with ``make demo-signup`` (or ``python -m examples.signup.demo``). Two administrators,
Ada and Greta (who reads German), are told of each signup but their own; Sam signs up, is
activated, opts out of email, resets his password (sent anyway: it is required) and closes his
account; Jonas does it in German; Omar, an administrator, signs up; Lee is imported as a latent
account (nobody is told) and later claims it. Each step is committed on its own, as request
handlers would, and the in-process worker delivers it. Then it prints each person's mailbox
and in-app inbox, and the skipped deliveries with their reasons.
"""

from __future__ import annotations

import email
import email.policy
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import jobs
import workflow
from jobs.testing import drain, stop_workers
from notifiers import Inbox, opt_out
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from .models import Base, User
from .notifications import AccountNotifier  # noqa: F401 - importing registers the notifier


def main(folder: Path) -> int:
    """Tell the story in ``folder``, then print each person's mailbox and inbox, and the skips."""
    engine = create_engine(f"sqlite:///{folder / 'signup.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    mail = folder / "mail"
    jobs.configure(broker_url="stub", email_channel="files", mail_dir=str(mail), engine=engine,
                   sender="Accounts <accounts@accounts.example>")  # the in-app channel writes to the same engine

    with Session(engine) as session:
        # The administrators are seeded as they are: no transition, so nobody is told.
        session.add_all([User(name="Ada", email="ada@example.com", is_admin=True, state="active"),
                         User(name="Greta", email="greta@example.com", is_admin=True, state="active", locale="de")])
        sam = User(name="Sam", email="sam@example.com")
        jonas = User(name="Jonas", email="jonas@example.com", locale="de")
        omar = User(name="Omar", email="omar@example.com", is_admin=True)
        lee = User(name="Lee", email="lee@example.com")
        session.add_all([sam, jonas, omar, lee])
        session.commit()

        def step(user: User, trigger: str, actor: object) -> None:
            user.fire(trigger, actor=actor)
            session.commit()  # the fan-out message is enqueued only now
            print(f"{user.name}: {trigger!r} -> {user.state!r}")
            drain()

        step(lee, "create_latent", "import:crm-2026-11")
        for user in (sam, jonas, omar):
            step(user, "sign_up", user)
            step(user, "activate", user)
        opt_out(session, sam, channel="email")
        session.commit()
        print("Sam opted out of email.")
        for user in (sam, jonas):
            step(user, "reset_password", user)
            step(user, "close", user)
        step(lee, "activate", lee)
        try:
            sam.activate(actor=sam)
        except workflow.InvalidTransition as error:
            print(f"Refused, nothing recorded or sent: {error}")

    stop_workers()
    mailboxes = read_mail(mail)
    with Session(engine) as session:
        for user in session.scalars(select(User).order_by(User.id)):
            show_person(session, user, mailboxes.get(user.email, []))
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
    role = "administrator, " if user.is_admin else ""
    print(f"\n=== {user.name} <{user.email}> ({role}{user.state}{f', locale {user.locale}' if user.locale else ''}): "
          f"{len(mailbox)} email(s), {inbox.unread_count()} unread in-app item(s)")
    for message in mailbox:
        body = message.get_body(preferencelist=("plain",))
        print(f"--- Email: {message['Subject']}")
        for line in (body.get_content().strip() if body else "").splitlines():
            print(f"    | {line}")
    for item in reversed(inbox.items()):
        print(f"--- In app: {item.subject}")


def show_skips(session: Session) -> None:
    """Print the deliveries recorded as skipped, with their reasons."""
    skipped = session.scalars(select(jobs.Delivery).where(jobs.Delivery.status == jobs.Status.SKIPPED)
                              .order_by(jobs.Delivery.id)).all()
    print(f"\n=== Skipped deliveries: {len(skipped)}")
    for delivery in skipped:
        print(f"    {delivery.name} <{delivery.address}> by {delivery.channel}, "
              f"{delivery.notifier.rpartition('.')[2]}: {delivery.last_error}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="tidings-signup-") as tmp:
        sys.exit(main(Path(tmp)))
