"""The supervisor of ``tidings worker``: keeps N worker processes running, replaces any that exits.

Dramatiq's own master stops every process when one dies and cannot recycle one. This one:

- starts ``processes`` worker processes (``jobs.worker.process``), each a Dramatiq ``Worker``
  with the sweeper inside;
- replaces a process that was recycled (memory or message limit) at once, and one that died
  (a crash, the kernel's OOM killer, SIGKILL) after a backoff that doubles while processes
  keep dying young (0.5 s up to 30 s);
- on SIGTERM or SIGINT forwards SIGTERM to every process, lets them drain for
  ``shutdown_timeout`` seconds (plus a few for the broker connections to close), then
  SIGKILLs what is left (a repeated signal changes nothing: ``timeout`` and process-group
  kills deliver the same signal twice);
- stops with exit code 2 when a process cannot start (an application module that does not
  import): restarting would not help;
- serves the Prometheus metrics of all its processes, when given a port (``jobs.worker.exposition``).

The processes share the supervisor's process group, so ``systemctl stop`` or supervisord's
``stopasgroup`` reach them too; each one also stops by itself when the supervisor is gone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import ConfigurationError
from ..runtime import current
from .process import EXIT_CODES, EXIT_CRASH, EXIT_MEMORY, EXIT_MESSAGES, EXIT_OK, EXIT_USAGE

__all__ = ["Supervisor"]

_log = logging.getLogger(__name__)

_RECYCLED = {EXIT_MEMORY: "memory", EXIT_MESSAGES: "messages"}
_YOUNG_SECONDS = 10.0      # a process dying younger than this counts towards the backoff
_MAX_BACKOFF_SECONDS = 30.0
_CLOSE_MARGIN_SECONDS = 10.0
_POLL_SECONDS = 0.2  # beyond shutdown_timeout: Worker.stop joins consumers, the broker closes


@dataclass
class _Slot:
    """One of the N places a worker process runs in."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0           # deaths in a row of young processes
    restart_at: float | None = None
    history: list[int] = field(default_factory=list)


