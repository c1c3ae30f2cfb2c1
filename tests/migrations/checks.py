"""The migration checks both databases run: empty to heads, 0.1.0 to heads, autogenerate empty after."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text

from tests.alembic_app import ADVICE, config, create_0_1_0, differences

TABLES = {"tidings_transitions", "tidings_deliveries", "tidings_installation", "tidings_inbox",
          "tidings_preferences", "tidings_timers", "tidings_disabled_endpoints", "app_parcels", "alembic_version"}


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _installation(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT installation_id FROM tidings_installation"))
    finally:
        engine.dispose()


def upgrade_empty(url: str) -> None:
    """Upgrade an empty database to heads; the models and the migrations must then agree."""
    command.upgrade(config(url), "heads")
    assert TABLES <= tables(url)
    found = differences(url)
    assert found == [], ADVICE + "\n".join(map(repr, found))


def upgrade_0_1_0(url: str, scratch: Path) -> dict[str, object]:
    """Make 0.1.0's schema with rows, stamp it, upgrade to heads: what the rows became."""
    create_0_1_0(url, scratch)
    installation = _installation(url)
    command.stamp(config(url), "tidings_0001")
    command.upgrade(config(url), "heads")
    assert differences(url) == []
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            deliveries = connection.execute(text(
                "SELECT id, status, due_at, claimed_at, void_unless_in, void_on FROM tidings_deliveries ORDER BY id"))
            return {
                "deliveries": [tuple(row) for row in deliveries],
                "inbox": connection.scalar(text("SELECT subject FROM tidings_inbox")),
                "preferences": connection.scalar(text("SELECT count(*) FROM tidings_preferences")),
                "installation kept": connection.scalar(text("SELECT installation_id FROM tidings_installation"))
                == installation,
            }
    finally:
        engine.dispose()


OLD_ROWS_AT_HEAD = {
    "deliveries": [(1, "sent", None, None, None, None), (2, "pending", None, None, None, None)],
    "inbox": "Shipped", "preferences": 1, "installation kept": True,
}
