"""Tidings 0.2.0: time (delays, reminders, supersession, timeouts) and disabled webhook endpoints.

Adds the deliveries' due time, claim time and supersession rule with the partial index of held
deliveries, the ``tidings_timers`` table of timeouts and ``tidings_disabled_endpoints`` (410 Gone).
Every new column is nullable: rows of 0.1.0 stay as they were (due at once, no rule).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "tidings_0002"
down_revision = "tidings_0001"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)
DUE = "ix_tidings_deliveries_due"
COLUMNS = (("due_at", Time), ("claimed_at", Time), ("void_unless_in", sa.String(128)), ("void_on", sa.String(1000)))


def upgrade() -> None:
    """Add the columns, the index and the two tables."""
    for name, type_ in COLUMNS:
        op.add_column("tidings_deliveries", sa.Column(name, type_, nullable=True))
    op.create_index(DUE, "tidings_deliveries", ["status", "due_at"], postgresql_where=sa.text("due_at IS NOT NULL"),
                    sqlite_where=sa.text("due_at IS NOT NULL"))
    op.create_table(
        "tidings_timers",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("transition_id", Id, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("trigger", sa.String(128), nullable=False),
        sa.Column("due_at", Time, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("fired_transition_id", Id, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.ForeignKeyConstraint(["fired_transition_id"], ["tidings_transitions.id"]),
        sa.ForeignKeyConstraint(["transition_id"], ["tidings_transitions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transition_id", "trigger", name="uq_tidings_timers_transition_trigger"),
    )
    op.create_index("ix_tidings_timers_due", "tidings_timers", ["due_at", "id"],
                    postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.create_table(
        "tidings_disabled_endpoints",
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("shown", sa.String(2000), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("disabled_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("endpoint"),
    )


def downgrade() -> None:
    """Back to 0.1.0: the two tables, the index and the columns go (batch mode, for SQLite)."""
    op.drop_table("tidings_disabled_endpoints")
    op.drop_index("ix_tidings_timers_due", table_name="tidings_timers")
    op.drop_table("tidings_timers")
    op.drop_index(DUE, table_name="tidings_deliveries")
    with op.batch_alter_table("tidings_deliveries") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
