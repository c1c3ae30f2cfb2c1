"""Servers on loopback for the tests: SMTP (aiosmtpd), HTTP(S), and a TCP proxy that can cut or hang a service."""

from __future__ import annotations

import asyncio
import email
import email.policy
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any




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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
