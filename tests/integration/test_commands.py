"""The installed `tidings` command against PostgreSQL and Redis: status, explain, graph, deliveries,
resend, sweep, and demo, each as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import jobs
import pytest
from jobs import Status
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from examples.lending.models import Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier
from tests.processes import ROOT, wait_for, worker_env, WorkerCommand
from tests.scenarios import delivery_statuses
from tests.servers import SMTPServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

TIDINGS = str(Path(sys.executable).with_name("tidings"))
APP = ["--import", "examples.lending.notifications", "--path", str(ROOT)]


def tidings(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TIDINGS, *args], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True,
                          timeout=120)





def lend_the_ladder(engine: Engine) -> int:
    """Every step of one loan, each committed on its own: five emails in all. The loan's id."""
    with Session(engine) as session:
        ann, bob = User(name="Ann", email="ann@example.com"), User(name="Bob", email="bob@example.com")
        loan = Loan(item=Item(title="ladder", owner=ann), borrower=bob)
        session.add(loan)
        session.commit()
        for trigger, actor in (("request", bob), ("accept", ann), ("hand_over", ann), ("give_back", bob)):
            loan.fire(trigger, actor=actor)
            session.commit()
        return loan.id


def test_the_operator_commands_report_and_repair_a_real_deployment(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    # Given a worker on PostgreSQL and Redis whose SMTP server refuses every recipient
    env = worker_env(pg_url, redis_url, queue_name, smtp_server)
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    smtp_server.reply = "550 5.1.1 Mailbox unavailable"
    tidings_worker("examples.lending.notifications", "--processes", "1", "--threads", "2", env=env)
    loan = lend_the_ladder(pg_engine)
    assert wait_for(lambda: delivery_statuses(pg_engine) == Counter({Status.FAILED: 5}), timeout=60), delivery_statuses(pg_engine)

    # status: the failures, as JSON, and as a health check that fails
    done = tidings(*APP, "status", "--json", env=env)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["deliveries"]["failed"] == 5 and figures["transitions_not_fanned_out"] == 0
    assert figures["failures_by_reason"][0]["count"] == 5 and "550" in figures["failures_by_reason"][0]["reason"]
    unhealthy = tidings(*APP, "status", "--max-dead", "0", env=env)
    assert unhealthy.returncode == 1 and "unhealthy: 5 dead or failed > 0" in unhealthy.stderr

    # explain: each transition of the loan and what became of each email
    done = tidings(*APP, "explain", "Loan", str(loan), env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("  ", 1)[1] for line in lines if not line.startswith(" ")] == [
        "request: draft -> requested by User:2", "accept: requested -> accepted by User:1",
        "hand_over: accepted -> handed_over by User:1", "give_back: handed_over -> returned by User:2"]
    assert lines[1].startswith("    lender <ann@example.com> by email: failed, 1 attempt(s) (") and "550" in lines[1]
    assert json.loads(tidings(*APP, "explain", "Loan", str(loan), "--json", env=env).stdout)[2]["trigger"] == "hand_over"

    # graph and deliveries
    graph = tidings(*APP, "graph", env=env)
    assert graph.returncode == 0 and "  accepted -> handed_over on hand_over: borrower (email); lender (email)" \
        in graph.stdout.splitlines()
    listed = [json.loads(line) for line in tidings("deliveries", "--status", "failed", "--json", env=env).stdout
              .splitlines()]
    assert len(listed) == 5 and all("550" in row["error"] for row in listed)

    # resend by notifier, channel and time: the two hand-over emails only
    smtp_server.reply = "250 OK"
    done = tidings(*APP, "resend", "--notifier", "LoanNotifier.handed_over", "--channel", "email", "--since", "1h",
                   "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"resent": 2}
    smtp_server.wait_for(2, timeout=60)
    assert sorted(str(m["To"]) for m in smtp_server.received) == ["Ann <ann@example.com>", "Bob <bob@example.com>"]
    assert all("changed hands" in str(m["Subject"]) for m in smtp_server.received)

    # resend the rest by status, after a dry run that changes nothing
    dry = tidings(*APP, "resend", "--status", "failed", "--until", "2999-01-01", "--dry-run", "--json", env=env)
    assert len(json.loads(dry.stdout)["would_resend"]) == 3 and delivery_statuses(pg_engine)[Status.FAILED] == 3
    done = tidings(*APP, "resend", "--status", "failed", env=env)
    assert done.returncode == 0 and done.stdout.strip() == "re-sent 3 deliveries"
    assert wait_for(lambda: delivery_statuses(pg_engine) == Counter({Status.SENT: 5}), timeout=60), delivery_statuses(pg_engine)
    assert len(smtp_server.wait_for(5, timeout=30)) == 5
    assert tidings(*APP, "status", "--max-dead", "0", "--max-pending", "0", env=env).returncode == 0

    # an id that is not failed or dead is refused; sweep finds nothing overdue
    refused = tidings(*APP, "resend", "999999", env=env)
    assert refused.returncode == 1 and "No failed or dead delivery has id 999999" in refused.stderr
    swept = tidings(*APP, "sweep", "--json", env=env)
    assert swept.returncode == 0 and json.loads(swept.stdout) == {"transitions": [], "deliveries": []}


def test_demo_runs_the_lending_example_and_says_where_it_must_run_from(tmp_path: Path) -> None:
    done = tidings("demo", env={})
    assert done.returncode == 0, done.stderr
    assert "Ann fired 'accept': loan is now 'accepted'" in done.stdout
    assert "=== Mailbox of Bob <bob@example.com>: 2 message(s)" in done.stdout
    assert "Subject: Bob is still waiting for your answer" in done.stdout  # the reminder, two days on
    assert "Not sent: pick_up (superseded by hand_over at " in done.stdout

    elsewhere = tidings("demo", env={}, cwd=tmp_path)
    assert elsewhere.returncode == 2
    assert "run it from the repository root or pass --path" in elsewhere.stderr
