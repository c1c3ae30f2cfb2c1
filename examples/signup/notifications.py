"""What a user, and the administrators, hear at each step of an account's life."""

from __future__ import annotations

import datetime as dt

from notifiers import Email, Event, Notifier, Recipient, Text, on, remind

from .models import User

#: How long a password reset link works.
RESET_LINK_LIFETIME = dt.timedelta(hours=1)
#: How long a closed account's data is kept before it is deleted.
RETENTION = dt.timedelta(days=30)


class AccountNotifier(Notifier):
    """Tells the user of each step, and the other administrators of each signup."""

    templates = "templates"

    @on(User, "sign_up", to="user")
    def confirm_address(self, event: Event, recipient: Recipient) -> Email:
        return Email(template="accounts/confirm_address")

    @on(User, "sign_up", to="administrators", channels=["email", "inapp"])
    def new_signup(self, event: Event, recipient: Recipient) -> Email:
        return Email(template="accounts/new_signup")

    # Signed up a day ago and still not confirmed: ask once more (not once activated or closed).
    @remind(User, "pending", after=dt.timedelta(days=1), to="user")
    def activate_reminder(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Your account is waiting, {recipient.name}",
                     text=f"Confirm your address to start: https://accounts.example/confirm/{event.key}")

    @on(User, "activate", to="user", channels=["email", "inapp"])
    def welcome(self, event: Event, recipient: Recipient) -> Email:
        return Email(template="accounts/welcome")

    # Required: someone asked to change this account's password; its owner must hear of it even
    # after opting out of email, whether to use the link or to know that someone else tried.
    @on(User, "reset_password", to="user", required=True)
    def password_reset(self, event: Event, recipient: Recipient) -> Email:
        return Email(template="accounts/password_reset",
                     context={"expires_at": event.created_at + RESET_LINK_LIFETIME})

    # The same, by SMS, to a user who gave a phone (a user with only a phone has no other way in);
    # a user without a phone is skipped on this channel, with the reason.
    @on(User, "reset_password", to="user", channels=["sms"], required=True)
    def password_reset_by_sms(self, event: Event, recipient: Recipient) -> Text:
        return Text(template="accounts/password_reset", context={"expires_at": event.created_at + RESET_LINK_LIFETIME})

    @on(User, "close", to="user")
    def closed(self, event: Event, recipient: Recipient) -> Email:
        return Email(template="accounts/closed", context={"deleted_on": (event.created_at + RETENTION).date()})

    @on(User, "lapse", to="user")
    def lapsed(self, event: Event, recipient: Recipient) -> Email:
        return Email(template="accounts/lapsed")
