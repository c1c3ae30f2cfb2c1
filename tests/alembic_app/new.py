"""Write Tidings' next revision from the models: ``python -m tests.alembic_app.new "what changed"``.

It upgrades a scratch SQLite database to ``heads`` (Tidings' and the test application's), then autogenerates the difference
between it and ``workflow.metadata`` into ``jobs/migrations/`` as ``tidings_NNNN``. Read the file
it writes: autogenerate misses renames and server-side details (see docs/operations.md).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command

from tests.alembic_app import TIDINGS_VERSIONS, config


def next_id() -> str:
    """``tidings_NNNN``, one more than the highest revision there is."""
    numbers = [int(m.group(1)) for p in TIDINGS_VERSIONS.glob("tidings_*.py")
               if (m := re.match(r"tidings_(\d{4})_", p.name))]
    return f"tidings_{max(numbers, default=0) + 1:04d}"


def main(message: str) -> Path:
    """Write the revision and return its path."""
    with tempfile.TemporaryDirectory() as scratch:
        cfg = config(f"sqlite:///{scratch}/head.db", app_metadata=False)
        command.upgrade(cfg, "heads")
        revision = next_id()
        slug = re.sub(r"\W+", "_", message.lower()).strip("_")[:40]
        script = command.revision(cfg, message, autogenerate=True, head="tidings@head", rev_id=revision,
                                  version_path=str(TIDINGS_VERSIONS))
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    target = path.with_name(f"{revision}_{slug}.py")
    path.rename(target)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit('usage: python -m tests.alembic_app.new "what changed"')
    print(f"wrote {main(sys.argv[1])}: read it, then run the migration tests")
