"""Who hears about each change to an issue, through which channels, and what they read."""

from __future__ import annotations

import datetime as dt

from notifiers import Digest, Email, Event, Notifier, Recipient, on, remind
from sqlalchemy.orm import object_session
from workflow import actor_reference

from .models import Issue, User

#: Everyone involved in an issue; a person in several parties is told once, as the first one listed.
EVERYONE = ["assignee", "author", "watchers"]
#: An email, and an item in the in-app inbox (the bell in the tracker's header).
CHANNELS = ["email", "inapp"]


class IssueNotifier(Notifier):
    """Tells the author, the assignee and every watcher of an issue what changed, except whoever changed it."""

    templates = "templates"

    @on(Issue, "update", to=["assignee", "author"], channels=CHANNELS)
    def updated(self, event: Event, recipient: Recipient) -> Email | None:
        return tell(event, recipient, "issues/updated")

    # Watchers only follow along: they get the updates of each hour in one digest (the author and
    # the assignee above are told at once), and a digest closing in their night (22:00 to 08:00
    # in their time zone; they have none here: UTC) waits for the morning.
    @on(Issue, "update", to="watchers", channels=CHANNELS, quiet_hours=("22:00", "08:00"),
        digest=Digest(window=dt.timedelta(hours=1)))
    def updated_for_watchers(self, event: Event, recipient: Recipient) -> Email | None:
        issue = event.subject
        if recipient.ref in {actor_reference(issue.author), actor_reference(issue.assignee)}:
            return None  # told already, as the author or the assignee
        return tell(event, recipient, "issues/updated")

    # An issue filed or reopened that nobody takes on within two days goes to the project lead
    # (void once it is assigned, or closed).
    @remind(Issue, "open", after=dt.timedelta(days=2), to="lead", superseded_by=["assign"])
    def escalated(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Nobody has taken issue #{event.key} for two days",
                     text=f"{event.subject.title!r} was filed or reopened two days ago and is still unassigned.")

    @on(Issue, "assign", to=EVERYONE, channels=CHANNELS)
    def assigned(self, event: Event, recipient: Recipient) -> Email | None:
        return tell(event, recipient, "issues/assigned")

    @on(Issue, "close", to=EVERYONE, channels=CHANNELS)
    def closed(self, event: Event, recipient: Recipient) -> Email | None:
        return tell(event, recipient, "issues/closed")

    @on(Issue, "reopen", to=EVERYONE, channels=CHANNELS)
    def reopened(self, event: Event, recipient: Recipient) -> Email | None:
        return tell(event, recipient, "issues/reopened")

    # Required: an embargo binds everyone who has seen the issue, including those who turned
    # notifications off; a watcher who never hears of it may discuss the hole in public.
    @on(Issue, "flag_security", to=EVERYONE, channels=CHANNELS, required=True)
    def security_flagged(self, event: Event, recipient: Recipient) -> Email | None:
        return tell(event, recipient, "issues/security_flagged")


def tell(event: Event, recipient: Recipient, template: str) -> Email | None:
    """The email rendered from ``template`` (subject included), or ``None`` for whoever made the change."""
    if event.actor is not None and event.actor == recipient.ref:
        return None  # nobody is told of their own change
    return Email(template=template, context={"actor": actor_name(event)})


def actor_name(event: Event) -> str:
    """The name of the user who fired the transition (``event.actor`` is ``"User:<id>"``), else "Someone"."""
    kind, _, key = (event.actor or "").partition(":")
    session = object_session(event.subject)
    actor = session.get(User, int(key)) if kind == "User" and key.isdigit() and session is not None else None
    return actor.name if actor is not None else "Someone"
