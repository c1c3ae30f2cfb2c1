"""A test run stopped with SIGTERM leaves none of the processes its tests started behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.processes import ROOT, wait_for

_STARTS_A_WORKER = """
import os, subprocess, time
from pathlib import Path

def test_starts_a_process_group_then_waits():
    child = subprocess.Popen(["sleep", "300"], start_new_session=True)
    Path(os.environ["LEFTOVER_PID"]).write_text(str(child.pid))
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_run_stopped_with_sigterm_kills_the_process_groups_its_tests_started(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(_STARTS_A_WORKER)
    mark = tmp_path / "pid"
    with (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "tests.leftovers", "-p", "no:cacheprovider",
                                "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_inner.py")],
                               cwd=ROOT, env={**os.environ, "LEFTOVER_PID": str(mark), "PYTHONPATH": str(ROOT)},
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: mark.exists() and mark.read_text() != "", timeout=60)
        leftover = int(mark.read_text())
        assert _alive(leftover)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=30)
    assert wait_for(lambda: not _alive(leftover), timeout=10), "the sleeping child outlived the stopped run"
