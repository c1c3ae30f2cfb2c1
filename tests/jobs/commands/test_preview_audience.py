"""A preview tells who would be told as the fan-out would: the plan of notifiers.audience, channel addresses included."""

from __future__ import annotations

from pathlib import Path

import workflow
from jobs.commands.preview import preview
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from examples.signup.models import Base, User
from examples.signup.notifications import AccountNotifier  # noqa: F401 - registers the notifier


def test_a_preview_skips_a_phone_only_user_on_email_and_renders_the_sms(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'signup.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(User(id=1, name="Lee", phone="+49 30 1234567", state="active"))
        session.commit()
        _, previews = preview(session, "User", "1", "reset_password")
    shown = {p.channel: p for p in previews}
    assert shown["email"].skipped == "Party 'user': Lee (+49301234567) has no email address for channel 'email'."
    assert shown["sms"].skipped is None and "https://accounts.example/reset/" in (shown["sms"].text or "")
    engine.dispose()
