"""Tidings 0.1.0: the transition log, deliveries, installation, inbox and preferences.

The schema ``workflow.metadata.create_all`` made in 0.1.0. A database made that way is stamped
with this revision (``alembic stamp tidings_0001``), then upgraded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "tidings_0001"
down_revision: str | None = None
branch_labels = ("tidings",)
depends_on: str | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the five tables of 0.1.0 and their indexes."""
    op.create_table(
        "tidings_transitions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("trigger", sa.String(128), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("dest", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("fanned_out_at", Time, nullable=True),
        sa.Column("retried_at", Time, nullable=True),
        sa.Column("held_reason", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tidings_transitions_subject", "tidings_transitions", ["model", "key"])
    op.create_index("ix_tidings_transitions_unfanned", "tidings_transitions", ["fanned_out_at", "id"])
    op.create_table(
        "tidings_deliveries",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("transition_id", Id, nullable=False),
        sa.Column("notifier", sa.String(255), nullable=False),
        sa.Column("party", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("recipient_ref", sa.String(255), nullable=False),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.Column("lease_until", Time, nullable=True),
        sa.Column("sent_at", Time, nullable=True),
        sa.ForeignKeyConstraint(["transition_id"], ["tidings_transitions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_tidings_deliveries_status_lease", "tidings_deliveries", ["status", "lease_until"])
    op.create_index("ix_tidings_deliveries_transition_id", "tidings_deliveries", ["transition_id"])
    op.create_table(
        "tidings_installation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("installation_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _inbox_and_preferences()


def _inbox_and_preferences() -> None:
    op.create_table(
        "tidings_inbox",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("party", sa.String(128), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("record_key", sa.String(128), nullable=True),
        sa.Column("trigger", sa.String(128), nullable=True),
        sa.Column("transition_id", Id, nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("read_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_tidings_inbox_recipient", "tidings_inbox", ["recipient", "id"])
    op.create_index("ix_tidings_inbox_unread", "tidings_inbox", ["recipient", "read_at"])
    op.create_table(
        "tidings_preferences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("notifier", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recipient", "notifier", "channel", name="uq_tidings_preferences_choice"),
    )
    op.create_index("ix_tidings_preferences_recipient", "tidings_preferences", ["recipient"])


def downgrade() -> None:
    """Drop the five tables (and everything in them)."""
    for table in ("tidings_preferences", "tidings_inbox", "tidings_installation", "tidings_deliveries",
                  "tidings_transitions"):
        op.drop_table(table)
