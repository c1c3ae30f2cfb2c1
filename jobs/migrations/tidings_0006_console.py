"""The console: its record of actions, and the delivery log's indexes its pages read by.

``tidings_console_actions`` starts empty. The two partial indexes of ``tidings_deliveries`` (when
sent, by failover provider) are built over the rows already there; while they are, writes to
that table wait.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'tidings_0006'
down_revision: str | None = 'tidings_0005'
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    """What the models have that the previous revision did not."""
    op.create_table('tidings_console_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('operator', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tidings_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_tidings_deliveries_provider', ['provider', 'status'], unique=False, postgresql_where=sa.text('provider IS NOT NULL'), sqlite_where=sa.text('provider IS NOT NULL'))
        batch_op.create_index('ix_tidings_deliveries_sent_at', ['sent_at'], unique=False, postgresql_where=sa.text('sent_at IS NOT NULL'), sqlite_where=sa.text('sent_at IS NOT NULL'))



def downgrade() -> None:
    """Back to the previous revision."""
    with op.batch_alter_table('tidings_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_tidings_deliveries_sent_at', postgresql_where=sa.text('sent_at IS NOT NULL'), sqlite_where=sa.text('sent_at IS NOT NULL'))
        batch_op.drop_index('ix_tidings_deliveries_provider', postgresql_where=sa.text('provider IS NOT NULL'), sqlite_where=sa.text('provider IS NOT NULL'))

    op.drop_table('tidings_console_actions')
