"""An application's Alembic environment, as docs/operations.md shows it: its own revisions and Tidings'.

``config(url)`` is the configuration the migration tests run; ``python -m tests.alembic_app.new
"message"`` (``make migration MESSAGE=...``) writes Tidings' next revision from the models.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from alembic.config import Config

HERE = Path(__file__).parent
#: Tidings' revisions in the source tree (where a new one is written).
TIDINGS_VERSIONS = HERE.parents[1] / "jobs" / "migrations"


def config(url: str, *, app_metadata: bool = True, tidings_metadata: bool = True) -> Config:
    """The Alembic configuration of the test application on ``url``.

    ``tidings_metadata=False`` is an application whose ``target_metadata`` leaves Tidings' tables
    out and filters them with ``jobs.migrations.include_object``; ``app_metadata=False`` compares
    Tidings' tables alone (writing Tidings' own revision).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", f"{HERE / 'versions'} jobs:migrations")
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes.update(app_metadata=app_metadata, tidings_metadata=tidings_metadata)
    return cfg


#: The commit of release 0.1.0's schema.
RELEASE_0_1_0 = "06ef42f"
_OLD_ROWS = """
import datetime as dt, sys
import jobs, notifiers, workflow
from sqlalchemy import create_engine, insert
engine = create_engine(sys.argv[1])
workflow.metadata.create_all(engine)
now = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
t = {name: workflow.metadata.tables["tidings_" + name] for name in
     ("transitions", "deliveries", "inbox", "preferences")}
with engine.begin() as c:
    c.execute(insert(t["transitions"]).values(id=1, model="Shipment", key="1", trigger="ship", source="packed",
              dest="shipped", context={}, created_at=now, fanned_out_at=now))
    for n, status in enumerate(("sent", "pending"), 1):
        c.execute(insert(t["deliveries"]).values(id=n, key=str(n) * 32, transition_id=1, notifier="ParcelMail",
                  party="recipient", channel="email", address="ann@example.com", recipient_ref="", status=status,
                  attempts=n - 1, created_at=now, updated_at=now))
    c.execute(insert(t["inbox"]).values(key="i" * 32, recipient="ann", subject="Shipped", created_at=now))
    c.execute(insert(t["preferences"]).values(recipient="ann", notifier="ParcelMail", channel="sms",
              enabled=False, updated_at=now))
"""


def extract_0_1_0(scratch: Path) -> Path:
    """Release 0.1.0's three packages, from git, into ``scratch``; returns it."""
    archive = subprocess.run(["git", "-C", str(HERE.parents[1]), "archive", RELEASE_0_1_0, "workflow", "notifiers",
                              "jobs"], check=True, capture_output=True, timeout=60).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(scratch, filter="data")
    return scratch


def create_0_1_0(url: str, scratch: Path) -> None:
    """Make release 0.1.0's tables on ``url`` with its own ``create_all``, and put a few rows in them.

    The source of that commit is taken from git into ``scratch`` and run in a child process, so
    the schema is exactly the one 0.1.0 made.
    """
    extract_0_1_0(scratch)
    env = {**os.environ, "PYTHONPATH": str(scratch)}
    done = subprocess.run([sys.executable, "-c", _OLD_ROWS, url], cwd=scratch, env=env, timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def differences(url: str) -> list[object]:
    """What autogenerate would write for the test application on ``url``: [] when it matches the models."""
    import workflow
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from tests.alembic_app.models import Base

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), [Base.metadata, workflow.metadata]))
    finally:
        engine.dispose()


#: What a failing comparison tells the developer.
ADVICE = ("Tidings' models and its migrations disagree: every schema change ships a revision. Run "
          "`make migration MESSAGE=\"what changed\"`, read the file it writes in jobs/migrations/, and "
          "see docs/operations.md, \"Schema changes\". The differences (what the models have that the "
          "migrations do not make):\n")
