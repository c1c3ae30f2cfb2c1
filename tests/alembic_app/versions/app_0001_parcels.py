"""The application's own first revision: its parcels table (branch ``app``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "app_0001"
down_revision: str | None = None
branch_labels = ("app",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "app_parcels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_app_parcels_state", "app_parcels", ["state"])


def downgrade() -> None:
    op.drop_table("app_parcels")
