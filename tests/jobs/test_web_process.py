"""What a web process, a dev server or a script gets on its own, each run as a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[2]

SHOP = """
    import sys, time
    from pathlib import Path
    import workflow
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from tests.app import Base, Order, Person

    engine = create_engine("sqlite:///tidings.db")

    def pay_orders(count):
        Base.metadata.create_all(engine)
        workflow.metadata.create_all(engine)  # with the delivery log, once jobs is imported
        with Session(engine) as session:
            for n in range(count):
                order = Order(buyer=Person(name="Bea", email=f"bea{n}@example.com"),
                              seller=Person(name="Sam", email=f"sam{n}@example.com"))
                session.add(order)
                session.commit()
                order.pay()
                session.commit()

    def mails():
        return sorted(path.name for path in Path("outbox").glob("*.eml"))
"""


def run(script: str, folder: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """``script`` after the shop's set-up, in a fresh interpreter in ``folder``, with only these TIDINGS_* vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(SHOP) + textwrap.dedent(script)], cwd=folder,
                          env={**env, **variables, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120, check=True)


# --- A web process that never imported jobs --------------------------------------------------------


def test_a_process_that_never_imported_jobs_warns_once_at_its_first_committed_transition(tmp_path: Path) -> None:
    result = run("""
        pay_orders(3)
        print("jobs" in sys.modules)
    """, tmp_path)
    assert result.stdout.strip() == "False"
    assert result.stderr.count("nothing in this process hands committed transitions to the workers") == 1
    assert "import jobs when the process starts" in result.stderr


def test_a_process_that_imported_jobs_does_not_warn(tmp_path: Path) -> None:
    result = run("""
        import jobs
        jobs.configure(in_process_worker=False)
        pay_orders(1)
    """, tmp_path)
    assert "nothing in this process hands" not in result.stderr


# --- Development: the embedded default delivers as it commits --------------------------------------


def test_on_the_defaults_a_running_process_writes_the_mails_of_a_commit_without_drain(tmp_path: Path) -> None:
    result = run("""
        import jobs
        pay_orders(1)
        committed = time.monotonic()
        while len(mails()) < 2 and time.monotonic() < committed + 30:  # a dev server stays up, serving
            time.sleep(0.01)
        print(len(mails()), f"{time.monotonic() - committed:.3f}")
    """, tmp_path)
    count, seconds = result.stdout.split()
    assert count == "2", result.stderr
    print(f"figures: the .eml files appeared {seconds} s after the commit")


def test_on_the_defaults_a_script_that_exits_right_after_its_commit_still_delivers(tmp_path: Path) -> None:
    run("""
        import jobs
        pay_orders(2)
    """, tmp_path)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 4


def test_in_development_an_app_on_its_own_database_delivers_once_jobs_is_given_its_engine(tmp_path: Path) -> None:
    result = run("""
        import jobs
        engine = create_engine("sqlite:///app.db")  # the app's database, not Tidings' default
        jobs.configure(engine=engine)
        pay_orders(1)
        committed = time.monotonic()
        while len(mails()) < 2 and time.monotonic() < committed + 30:
            time.sleep(0.01)
        print(len(mails()))
    """, tmp_path)
    assert result.stdout.split() == ["2"] and not (tmp_path / "tidings.db").exists()


def test_with_the_in_process_worker_off_the_messages_wait_for_drain(tmp_path: Path) -> None:
    result = run("""
        import jobs
        from jobs.testing import drain
        pay_orders(1)
        print(jobs.broker.queues["tidings"].qsize(), len(mails()))
        drain()
        print(len(mails()))
    """, tmp_path, TIDINGS_IN_PROCESS_WORKER="false")
    assert result.stdout.split() == ["1", "0", "2"]


def test_a_stub_broker_passed_to_configure_keeps_its_messages_queued(tmp_path: Path) -> None:
    result = run("""
        import jobs
        from dramatiq.brokers.stub import StubBroker
        mine = StubBroker()
        mine.emit_after("process_boot")
        jobs.configure(broker=mine)
        pay_orders(1)
        print(mine.queues["tidings"].qsize(), len(mails()))
    """, tmp_path)
    assert result.stdout.split() == ["1", "0"]


def test_on_the_defaults_a_wsgi_dev_server_writes_the_mails_of_a_request_without_drain(tmp_path: Path) -> None:
    server = """
        import jobs
        from wsgiref.simple_server import make_server

        def app(environ, start_response):  # each request pays one new order
            pay_orders(1)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"paid"]

        with make_server("127.0.0.1", 0, app) as httpd:
            print(httpd.server_port, flush=True)
            httpd.serve_forever()
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    with subprocess.Popen([sys.executable, "-c", textwrap.dedent(SHOP) + textwrap.dedent(server)], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            port = int(process.stdout.readline())
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as reply:
                assert reply.read() == b"paid"
            answered = time.monotonic()
            while len(list((tmp_path / "outbox").glob("*.eml"))) < 2 and time.monotonic() < answered + 30:
                time.sleep(0.01)
            waited = time.monotonic() - answered
        finally:
            process.terminate()
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    print(f"figures: the dev server's .eml files were there {waited:.3f} s after its answer")
