"""Deploy mistakes against real workers on PostgreSQL, Redis and RabbitMQ: a worker without notifiers, a
partial module list, a database without Tidings' tables, a broker that refuses: each said once, nothing lost."""

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
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from examples.lending.models import Item, Loan, User
from tests.processes import ROOT, stop_group, wait_for, worker_env, WorkerCommand
from tests.scenarios import delivery_statuses
from tests.servers import free_port, SMTPServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

TIDINGS = str(Path(sys.executable).with_name("tidings"))
NOTIFIERS = {"TIDINGS_NOTIFIERS": "examples.lending.notifications"}


def tidings(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TIDINGS, *args, *(["--path", str(ROOT)] if args[0] == "worker" else [])],
                          env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120)


def lines(worker: WorkerCommand) -> list[str]:
    return worker.output().splitlines()


def request_a_ladder(engine: Engine) -> int:
    """Bob asks Ann for her ladder (one email, to Ann); the transition's id."""
    with Session(engine) as session:
        loan = Loan(item=Item(title="ladder", owner=User(name="Ann", email="ann@example.com")),
                    borrower=User(name="Bob", email="bob@example.com"))
        session.add(loan)
        session.commit()
        record = loan.fire("request")
        session.commit()
        return record.id


def transition(engine: Engine, transition_id: int) -> TransitionRecord:
    with Session(engine) as session:
        record = session.get(TransitionRecord, transition_id)
        assert record is not None
        return record


