"""Fixtures: the embedded default for unit tests (SQLite file, StubBroker, MemoryChannel), and the
real services for integration tests (PostgreSQL, Redis, RabbitMQ, SMTP, HTTP, worker processes)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jobs
import pytest
import workflow
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.testing import stop_workers
from notifiers import MemoryChannel
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from tests.app import Base, Order, Person


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file with the shop's and Tidings' tables, shared by the test and the worker threads."""
    engine = create_engine(f"sqlite:///{tmp_path / 'test.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def mailbox() -> MemoryChannel:
    """The email channel of the in-process worker: what it sent, in order."""
    return MemoryChannel()


@pytest.fixture
def broker(engine: Engine, mailbox: MemoryChannel) -> Iterator[StubBroker]:
    """A fresh StubBroker wired to the test database and mailbox, with quick retries."""
    broker = StubBroker()
    broker.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, channels={"email": mailbox},
                   max_retries=2, min_backoff_ms=10, max_backoff_ms=40, sweep_interval=0)
    yield broker
    stop_workers()
    broker.flush_all()
    broker.close()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def paid_orders(session: Session, count: int) -> list[int]:
    """``count`` new orders (buyer b<n>@, seller s<n>@example.com), each paid and committed; the transitions' ids."""
    orders = [Order(buyer=Person(name=f"B{n}", email=f"b{n}@example.com"),
                    seller=Person(name=f"S{n}", email=f"s{n}@example.com")) for n in range(count)]
    session.add_all(orders)
    session.commit()
    ids = [order.pay().id for order in orders]
    session.commit()
    return ids


@pytest.fixture
def order(session: Session) -> Order:
    """A committed new order: Bea buys from Sam, two watchers."""
    order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                  seller=Person(name="Sam", email="sam@example.com"),
                  watchers=["w1@example.com", "Wes <w2@example.com>"])
    session.add(order)
    session.commit()
    return order


@pytest.fixture
def count(engine: Engine) -> Callable[[type], int]:
    """Rows in a table, read in a fresh session (so uncommitted work is not counted)."""

    def count(table: type) -> int:
        with Session(engine) as fresh:
            return int(fresh.scalar(select(func.count()).select_from(table)) or 0)

    return count


# --- Real services: PostgreSQL, Redis, RabbitMQ, an SMTP server, dramatiq worker processes --------

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).parents[1]


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


@dataclass
class SMTPServer:
    """An aiosmtpd server on loopback that keeps every message it accepts."""

    host: str
    port: int
    received: list[Any] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    reply: str = "250 OK"
    refused: int = 0
    delay: float = 0.0
    hidden: tuple[str, ...] = ()  # EHLO keywords not offered, e.g. ("SMTPUTF8", "8BITMIME")

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        """Offer what aiosmtpd offers but :attr:`hidden`."""
        session.host_name = hostname
        return [line for line in responses if line[4:].split(" ")[0] not in self.hidden]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept and keep the message (after :attr:`delay` seconds), or answer :attr:`reply` when not a 2xx."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.reply.startswith("2"):
            self.refused += 1
            return self.reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.received.append(message)
            self.arrived.notify_all()
        return self.reply

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Any]:
        """The messages received once there are at least ``count`` (or all there are at the deadline)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)


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


@dataclass(frozen=True)
class HTTPReply:
    """What the HTTP server answers: a status, headers and a body; ``hang`` never answers (until
    teardown), ``hang_up`` closes the connection after answering without saying so."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False
    hang_up: bool = False


@dataclass(frozen=True)
class HTTPRequest:
    """One request the HTTP server received."""

    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes
    port: int  # the client's port: one per connection
    at: float  # time.monotonic() on arrival


class HTTPServer:
    """A real HTTP/1.1 server on loopback (keep-alive) that records requests and answers from a script.

    :meth:`answer` sets the replies: each request takes the next, and the last one repeats.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = owner.record(HTTPRequest(self.command, self.path, headers, body, self.client_address[1],
                                                 time.monotonic()))
                if reply.hang:
                    owner.released.wait(30)
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                self.close_connection = reply.hang_up

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def shutdown_request(self, request: Any) -> None:
                super().shutdown_request(request)
                owner.hung_up.set()

        self.requests: list[HTTPRequest] = []
        self.replies: list[HTTPReply] = [HTTPReply()]
        self.released = threading.Event()  # set at teardown: hanging handlers return
        self.hung_up = threading.Event()  # set whenever the server closes a connection
        self._lock = threading.Lock()
        self._server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/hooks/tidings"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def answer(self, *replies: HTTPReply) -> None:
        """Answer the next requests with ``replies`` in turn, the last one from then on."""
        with self._lock:
            self.replies = list(replies)

    def record(self, request: HTTPRequest) -> HTTPReply:
        with self._lock:
            self.requests.append(request)
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def stop(self, timeout: float = 5.0) -> None:
        """Release hanging handlers, stop serving and close the socket; wait for the thread (bounded)."""
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the HTTP server thread did not stop within {timeout} s"


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


@dataclass
class WorkerCommand:
    """A running ``tidings worker`` (the supervisor) and the file its output goes to."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        """The pids of its worker processes now (read from /proc)."""
        return children_of(self.process.pid)


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    return [p for p, state, ppid, _ in _processes() if ppid == pid and state != "Z"]


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``."""
    return [p for p, state, _, group in _processes() if group == pgid and state != "Z"]


