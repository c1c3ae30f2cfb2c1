"""`tidings worker` as a real process tree on PostgreSQL, Redis/RabbitMQ and a real SMTP server:
graceful stop, recycling, replacement of dead processes, metrics and logs."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from collections import Counter
from collections.abc import Callable

import jobs
import pytest
from jobs import Status
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from examples.lending.models import Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier
from tests.processes import group_members, wait_for, worker_env, WorkerCommand
from tests.scenarios import delivery_statuses
from tests.servers import free_port, SMTPServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

LENDING = "examples.lending.notifications"


def accepted_loans(engine: Engine, count: int) -> list[int]:
    """``count`` accepted loans, each with its own borrower and lender: handing one over tells both."""
    with Session(engine) as session:
        people = [User(name=f"P{i}", email=f"p{i}@example.com") for i in range(2 * count)]
        loans = [Loan(item=Item(title=f"item {i}", owner=people[2 * i]), borrower=people[2 * i + 1], state="accepted")
                 for i in range(count)]
        session.add_all(loans)
        session.commit()
        return [loan.id for loan in loans]


def hand_over(engine: Engine, ids: list[int]) -> None:
    """Fire 'hand_over' on each loan, each in its own committed transaction, as requests do."""
    with Session(engine) as session:
        for loan_id in ids:
            loan = session.get(Loan, loan_id)
            assert loan is not None
            loan.fire("hand_over")
            session.commit()




def message_ids(server: SMTPServer) -> Counter[str]:
    with server.arrived:
        return Counter(str(m["Message-ID"]) for m in server.received)



def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample served on the metrics port, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_sigterm_during_deliveries_finishes_the_messages_in_hand_exits_0_and_loses_nothing(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    # Given 200 handed-over loans (400 emails) going out through a slow SMTP server (50 ms a mail),
    # and a worker whose database URL and SMTP settings hold passwords
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    ids = accepted_loans(pg_engine, 200)
    smtp_server.delay = 0.05
    env = worker_env(pg_url.replace("root@", "root:db-secret-42@"), redis_url, queue_name, smtp_server,
                     TIDINGS_SMTP_PASSWORD="smtp-secret-42", TIDINGS_SWEEP_INTERVAL="0")  # no sweeper: no help
    worker = tidings_worker(LENDING, "--processes", "2", "--threads", "4", "--log-format", "json",
                            "--log-level", "DEBUG", env=env)  # a sent delivery's line is at DEBUG
    hand_over(pg_engine, ids)

    # When the supervisor gets SIGTERM in the middle of the deliveries
    smtp_server.wait_for(60, timeout=90)
    worker.process.send_signal(signal.SIGTERM)

    # Then it exits 0 in time, with no delivery left half-done and nothing sent twice
    assert worker.process.wait(timeout=90) == 0, worker.output()[-3000:]
    at_stop = delivery_statuses(pg_engine)
    arrived = message_ids(smtp_server)
    print(f"\n[figures] SIGTERM: {at_stop[Status.SENT]} of 400 sent when the worker stopped, "
          f"{at_stop[Status.PENDING]} pending for the next one")
    assert at_stop[Status.SENDING] == 0
    assert len(arrived) == sum(arrived.values()) == at_stop[Status.SENT] < 400
    # And the messages it had prefetched went back to the queue: nothing waits in its ack sets
    import redis

    client = redis.Redis.from_url(redis_url)
    held = sum(int(client.scard(key)) for key in client.keys(f"dramatiq:__acks__.*.{queue_name}*"))
    client.close()
    assert held == 0

    # And a new worker delivers the rest at once (no sweeper, no heartbeat timeout), each email once
    tidings_worker(LENDING, "--processes", "2", "--threads", "4", env=env)
    assert wait_for(lambda: len(message_ids(smtp_server)) >= 400, timeout=120), delivery_statuses(pg_engine)
    arrived = message_ids(smtp_server)
    assert len(arrived) == sum(arrived.values()) == 400
    assert wait_for(lambda: delivery_statuses(pg_engine) == Counter({Status.SENT: 400}), timeout=30)

    # And its JSON log lines carry the delivery and transition ids, never a password or a body
    entries = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    sent = [e for e in entries if e.get("status") == Status.SENT and e["logger"] == "jobs.delivery"]
    assert len(sent) == at_stop[Status.SENT]
    assert all(isinstance(e["delivery_id"], int) and isinstance(e["transition_id"], int) for e in sent)
    # sent by the fan-out messages themselves, or by the chunks a large batch is split into
    assert all(e["actor"] in ("tidings.fan_out", "tidings.deliver_each") and e["message_id"] for e in sent)
    assert any(e.get("message", "").startswith("Settings: ") and "root:***@" in e["message"] for e in entries)
    text = worker.output()
    assert "db-secret-42" not in text and "smtp-secret-42" not in text
    assert "Take good care of it" not in text and "is now with" not in text


@pytest.mark.parametrize("broker, limit", [("redis", ["--max-memory", "1"]), ("rabbitmq", ["--max-messages", "1"])])
def test_a_worker_process_past_its_limit_is_replaced_and_every_notification_arrives_once(
        broker: str, limit: list[str], request: pytest.FixtureRequest, pg_url: str, pg_engine: Engine,
        queue_name: str, smtp_server: SMTPServer, tidings_worker: Callable[..., WorkerCommand]) -> None:
    # Given a worker whose processes pass their limit after their first message (1 MiB of memory:
    # every process is over it at once), serving metrics
    broker_url = str(request.getfixturevalue(f"{broker}_url"))
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    ids = accepted_loans(pg_engine, 15)
    port = free_port()
    worker = tidings_worker(LENDING, "--processes", "2", "--threads", "2", *limit, "--metrics-port", str(port),
                            env=worker_env(pg_url, broker_url, queue_name, smtp_server))

    # When 15 loans are handed over (15 fan-outs, 30 deliveries)
    hand_over(pg_engine, ids)

    # Then processes are recycled, and every email arrives exactly once
    assert wait_for(lambda: len(message_ids(smtp_server)) >= 30, timeout=180), delivery_statuses(pg_engine)
    assert wait_for(lambda: delivery_statuses(pg_engine) == Counter({Status.SENT: 30}), timeout=30), delivery_statuses(pg_engine)
    arrived = message_ids(smtp_server)
    assert len(arrived) == sum(arrived.values()) == 30
    reason = "memory" if "--max-memory" in limit else "messages"
    # (one fan-out message may plan all 15 transitions: the later ones, left with nothing to do, still count)
    assert wait_for(lambda: worker.output().count(f"was recycled ({reason} limit)") >= 2, timeout=60)
    assert worker.process.poll() is None  # the command itself runs on

    # And the metrics count across the recycled processes: every delivery once, every latency once
    assert wait_for(lambda: sample(scrape(port), "tidings_worker_processes") == 2, timeout=30)
    samples = scrape(port)
    restarts = sample(samples, "tidings_worker_restarts_total", reason=reason)
    print(f"\n[figures] {broker} {' '.join(limit)}: {restarts:.0f} processes recycled for 15 messages")
    assert restarts >= 2
    assert sample(samples, "tidings_deliveries_total", channel="email", status="sent") == 30
    assert sample(samples, "tidings_delivery_latency_seconds_count", channel="email") == 30
    assert sample(samples, "tidings_backlog", status="pending") == 0
    assert sample(samples, "tidings_backlog_up") == 1
    assert sample(samples, "tidings_delivery_log_rows", status="sent") == 30
    # each recycled process ran at least one message before it went: their counts are all there
    assert sum(v for (name, labels), v in samples.items() if name == "dramatiq_messages_total") >= restarts

    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=90) == 0


def test_a_worker_process_that_dies_is_replaced_and_delivery_goes_on(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    worker = tidings_worker(LENDING, "--processes", "2", "--threads", "2", env=worker_env(
        pg_url, redis_url, queue_name, smtp_server, TIDINGS_LEASE_SECONDS="3", TIDINGS_SWEEP_AFTER_SECONDS="5",
        TIDINGS_SWEEP_INTERVAL="1"))
    assert wait_for(lambda: len(worker.children()) == 2, timeout=30)
    first = worker.children()

    # When one worker process is killed (as the kernel's OOM killer would)
    os.kill(first[0], signal.SIGKILL)

    # Then the supervisor starts another, and delivers what comes next
    assert wait_for(lambda: len(worker.children()) == 2 and first[0] not in worker.children(), timeout=30)
    assert first[1] in worker.children()
    started = lambda: re.findall(r"Started worker process (\d+)", worker.output())  # noqa: E731
    assert wait_for(lambda: len(started()) == 3, timeout=30)
    assert wait_for(lambda: f"Worker process {started()[2]} is consuming" in worker.output(), timeout=30)
    hand_over(pg_engine, accepted_loans(pg_engine, 10))
    assert wait_for(lambda: len(message_ids(smtp_server)) >= 20, timeout=60), delivery_statuses(pg_engine)
    assert "exited unexpectedly (signal 9)" in worker.output()

    # And SIGTERM to the whole group (supervisord's stopasgroup, systemd's control-group): each
    # worker process gets it twice, directly and forwarded, and still drains and exits cleanly
    os.killpg(worker.process.pid, signal.SIGTERM)
    assert worker.process.wait(timeout=90) == 0
    stopped = [line for line in worker.output().splitlines() if "jobs.worker.process" in line and
               line.endswith(" stopped.")]
    assert len(stopped) == 2 and "did not stop in time" not in worker.output(), worker.output()


def test_worker_processes_stop_by_themselves_when_their_supervisor_is_killed(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    worker = tidings_worker(LENDING, "--processes", "2", "--threads", "2",
                            env=worker_env(pg_url, redis_url, queue_name, smtp_server))
    assert wait_for(lambda: len(worker.children()) == 2, timeout=30)

    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=10)

    # No orphan keeps consuming: each notices its supervisor is gone, finishes and exits
    assert wait_for(lambda: not group_members(worker.process.pid), timeout=60), group_members(worker.process.pid)
    assert worker.output().count("is gone; stopping") == 2


def test_a_module_that_does_not_import_stops_the_command_with_exit_code_2(
        redis_url: str, queue_name: str, smtp_server: SMTPServer, pg_url: str,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    worker = tidings_worker("myapp.notifcations", "--processes", "2",
                            env=worker_env(pg_url, redis_url, queue_name, smtp_server))
    assert worker.process.wait(timeout=60) == 2
    assert "Cannot import 'myapp.notifcations'" in worker.output()
    assert not group_members(worker.process.pid)


def test_a_message_still_running_at_the_shutdown_deadline_is_sent_later_not_lost(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    # Given a worker with a 1 s shutdown timeout, in the middle of four mails that take 8 s each
    # (two loans: one or two fan-out messages claim the four deliveries and send them themselves)
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    ids = accepted_loans(pg_engine, 2)
    smtp_server.delay = 8
    env = worker_env(pg_url, redis_url, queue_name, smtp_server, TIDINGS_LEASE_SECONDS="3",
                     TIDINGS_SWEEP_AFTER_SECONDS="3", TIDINGS_SWEEP_INTERVAL="1")
    worker = tidings_worker(LENDING, "--processes", "1", "--threads", "4", "--shutdown-timeout", "1", env=env)
    hand_over(pg_engine, ids)
    assert wait_for(lambda: delivery_statuses(pg_engine)[Status.SENDING] == 4, timeout=60), delivery_statuses(pg_engine)

    # When it is stopped: the deadline passes with the four still in hand
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=60) == 1
    assert re.search(r"[12] message\(s\) still running at the deadline", worker.output())

    # Then the next worker sends them (the sweeper reclaims them once their lease ends): none lost;
    # a mail the server had taken from the stopped worker arrives twice, with the same Message-ID
    smtp_server.delay = 0
    tidings_worker(LENDING, "--processes", "1", "--threads", "4", env=env)
    assert wait_for(lambda: delivery_statuses(pg_engine) == Counter({Status.SENT: 4}), timeout=90), delivery_statuses(pg_engine)
    arrived = message_ids(smtp_server)
    assert len(arrived) == 4 and sum(arrived.values()) <= 8


def test_the_start_line_names_the_notifier_modules_of_tidings_notifiers(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    # Given a worker given no module, its notifiers named by TIDINGS_NOTIFIERS (the documented way)
    env = worker_env(pg_url, redis_url, queue_name, smtp_server, TIDINGS_NOTIFIERS=LENDING)
    worker = tidings_worker("--processes", "1", "--threads", "1", env=env)
    # Then the supervisor's start line names the modules its processes load, not "jobs only"
    assert wait_for(lambda: "worker process(es) x 1 threads for" in worker.output(), timeout=60), worker.output()
    [line] = [line for line in worker.output().splitlines() if "worker process(es) x 1 threads for" in line]
    assert f"for {LENDING} (TIDINGS_NOTIFIERS) (shutdown timeout" in line and "jobs only" not in line
