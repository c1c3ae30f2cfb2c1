"""User accounts: signed up, activated, reset and closed; or created latent by an import or an invitation."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session
from workflow import Stateful, Trigger, Workflow


class Base(DeclarativeBase):
    """The application's own declarative base."""


def _other_administrators(user: User) -> list[User]:
    """Every active administrator except ``user``: nobody is told of their own signup."""
    session = object_session(user)
    if session is None:
        return []
    query = select(User).where(User.is_admin, User.state == "active", User.id != user.id).order_by(User.id)
    return list(session.scalars(query))


class User(Stateful, Base):
    """An account. ``latent`` ones were created for someone (an import, an invitation), who never signed up."""

    __tablename__ = "signup_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)  # a user may give only a phone
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(35))
    is_admin: Mapped[bool] = mapped_column(default=False)
    reset_token: Mapped[str | None] = mapped_column(String(64))

    workflow = Workflow(
        states=["new", "latent", "pending", "active", "closed"],
        initial="new",
        transitions=[
            ["create_latent", "new", "latent"],  # recorded, but no notifier answers it: nobody is told
            ["sign_up", "new", "pending"],
            ["activate", ["pending", "latent"], "active"],
            {"trigger": "reset_password", "source": "active", "dest": "=", "before": "issue_reset_token"},
            ["close", ["pending", "active"], "closed"],
            # An account nobody confirmed or claimed in 30 days closes by itself (a timeout: the workers fire it).
            {"trigger": "lapse", "source": ["latent", "pending"], "dest": "closed", "timeout": dt.timedelta(days=30)},
        ],
        parties={"user": lambda user: user, "administrators": _other_administrators},
    )

    if TYPE_CHECKING:  # the trigger methods the Workflow generates, spelled out for the type checker
        create_latent: Trigger
        sign_up: Trigger
        activate: Trigger
        reset_password: Trigger
        close: Trigger
        lapse: Trigger

    def issue_reset_token(self) -> None:
        """A fresh one-time token for the reset link (a real application stores only its hash)."""
        self.reset_token = secrets.token_urlsafe(24)
