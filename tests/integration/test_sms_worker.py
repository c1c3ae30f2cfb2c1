"""An SMS to a user with only a phone, through a real worker process, Redis and PostgreSQL, to a loopback gateway."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import jobs
import pytest
import workflow
from jobs import Delivery, Status
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from examples.signup.models import Base, User
from examples.signup.notifications import AccountNotifier  # noqa: F401 - registers the notifier
from tests.servers import HTTPServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]


def test_a_password_reset_reaches_a_user_with_only_a_phone_through_the_sms_gateway(
        pg_url: str, redis_url: str, queue_name: str, http_server: HTTPServer, tmp_path: Path,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    worker_process("examples.signup.notifications", env={
        "TIDINGS_DATABASE_URL": pg_url, "TIDINGS_BROKER_URL": redis_url, "TIDINGS_QUEUE": queue_name,
        "TIDINGS_EMAIL_CHANNEL": "files", "TIDINGS_MAIL_DIR": str(tmp_path / "mail"),
        "TIDINGS_SMS_URL": http_server.url, "TIDINGS_SMS_SENDER": "Accounts", "TIDINGS_SMS_TOKEN": "t0ken"})
    with Session(engine) as session:
        lee = User(name="Lee", phone="+49 30 1234567", state="active")
        session.add(lee)
        session.commit()
        lee.reset_password(actor=lee)
        session.commit()
        token = lee.reset_token
    deadline = time.monotonic() + 60
    while True:
        with Session(engine) as session:
            rows = {d.channel: d for d in session.scalars(select(Delivery))}
        if rows.get("sms") is not None and rows["sms"].status != Status.PENDING and rows["sms"].status != Status.SENDING:
            break
        assert time.monotonic() < deadline, f"the SMS was not delivered within 60 s: {rows}"
        time.sleep(0.1)
    assert (rows["sms"].status, rows["sms"].address) == (Status.SENT, "+49301234567")
    assert rows["email"].status == Status.SKIPPED and "has no email address" in (rows["email"].last_error or "")
    [request] = http_server.requests
    form = parse_qs(request.body.decode())
    assert (form["to"], form["from"], request.headers["authorization"]) == (["+49301234567"], ["Accounts"],
                                                                            "Bearer t0ken")
    assert f"https://accounts.example/reset/{token}" in form["text"][0]
    engine.dispose()
