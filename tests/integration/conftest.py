"""Fixtures of the integration tests: the real services (PostgreSQL, Redis, RabbitMQ), servers on loopback
(SMTP, HTTP(S), TCP proxies) and worker processes. The unit fixtures (engine, session, order...) are in
tests/conftest.py; the servers and process helpers themselves in tests/servers.py and tests/processes.py."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import pytest
import workflow
from sqlalchemy import Engine, create_engine

from tests.app import Base
from tests.processes import ROOT, WorkerCommand, group_members, stop_group
from tests.scenarios import create_lending_tables
from tests.servers import HTTPServer, SMTPServer, TCPProxy

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(service: str, host: str, port: int) -> None:
    """Skip (or, with CI=true, fail) when a service does not answer on host:port."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        reason = f"{service} not reachable on {host}:{port}"
        if CI:
            pytest.fail(f"{reason} (CI=true: the integration tests need it)")
        pytest.skip(reason)


@pytest.fixture
def queue_name() -> str:
    """A queue of this test's own, so runs sharing a broker do not meet."""
    return f"tidings_it_{os.getpid()}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require("PostgreSQL", "127.0.0.1", 5432)
    schema = f"it_{uuid.uuid4().hex[:12]}"
    admin = create_engine("postgresql+psycopg://root@127.0.0.1:5432/test")
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield f"postgresql+psycopg://root@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture
def redis_url(queue_name: str) -> Iterator[str]:
    """Redis database 13; this test's queue keys are deleted afterwards."""
    require("Redis", "127.0.0.1", 6379)
    url = "redis://127.0.0.1:6379/13"
    yield url
    import redis

    client = redis.Redis.from_url(url)
    keys = client.keys(f"dramatiq:{queue_name}*")
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def rabbitmq_url(queue_name: str) -> Iterator[str]:
    """RabbitMQ as guest; this test's queues are deleted afterwards."""
    require("RabbitMQ", "127.0.0.1", 5672)
    url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    yield url
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for name in (queue_name, f"{queue_name}.DQ", f"{queue_name}.XQ"):
        channel.queue_delete(name)
    connection.close()


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server on 127.0.0.1 and a free port."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = SMTPServer("127.0.0.1", port)
    controller = Controller(server, hostname=server.host, port=port)
    controller.start()
    yield server
    controller.stop()


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    """A real HTTP server on 127.0.0.1 and a free port, answering 200 until told otherwise."""
    server = HTTPServer()
    yield server
    server.stop()


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[HTTPServer, Path]]:
    """The same server behind TLS with a fresh self-signed certificate for 127.0.0.1, and that
    certificate's file (for the client to trust). Needs the ``openssl`` command."""
    if shutil.which("openssl") is None:
        if CI:
            pytest.fail("the openssl command is missing (CI=true: the TLS tests need it)")
        pytest.skip("the openssl command is missing")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=30)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(tls=context)
    yield server, cert
    server.stop()


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``dramatiq jobs <modules>`` as its own process group; stopped (group-wide) afterwards."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(*modules: str, env: dict[str, str], processes: int = 1, threads: int = 4) -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker-{len(started)}.log"
        command = [sys.executable, "-m", "dramatiq", "jobs", *modules, "--processes", str(processes),
                   "--threads", str(threads), "--path", str(ROOT)]
        with log.open("wb") as output:
            process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        stop_group(process)
        sys.stderr.write(f"\n--- {log.name} (last lines) ---\n" + "\n".join(log.read_text().splitlines()[-15:]))


@pytest.fixture
def tidings_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerCommand]]:
    """Start the installed ``tidings worker`` command in its own process group; the group is stopped afterwards."""
    started: list[WorkerCommand] = []
    script = Path(sys.executable).with_name("tidings")

    def start(*args: str, env: dict[str, str]) -> WorkerCommand:
        log = tmp_path / f"tidings-worker-{len(started)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen([str(script), "worker", *args, "--path", str(ROOT)], cwd=ROOT,
                                       env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        started.append(WorkerCommand(process, log))
        return started[-1]

    yield start
    for worker in started:
        stop_group(worker.process, timeout=60)
        deadline = time.monotonic() + 20  # worker processes that outlived their supervisor
        while group_members(worker.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if group_members(worker.process.pid):
            os.killpg(worker.process.pid, signal.SIGKILL)
        sys.stderr.write(f"\n--- {worker.log.name} (last lines) ---\n" + "\n".join(worker.output().splitlines()[-15:]))


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each real broker in turn."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on the test's PostgreSQL schema, with the lending example's tables."""
    engine = create_engine(pg_url)
    create_lending_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def shop(pg_url: str) -> Iterator[Engine]:
    """The test shop's tables and Tidings' own on the test's PostgreSQL schema."""
    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[int], TCPProxy]]:
    """Start proxies to local ports; each is cut at teardown."""
    proxies: list[TCPProxy] = []

    def start(target_port: int) -> TCPProxy:
        proxies.append(TCPProxy(target_port))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.cut()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium (``/usr/bin/chromium``, installed by ``make test``) driven by Playwright.

    One browser per test module: Playwright's sync API holds an event loop on the main thread while
    it runs, so it is stopped before the modules that run their own (``asyncio.run``).

    Skipped, saying why, where either is missing; with CI=true a missing browser fails instead.
    No browser build is ever downloaded: Playwright launches the system's.
    """
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        reason = ("no browser: the console's browser tests need Debian's chromium (apt-get install chromium; "
                  "`make test` installs it when run as root) and the playwright package (pip install -e '.[test]')")
        if CI:
            pytest.fail(f"{reason} (CI=true: the browser tests are required)")
        pytest.skip(reason)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()
