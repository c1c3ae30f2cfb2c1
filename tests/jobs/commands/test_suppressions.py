"""`tidings suppress | unsuppress | suppressions`: the suppression list by hand, and bounce reports piped in."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jobs
import pytest
import workflow
from dramatiq.brokers.stub import StubBroker
from jobs.commands.cli import main
from jobs.preflight import database_problem
from notifiers import MemoryChannel, suppressed
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from tests.bounces import HARD, SOFT, dsn
from tests.jobs.commands.test_command_errors import tidings


@pytest.fixture(autouse=True)
def configured(broker: StubBroker, engine: Engine, mailbox: MemoryChannel) -> None:
    jobs.configure(broker=broker, engine=engine, channels={"email": mailbox})


def listed(session: Session) -> list[tuple[str, str, str]]:
    session.expire_all()
    return [(s.address, s.channel, s.reason) for s in suppressed(session)]


def test_suppress_records_the_address_manual_by_default(session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suppress", "Ann@Example.com"]) == 0
    assert "suppressed ann@example.com (email): suppressed: manual at 20" in capsys.readouterr().out
    assert listed(session) == [("ann@example.com", "email", "manual")]


def test_suppress_takes_a_reason_and_a_channel(session: Session) -> None:
    assert main(["suppress", "+49301234567", "--reason", "complained", "--channel", "sms"]) == 0
    assert listed(session) == [("+49301234567", "sms", "complained")]


def test_suppress_refuses_an_unknown_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["suppress", "ann@example.com", "--reason", "spam"])
    assert exit_.value.code == 2 and "invalid choice: 'spam'" in capsys.readouterr().err


def test_unsuppress_removes_the_address(session: Session) -> None:
    main(["suppress", "ann@example.com"])
    assert main(["unsuppress", "ANN@example.com"]) == 0
    assert listed(session) == []


def test_unsuppressing_an_address_that_is_not_suppressed_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["unsuppress", "nobody@example.com"]) == 1
    assert "'nobody@example.com' is not suppressed on channel 'email'" in capsys.readouterr().out


def test_suppressions_lists_them_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    main(["suppress", "ann@example.com", "--reason", "bounced", "--detail", "550 5.1.1"])
    capsys.readouterr()
    assert main(["suppressions", "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["address"], row["channel"], row["reason"], row["detail"]) == (
        "ann@example.com", "email", "bounced", "550 5.1.1")


def test_suppress_dsn_reads_a_bounce_report_from_stdin_and_suppresses_its_hard_bounces(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(dsn(HARD, SOFT))))
    assert main(["suppress", "--dsn"]) == 0
    assert listed(session) == [("ann@example.com", "email", "bounced")]


def test_suppress_without_an_address_nor_dsn_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suppress"]) == 2
    assert "give an ADDRESS to suppress, or --dsn" in capsys.readouterr().err


def test_a_database_without_the_provider_column_is_refused_naming_it(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    workflow.metadata.create_all(engine)
    with engine.begin() as connection:  # the delivery log as it was before failover (and before the console's index)
        connection.exec_driver_sql("DROP INDEX ix_tidings_deliveries_provider")
        connection.exec_driver_sql("ALTER TABLE tidings_deliveries DROP COLUMN provider")
    engine.dispose()
    done = tidings("status", env={"TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'old.db'}"}, cwd=tmp_path)
    assert done.returncode == 2 and "lacks the columns tidings_deliveries.provider" in done.stderr


def test_a_database_without_the_suppressions_table_is_refused_at_start_naming_it(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    workflow.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE tidings_suppressions")
    problem = database_problem(engine)
    engine.dispose()
    assert problem is not None and problem[0] == 2 and "has no table tidings_suppressions" in problem[1]