def test_a_worker_whose_modules_register_no_notifier_refuses_to_start_in_one_line(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    worker = tidings_worker("examples.lending.models", "--processes", "2",
                            env=worker_env(pg_url, redis_url, queue_name, smtp_server))
    assert worker.process.wait(timeout=120) == 2
    [line] = lines(worker)
    assert "ERROR" in line and "No notifier is registered after importing examples.lending.models" in line
    assert "(they declare the models Loan, not their notifiers)" in line and "TIDINGS_NOTIFIERS=" in line


@pytest.mark.parametrize("modules, notifiers, says", [
    (["examples.lending.models"], "", "No notifier is registered after importing examples.lending.models"),
    ([], "examples.lending.missing", "TIDINGS_NOTIFIERS): cannot import 'examples.lending.missing'"),
])
def test_a_worker_process_itself_refuses_to_start_without_notifiers(modules: list[str], notifiers: str, says: str,
                                                                   pg_url: str, redis_url: str, queue_name: str) -> None:
    spec = {"modules": modules, "paths": [str(ROOT)], "threads": 1, "queues": [], "shutdown_timeout": 5, "parent": 0}
    done = subprocess.run([sys.executable, "-P", "-m", "jobs.worker.process", json.dumps(spec)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "TIDINGS_DATABASE_URL": pg_url,
                               "TIDINGS_BROKER_URL": redis_url, "TIDINGS_QUEUE": queue_name,
                               "TIDINGS_NOTIFIERS": notifiers},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert says in line


def test_dramatiqs_own_command_refuses_to_start_a_worker_without_notifiers(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer, tmp_path: Path,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    process = worker_process("examples.lending.models", env=worker_env(pg_url, redis_url, queue_name, smtp_server))
    assert process.wait(timeout=120) == 2
    assert "No notifier is registered after importing examples.lending.models" in (tmp_path / "worker-0.log").read_text()


def test_a_worker_with_no_module_list_plans_with_the_notifiers_tidings_notifiers_names(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    tidings_worker("--processes", "1", "--threads", "2",
                   env=worker_env(pg_url, redis_url, queue_name, smtp_server, **NOTIFIERS))
    request_a_ladder(pg_engine)
    [mail] = smtp_server.wait_for(1, timeout=60)
    assert str(mail["To"]) == "Ann <ann@example.com>" and "would like to borrow your ladder" in str(mail["Subject"])


def test_a_transition_planned_where_its_model_has_no_notifier_is_held_visible_and_later_delivered(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    # Given a worker started with a partial module list: the shop's notifiers, the lending models only
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    env = worker_env(pg_url, redis_url, queue_name, smtp_server, TIDINGS_SWEEP_INTERVAL="0.5",
                     TIDINGS_SWEEP_AFTER_SECONDS="1")
    wrong = tidings_worker("tests.app", "examples.lending.models", "--processes", "1", env=env)

    # When a loan is requested, and that worker plans it
    transition_id = request_a_ladder(pg_engine)
    assert wait_for(lambda: transition(pg_engine, transition_id).held_reason is not None, timeout=60), wrong.output()

    # Then it is held back, not done: counted, explained, with the likely cause
    record = transition(pg_engine, transition_id)
    assert record.fanned_out_at is None and "No notifier for Loan is registered" in str(record.held_reason)
    figures = json.loads(tidings("status", "--json", env=env).stdout)
    assert figures["transitions_held"] == 1 and "TIDINGS_NOTIFIERS" in figures["held_by_reason"][0]["reason"]
    explained = tidings("--import", "examples.lending.notifications", "explain", "Loan", record.key, env=env).stdout
    assert "nobody told: held back, not fanned out: No notifier for Loan" in explained
    assert f"Transitions [{transition_id}] held back: No notifier for Loan" in wrong.output()

    # And once the right worker runs, its sweeper hands it out again and Ann is told, once
    stop_group(wrong.process, timeout=60)
    tidings_worker("--processes", "1", env={**env, **NOTIFIERS})
    assert wait_for(lambda: transition(pg_engine, transition_id).fanned_out_at is not None, timeout=60)
    assert [str(m["To"]) for m in smtp_server.wait_for(1, timeout=60)] == ["Ann <ann@example.com>"]
    assert transition(pg_engine, transition_id).held_reason is None
    assert json.loads(tidings("status", "--json", env=env).stdout)["transitions_held"] == 0


def test_refan_on_postgresql_writes_only_the_missing_deliveries_and_each_is_sent_once(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    # Given three requests marked fanned out with no delivery, as a worker without the notifiers left them
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    ids = [request_a_ladder(pg_engine) for _ in range(3)]
    with Session(pg_engine) as session:
        session.execute(update(TransitionRecord).values(fanned_out_at=utcnow()))
        session.commit()
    env = worker_env(pg_url, redis_url, queue_name, smtp_server, **NOTIFIERS)

    # When an operator re-plans two of them (a dry run first), then all three, twice
    dry = tidings("refan", str(ids[0]), str(ids[1]), "--dry-run", env=env)
    # (each request plans its mail to the lender and the reminder due two days on)
    assert dry.returncode == 0 and dry.stdout.startswith("would write 4 deliveries for 2 of 2 transitions")
    assert delivery_statuses(pg_engine) == Counter()
    assert tidings("refan", str(ids[0]), str(ids[1]), env=env).stdout.strip() == \
        "re-planned 2 transitions: 4 new deliveries"
    assert tidings("refan", "--model", "Loan", env=env).stdout.strip() == "re-planned 3 transitions: 2 new deliveries"
    assert tidings("refan", "--model", "Loan", env=env).stdout.strip() == "re-planned 3 transitions: 0 new deliveries"

    # Then a worker sends each of the three emails once
    tidings_worker("--processes", "1", env=env)
    assert wait_for(lambda: delivery_statuses(pg_engine) == Counter({Status.SENT: 3}), timeout=60), \
        delivery_statuses(pg_engine)
    assert len(smtp_server.wait_for(3, timeout=30)) == 3


def test_a_database_without_tidings_tables_stops_workers_and_commands_in_one_line_password_masked(
        pg_url: str, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    secret_url = pg_url.replace("root@", "root:db-secret-7@")
    env = worker_env(secret_url, redis_url, queue_name, smtp_server, **NOTIFIERS)
    masked = secret_url.replace("db-secret-7", "***")
    done = tidings("status", env=env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: The database {masked} has no table tidings_transitions, "
                                        "tidings_deliveries, tidings_timers, tidings_digests, tidings_throttles, tidings_suppressions: create them with `alembic upgrade heads`, "
                                        "Tidings' version location jobs:migrations listed in version_locations "
                                        "(docs/operations.md, Schema changes), or in a test or demo with `import jobs, "
                                        "workflow; workflow.metadata.create_all(engine)`."]
    worker = tidings_worker("--processes", "2", env=env)
    assert worker.process.wait(timeout=120) == 2
    [line] = lines(worker)
    assert f"The database {masked} has no table tidings_transitions" in line and "db-secret-7" not in line


def test_a_broker_that_refuses_the_connection_at_worker_start_is_said_once_with_its_url_masked(
        pg_url: str, pg_engine: Engine, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    url = f"redis://:broker-secret-7@127.0.0.1:{free_port()}/0"
    worker = tidings_worker("--processes", "2", env=worker_env(pg_url, url, queue_name, smtp_server, **NOTIFIERS))
    assert worker.process.wait(timeout=120) == 1
    [line] = lines(worker)
    assert f"Cannot connect to the broker {url.replace('broker-secret-7', '***')} (ConnectionError" in line
    assert "broker-secret-7" not in line


def test_a_broker_that_refuses_the_credentials_at_worker_start_exits_2_in_one_line(
        pg_url: str, pg_engine: Engine, rabbitmq_url: str, queue_name: str, smtp_server: SMTPServer,
        tidings_worker: Callable[..., WorkerCommand]) -> None:
    url = rabbitmq_url.replace("guest:guest@", "guest:wrong-secret-7@")
    worker = tidings_worker("--processes", "2", env=worker_env(pg_url, url, queue_name, smtp_server, **NOTIFIERS))
    assert worker.process.wait(timeout=120) == 2
    [line] = lines(worker)
    assert f"The broker {url.replace('wrong-secret-7', '***')} refused the credentials" in line
