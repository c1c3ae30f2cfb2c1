"""Worker processes in the tests: their environment, their process groups, stopping them, waiting on them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.servers import SMTPServer

ROOT = Path(__file__).parents[1]


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


def stop_leftover_groups() -> None:
    """SIGKILL every process group led by a child of this process (a worker a killed run left behind).

    Every worker a test starts leads a session of its own (``start_new_session=True``), so its
    group holds the worker processes it forked; the fixtures stop each at teardown, and this is
    the net for a run that ends before its teardowns (SIGTERM, Ctrl-C).
    """
    me = os.getpid()
    for pid, state, ppid, group in _processes():
        if ppid == me and group == pid and state != "Z":
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    """Poll ``check`` every 0.1 s until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def worker_env(database_url: str, broker_url: str, queue: str, smtp: SMTPServer, **more: str) -> dict[str, str]:
    """The TIDINGS_* variables of a worker process delivering to ``smtp``."""
    return {"TIDINGS_DATABASE_URL": database_url, "TIDINGS_BROKER_URL": broker_url, "TIDINGS_QUEUE": queue,
            "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": smtp.host, "TIDINGS_SMTP_PORT": str(smtp.port),
            **more}