class Supervisor:
    """Runs and replaces worker processes; :meth:`run` returns the command's exit code.

    Args:
        modules: application modules each worker process imports (models, notifiers).
        processes: how many worker processes.
        threads: worker threads per process.
        queues: queues to consume (empty: every declared queue).
        paths: folders put first on each worker process's import path.
        shutdown_timeout: seconds a process may take to finish the messages in hand.
        max_memory_mb, max_messages: recycling limits per process (0: none).
        metrics_port, metrics_host: where to serve Prometheus metrics (port 0: no metrics).
        log_format, log_level: the worker processes' logs.
    """

    def __init__(self, modules: list[str], *, processes: int, threads: int, queues: list[str], paths: list[str],
                 shutdown_timeout: float, max_memory_mb: int = 0, max_messages: int = 0, metrics_port: int = 0,
                 metrics_host: str = "127.0.0.1", log_format: str = "text", log_level: str = "INFO") -> None:
        if processes < 1 or threads < 1:
            raise ConfigurationError("tidings worker needs at least one process (--processes, TIDINGS_WORKER_PROCESSES)"
                                     " and one thread (--threads, TIDINGS_WORKER_THREADS).")
        self.modules, self.processes, self.threads = modules, processes, threads
        self.queues, self.paths, self.shutdown_timeout = queues, paths, shutdown_timeout
        self.max_memory_mb, self.max_messages = max_memory_mb, max_messages
        self.metrics_port, self.metrics_host = metrics_port, metrics_host
        self.log_format, self.log_level = log_format, log_level
        self.slots = [_Slot(i) for i in range(processes)]
        self.restarts: dict[str, int] = {"memory": 0, "messages": 0, "crash": 0}
        self._signals = 0
        self._exposition: Any = None
        self._metrics_dir: str | None = None

    # --- running -----------------------------------------------------------------------------------

    def run(self) -> int:
        """Start the processes and keep them running until SIGTERM/SIGINT; return the exit code.

        0: every process finished its messages and stopped in time. 1: a process had to be
        killed at the deadline (its messages will be redelivered). 2: a process could not start.
        """
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._start_metrics()
            _log.info("Supervisor %d starts %d worker process(es) x %d threads for %s (shutdown timeout %s s, "
                      "memory limit %s, message limit %s, metrics %s).", os.getpid(), self.processes, self.threads,
                      self.loaded_modules(), self.shutdown_timeout,
                      f"{self.max_memory_mb} MiB" if self.max_memory_mb else "none", self.max_messages or "none",
                      f"on {self.metrics_host}:{self._exposition.port}" if self._exposition else "off")
            for slot in self.slots:
                self._start(slot)
            code = self._supervise()
            return max(code, self._stop_all())
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop_metrics()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a counter: a handler that takes a lock (Event.set) deadlocks when a second signal
        # arrives while the first handler holds it (`timeout` and group kills send two).
        self._signals += 1

    def _supervise(self) -> int:
        while not self._signals:
            time.sleep(_POLL_SECONDS)  # a signal is noticed within this; its handler only counts
            now = time.monotonic()
            for slot in self.slots:
                if slot.process is not None and (code := slot.process.poll()) is not None:
                    if self._exited(slot, code, now) == EXIT_USAGE:
                        return EXIT_USAGE
                if slot.process is None and slot.restart_at is not None and now >= slot.restart_at \
                        and not self._signals:
                    self._start(slot)
            self._gauge_processes()
        return EXIT_OK

    def _exited(self, slot: _Slot, code: int, now: float) -> int:
        assert slot.process is not None
        pid, lived = slot.process.pid, now - slot.started
        slot.process, slot.history = None, [*slot.history, code]
        self._process_gone(pid)
        if self._signals:
            return code
        if code == EXIT_USAGE:
            _log.error("Worker process %d cannot start (see its error above); stopping.", pid)
            return code
        if code in _RECYCLED:
            reason = _RECYCLED[code]
            slot.failures, slot.restart_at = 0, now
            _log.info("Worker process %d was recycled (%s limit); starting a new one.", pid, reason)
        else:
            reason = "crash"
            slot.failures = slot.failures + 1 if lived < _YOUNG_SECONDS else 1
            delay = min(_MAX_BACKOFF_SECONDS, 0.5 * 2 ** (slot.failures - 1))
            slot.restart_at = now + delay
            what = f"signal {-code}" if code < 0 else f"code {code} ({EXIT_CODES.get(code, 'unexpected')})"
            _log.warning("Worker process %d exited unexpectedly (%s) after %.1f s; replacing it in %.1f s.",
                         pid, what, lived, delay)
        self.restarts[reason] += 1
        if self._exposition is not None:
            self._exposition.supervisor.restarts.labels(reason).inc()
        return code

    def loaded_modules(self) -> str:
        """The modules each worker process imports, as the start line names them: the module list given, then
        those of ``TIDINGS_NOTIFIERS`` (marked so); ``jobs only`` when there are none."""
        from_setting = [name for name in current().settings.notifier_modules() if name not in self.modules]
        return ", ".join([*self.modules, *(f"{name} (TIDINGS_NOTIFIERS)" for name in from_setting)]) or "jobs only"

    def check(self) -> int:
        """Check once, in a process as the workers will be, that they can start; its exit code.

        The modules import and register notifiers, Tidings' tables exist, the broker lets us in;
        else the process says why in one line and exits 2 (1 when a service does not answer):
        said once, rather than by every process, or forever by consumers retrying.
        """
        process = self._popen({**self._spec(), "check": True})
        return process.wait()

    def _spec(self) -> dict[str, Any]:
        return {"modules": self.modules, "paths": self.paths, "threads": self.threads, "queues": self.queues,
                "shutdown_timeout": self.shutdown_timeout, "max_memory_mb": self.max_memory_mb,
                "max_messages": self.max_messages, "metrics": self._metrics_dir is not None,
                "parent": os.getpid(), "log_format": self.log_format, "log_level": self.log_level}

    def _start(self, slot: _Slot) -> None:
        slot.process = self._popen(self._spec())
        slot.started, slot.restart_at = time.monotonic(), None
        _log.info("Started worker process %d (slot %d).", slot.process.pid, slot.index)

    def _popen(self, spec: dict[str, Any]) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        # The same `jobs` as this process, whatever the current folder holds (the child runs with -P).
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        if self._metrics_dir is not None:
            env["PROMETHEUS_MULTIPROC_DIR"] = env["dramatiq_prom_db"] = self._metrics_dir
        # Started with SIGTERM blocked (the mask is inherited); the process unblocks it once it can drain.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            return subprocess.Popen([sys.executable, "-P", "-m", "jobs.worker.process", json.dumps(spec)], env=env)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    # --- stopping ----------------------------------------------------------------------------------

    def _stop_all(self) -> int:
        """SIGTERM every process, wait up to the shutdown timeout (and a margin), SIGKILL the rest."""
        running = [slot for slot in self.slots if slot.process is not None]
        if not running:
            return EXIT_OK
        _log.info("Supervisor %d stops %d worker process(es); each finishes the messages in hand (up to %s s).",
                  os.getpid(), len(running), self.shutdown_timeout)
        for slot in running:
            self._send(slot, signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout + _CLOSE_MARGIN_SECONDS
        code = EXIT_OK
        for slot in running:
            assert slot.process is not None
            try:
                returned = slot.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _log.error("Worker process %d did not stop in time; killing it (its messages will be redelivered).",
                           slot.process.pid)
                slot.process.kill()
                returned = slot.process.wait(timeout=10)
            if returned not in (EXIT_OK, EXIT_MEMORY, EXIT_MESSAGES):
                _log.warning("Worker process %d exited with code %s while stopping.", slot.process.pid, returned)
                code = EXIT_CRASH
            self._process_gone(slot.process.pid)
            slot.process = None
        _log.info("Supervisor %d stopped.", os.getpid())
        return code

    def _send(self, slot: _Slot, sig: int) -> None:
        if slot.process is not None and slot.process.poll() is None:
            try:
                slot.process.send_signal(sig)
            except ProcessLookupError:
                pass

    # --- metrics -----------------------------------------------------------------------------------

    def _start_metrics(self) -> None:
        if not self.metrics_port:
            return
        from .exposition import Exposition

        self._metrics_dir = tempfile.mkdtemp(prefix="tidings-metrics-")
        try:
            self._exposition = Exposition(self._metrics_dir, self.metrics_port, self.metrics_host)
        except BaseException:
            self._stop_metrics()
            raise

    def _gauge_processes(self) -> None:
        if self._exposition is not None:
            self._exposition.supervisor.processes.set(sum(slot.process is not None for slot in self.slots))

    def _process_gone(self, pid: int) -> None:
        if self._exposition is not None:
            self._exposition.process_gone(pid)

    def _stop_metrics(self) -> None:
        if self._exposition is not None:
            self._exposition.close()
            self._exposition = None
        if self._metrics_dir is not None:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            self._metrics_dir = None

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where the metrics are served, once :meth:`run` has started them."""
        return (self.metrics_host, self._exposition.port) if self._exposition is not None else None
