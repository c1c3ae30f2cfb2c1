"""Tidings on an application's own Dramatiq broker: its actors beside the application's, one worker for both.

Told in code (``jobs.configure(broker=...)``) or by the ``app_broker`` setting
(``TIDINGS_APP_BROKER=module:attribute``), which ``import jobs`` honours in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import jobs
import pytest
import workflow
from dramatiq.brokers.stub import StubBroker
from jobs import ConfigurationError
from notifiers import MemoryChannel
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.app import Base, Order, Person

APP = """
import dramatiq
from dramatiq.brokers.stub import StubBroker

broker = StubBroker()
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="app")
def resize(name):
    print("resized", name)
"""


@pytest.fixture
def app_broker() -> Iterator[StubBroker]:
    """An application's own broker; jobs gets a fresh StubBroker and the default settings back afterwards."""
    broker = StubBroker()
    broker.emit_after("process_boot")
    yield broker
    fresh = StubBroker()
    fresh.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=fresh)
    broker.close()


def test_configure_declares_tidings_actors_on_the_applications_broker_beside_its_own(app_broker: StubBroker) -> None:
    resize = dramatiq.actor(lambda name: None, actor_name="app.resize", queue_name="app", broker=app_broker)
    jobs.configure(broker=app_broker)
    assert sorted(app_broker.actors) == ["app.resize", "tidings.deliver", "tidings.deliver_each", "tidings.fan_out"]
    assert resize.broker is app_broker and jobs.broker is app_broker and dramatiq.get_broker() is app_broker


def test_one_worker_on_the_applications_broker_runs_its_actors_and_delivers_notifications(
        tmp_path: Path, app_broker: StubBroker) -> None:
    resized: list[str] = []
    resize = dramatiq.actor(resized.append, actor_name="app.resize", queue_name="app", broker=app_broker)
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    channel = MemoryChannel()
    jobs.configure(broker=app_broker, engine=engine, channels={"email": channel}, sweep_interval=0)
    with Session(engine) as session:
        order = Order(buyer=Person(name="Ann", email="ann@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        order.fire("pay")
        session.commit()
    resize.send("photo.png")
    worker = dramatiq.Worker(app_broker, worker_threads=2)
    worker.start()
    try:
        app_broker.join("app", fail_fast=True)
        app_broker.join(jobs.Settings().queue, fail_fast=True)
        worker.join()
    finally:
        worker.stop()
    assert resized == ["photo.png"]
    assert sorted(sent.to.address for sent in channel.outbox) == ["ann@example.com", "sam@example.com"]
    engine.dispose()


def _import_jobs_with(tmp_path: Path, app_broker: str, check: str, app: str = APP,
                      first: str = "jobs") -> subprocess.CompletedProcess[str]:
    """Import ``first`` and run ``check`` in a fresh interpreter that has the application module ``myapp_tasks``."""
    (tmp_path / "myapp_tasks.py").write_text(app)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")},
           "TIDINGS_APP_BROKER": app_broker, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    return subprocess.run([sys.executable, "-c", f"import sys, dramatiq, {first}\n" + check], env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_app_broker_setting_puts_tidings_actors_on_the_applications_broker_at_import(tmp_path: Path) -> None:
    result = _import_jobs_with(tmp_path, "myapp_tasks:broker", """
app = sys.modules["myapp_tasks"].broker
print(jobs.broker is app, dramatiq.get_broker() is app, sorted(app.actors))
print(sorted(type(m).__name__ for m in app.middleware if type(m).__module__.startswith("jobs")))
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True True ['resize', 'tidings.deliver', 'tidings.deliver_each', 'tidings.fan_out']",
        "['RefuseWithoutNotifiers', 'Schedule']"]


def test_an_app_broker_that_names_no_broker_is_refused_at_import_naming_it(tmp_path: Path) -> None:
    result = _import_jobs_with(tmp_path, "myapp_tasks:resize", "")
    assert result.returncode != 0
    assert ("jobs.errors.ConfigurationError: Setting app_broker (TIDINGS_APP_BROKER='myapp_tasks:resize'): "
            "myapp_tasks.resize is of type Actor, not a dramatiq.Broker.") in result.stderr


def test_an_app_broker_module_that_imports_jobs_before_defining_it_is_told_to_define_it_first(
        tmp_path: Path) -> None:
    result = _import_jobs_with(tmp_path, "myapp_tasks:broker", "", app="import jobs\n" + APP, first="myapp_tasks")
    assert result.returncode != 0
    assert ("Setting app_broker (TIDINGS_APP_BROKER='myapp_tasks:broker'): myapp_tasks.broker is not defined. "
            "Define the broker there before anything in myapp_tasks imports jobs.") in result.stderr


def test_an_app_broker_whose_module_does_not_import_is_refused_naming_it(tmp_path: Path) -> None:
    result = _import_jobs_with(tmp_path, "myapp_missing:broker", "")
    assert result.returncode != 0
    assert ("Setting app_broker (TIDINGS_APP_BROKER='myapp_missing:broker'): cannot import myapp_missing: "
            "No module named 'myapp_missing'.") in result.stderr


def test_an_app_broker_that_is_not_module_colon_attribute_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^Setting app_broker \(environment variable TIDINGS_APP_BROKER\): "
                                                 r"'myapp.tasks' is not module:attribute, e.g. myapp.tasks:broker\.$"):
        jobs.Settings(app_broker="myapp.tasks")


def test_an_app_broker_with_a_broker_url_as_well_is_refused_naming_both() -> None:
    with pytest.raises(ConfigurationError, match=r"app_broker .*leave broker_url "
                                                 r"\(TIDINGS_BROKER_URL='redis://u:\*\*\*@redis:6379/0'\) unset"):
        jobs.Settings(app_broker="myapp.tasks:broker", broker_url="redis://u:secret@redis:6379/0")
