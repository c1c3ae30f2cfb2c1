"""Shared throttles: the budget rows of throttles of scope "channel" or "all" (``tidings_throttles``).

Rows already there: none change; a throttle of the default scope counts on its digest as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'tidings_0005'
down_revision: str | None = 'tidings_0004'
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    """What the models have that the previous revision did not."""
    op.create_table('tidings_throttles',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('recipient_ref', sa.String(length=255), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('tidings_throttles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tidings_throttles_window_end'), ['window_end'], unique=False)



def downgrade() -> None:
    """Back to the previous revision."""
    with op.batch_alter_table('tidings_throttles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tidings_throttles_window_end'))

    op.drop_table('tidings_throttles')
