"""Rolling upgrade from 0.1.0: the messages 0.1.0's code sends are handled by today's workers, on a migrated database."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import dramatiq
import jobs
import pytest
from alembic import command
from dramatiq.brokers.stub import StubBroker
from jobs import actors
from jobs.testing import drain
from notifiers import MemoryChannel
from sqlalchemy import create_engine

from tests.alembic_app import config, extract_0_1_0
import tests.rolling_app  # noqa: F401  (the model and notifier 0.1.0's code fired, loaded here too)

_SEND_AS_0_1_0 = """
import json, sys
import jobs, workflow
from dramatiq.brokers.stub import StubBroker
from jobs import actors, outbox
from notifiers import MemoryChannel
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from tests.rolling_app import Base, Crate
engine = create_engine(sys.argv[1])
Base.metadata.create_all(engine)
workflow.metadata.create_all(engine)
broker = StubBroker()
jobs.configure(jobs.Settings(), broker=broker, engine=engine, channels={"email": MemoryChannel()}, sweep_interval=0)
with Session(engine) as session:
    crate = Crate(recipient="ann@example.com")
    session.add(crate)
    session.commit()
    crate.ship()
    session.commit()
outbox.dispatcher.flush(30)
sent = [queue.get_nowait().decode() for queue in broker.queues.values() for _ in range(queue.qsize())]
sent += [actors.deliver.message(7).encode().decode(), actors.deliver_each.message([7, 8]).encode().decode()]
print(json.dumps(sent))
"""

_DELIVER_AS_0_1_0 = """
import sys
import jobs
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.testing import drain
from notifiers import MemoryChannel
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from tests.rolling_app import Crate
engine = create_engine(sys.argv[1])
broker, mailbox = StubBroker(), MemoryChannel()
broker.emit_after("process_boot")
jobs.configure(jobs.Settings(), broker=broker, engine=engine, channels={"email": mailbox}, sweep_interval=0)
with Session(engine) as session:
    crate = Crate(recipient="bea@example.com")
    session.add(crate)
    session.commit()
    crate.ship()
    session.commit()
drain()
with Session(engine) as session:
    print(sorted((d.address, d.status) for d in session.scalars(select(Delivery))), len(mailbox.outbox))
"""


def run_0_1_0(script: str, url: str, scratch: Path) -> str:
    """Run ``script`` with 0.1.0's packages (from ``scratch``) and the test's model; its output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(scratch), str(Path(__file__).parents[2])])}
    done = subprocess.run([sys.executable, "-c", script, url], env=env, capture_output=True, text=True,
                          timeout=120, cwd=scratch)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def sent_by_0_1_0(tmp_path: Path) -> tuple[str, list[dramatiq.Message[object]]]:
    """A database 0.1.0 made, a crate shipped by 0.1.0's code, and the messages that code sent (and would send)."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    sent = run_0_1_0(_SEND_AS_0_1_0, url, extract_0_1_0(tmp_path / "0.1.0"))
    return url, [dramatiq.Message.decode(line.encode()) for line in json.loads(sent)]


def test_a_fan_out_message_of_0_1_0_is_planned_and_delivered_by_today_s_worker(
        sent_by_0_1_0: tuple[str, list[dramatiq.Message[object]]], restore_jobs: None) -> None:
    url, messages = sent_by_0_1_0
    command.stamp(config(url), "tidings_0001")
    command.upgrade(config(url), "tidings@head")
    engine, broker, mailbox = create_engine(url), StubBroker(), MemoryChannel()
    broker.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, channels={"email": mailbox}, sweep_interval=0)
    [fan_out] = [m for m in messages if m.actor_name == "tidings.fan_out"]
    broker.enqueue(fan_out.copy(queue_name=actors.fan_out.queue_name))
    drain()
    assert [(s.to.address, s.message.subject) for s in mailbox.outbox] == [("ann@example.com", "Crate 1 shipped")]
    engine.dispose()


def test_each_actor_of_0_1_0_is_there_today_and_takes_the_arguments_0_1_0_sends(
        sent_by_0_1_0: tuple[str, list[dramatiq.Message[object]]]) -> None:
    today = {actor.actor_name: actor for actor in actors.ACTORS}
    _, messages = sent_by_0_1_0
    assert {m.actor_name for m in messages} == {"tidings.fan_out", "tidings.deliver", "tidings.deliver_each"}
    for message in messages:
        inspect.signature(today[message.actor_name].fn).bind(*message.args, **message.kwargs)


def test_a_0_1_0_worker_still_plans_and_delivers_on_the_upgraded_schema(
        sent_by_0_1_0: tuple[str, list[dramatiq.Message[object]]], tmp_path: Path) -> None:
    url, _ = sent_by_0_1_0
    command.stamp(config(url), "tidings_0001")
    command.upgrade(config(url), "tidings@head")
    out = run_0_1_0(_DELIVER_AS_0_1_0, url, tmp_path / "0.1.0")
    # the crate 0.1.0 shipped first was never fanned out (no worker); the second one 0.1.0 planned and sent
    assert out.strip() == "[('bea@example.com', 'sent')] 1"
