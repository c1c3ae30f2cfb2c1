"""A run of the suite stopped early leaves no worker process behind: a pytest plugin (``-p tests.leftovers``).

The fixtures stop the workers they start at teardown; a run stopped with SIGTERM skips its
teardowns, and the workers, each leading a process group of its own, would outlive it. The hook
turns SIGTERM into the interruption Ctrl-C makes, and at exit kills every process group a child
of this process leads.
"""

from __future__ import annotations

import atexit
import signal
from types import FrameType

import pytest

from tests.processes import stop_leftover_groups


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Install the SIGTERM handler and the exit hook."""
    signal.signal(signal.SIGTERM, _interrupted)
    atexit.register(stop_leftover_groups)