def _processes() -> list[tuple[int, str, int, int]]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            found.append((int(entry), fields[0], int(fields[1]), int(fields[2])))
    return sorted(found)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL it."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass


@pytest.fixture
def restore_jobs() -> Iterator[None]:
    """Put jobs back on a fresh StubBroker after a test that pointed it at a real broker."""
    yield
    stop_workers()
    fresh = StubBroker()
    fresh.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=fresh)  # closes the real broker it had built


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each real broker in turn."""
    return str(request.getfixturevalue(f"{request.param}_url"))


def create_lending_tables(engine: Engine) -> None:
    """The lending example's tables and Tidings' own."""
    from examples.lending.models import Base as LendingBase

    LendingBase.metadata.create_all(engine)
    workflow.metadata.create_all(engine)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on the test's PostgreSQL schema, with the lending example's tables."""
    engine = create_engine(pg_url)
    create_lending_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def restore_registry() -> Iterator[None]:
    """Notifiers a test declares are forgotten after it, so they do not answer other tests' transitions."""
    from notifiers import registry

    by_name, by_transition = dict(registry._by_name), {k: list(v) for k, v in registry._by_transition.items()}
    accepts = dict(registry._accepts)
    yield
    registry._accepts = accepts
    registry._by_name.clear()
    registry._by_name.update(by_name)
    registry._by_transition.clear()
    registry._by_transition.update(by_transition)


@pytest.fixture
def shop(pg_url: str) -> Iterator[Engine]:
    """The test shop's tables and Tidings' own on the test's PostgreSQL schema."""
    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    """Poll ``check`` every 0.1 s until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def delivery_statuses(engine: Engine) -> Counter[str]:
    """How many deliveries are in each status, read in a fresh session."""
    with Session(engine) as session:
        return Counter(session.scalars(select(Delivery.status)))


def worker_env(database_url: str, broker_url: str, queue: str, smtp: SMTPServer, **more: str) -> dict[str, str]:
    """The TIDINGS_* variables of a worker process delivering to ``smtp``."""
    return {"TIDINGS_DATABASE_URL": database_url, "TIDINGS_BROKER_URL": broker_url, "TIDINGS_QUEUE": queue,
            "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": smtp.host, "TIDINGS_SMTP_PORT": str(smtp.port),
            **more}


def _port_outside_the_ephemeral_range() -> int:
    """A free port below Linux's ephemeral range (32768-60999).

    While the proxy is cut, a client retrying to connect to an ephemeral port can be given
    that very port as its own source port and connect to itself (a TCP self-connect), which
    then holds the port and keeps :meth:`TCPProxy.restore` from listening on it again.
    """
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


class TCPProxy:
    """Forwards a local port to a service; :meth:`cut` drops every connection and refuses new ones.

    :meth:`hang` drops them too, and leaves new ones unanswered, as a host that is down does: a
    client's connect waits for its timeout instead of failing at once.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _port_outside_the_ephemeral_range()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._silent: list[socket.socket] = []
        self.restore()

    def restore(self) -> None:
        """Accept connections again."""
        for sock in self._silent:
            sock.close()
        self._silent = []
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        listener.settimeout(0.2)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        """Close the listening socket and every forwarded connection (none is accepted after this returns)."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            self._acceptor.join(timeout=5)
            assert not self._acceptor.is_alive(), "the proxy's accepting thread did not stop within 5 s"
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def hang(self) -> None:
        """:meth:`cut`, then listen with a full accept queue: the kernel drops every new SYN, unanswered."""
        self.cut()
        silent = socket.socket()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", self.port))
        silent.listen(0)
        self._silent = [silent, socket.create_connection(("127.0.0.1", self.port), timeout=5)]  # the one it holds

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile: this connection must not survive it
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


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
