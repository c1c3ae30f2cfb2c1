"""A command whose output goes to a pipe closed early (``tidings status | head -1``) ends quietly: exit 0, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import workflow
from sqlalchemy import create_engine

import jobs  # noqa: F401 - its tables join workflow.metadata

TIDINGS = str(Path(sys.executable).with_name("tidings"))


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["deliveries", "--status", "sent"],
                                     ["graph"], ["sweep"], ["--help"]])
def test_a_command_writing_to_a_pipe_whose_reader_has_gone_ends_quietly(command: list[str], tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'tidings.db'}")
    workflow.metadata.create_all(engine)
    engine.dispose()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env = {**clean, "TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'tidings.db'}"}
    process = subprocess.Popen([TIDINGS, *command], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader goes before the command writes, as `head -1` does after its line
    try:
        errors = process.stderr.read().decode()
        code = process.wait(timeout=120)
    finally:
        process.stderr.close()
    assert (code, errors) == (0, "")
