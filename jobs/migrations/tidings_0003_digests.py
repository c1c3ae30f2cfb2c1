"""Digests: the tidings_digests table, each delivery's digest_id, a preference's every.

Rows already there belong to no digest, and no preference chooses a digest.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'tidings_0003'
down_revision: str | None = 'tidings_0002'
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    """What the models have that the previous revision did not."""
    op.create_table('tidings_digests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('group_key', sa.String(length=255), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('throttled', sa.Integer(), nullable=False),
    sa.Column('alone', sa.Integer(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notifier', sa.String(length=255), nullable=False),
    sa.Column('party', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('recipient_ref', sa.String(length=255), nullable=False),
    sa.Column('locale', sa.String(length=35), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('tidings_digests', schema=None) as batch_op:
        batch_op.create_index('ix_tidings_digests_status_due', ['status', 'due_at'], unique=False)

    with op.batch_alter_table('tidings_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_tidings_deliveries_digest_id'), ['digest_id'], unique=False)
        batch_op.create_foreign_key('fk_tidings_deliveries_digest_id', 'tidings_digests', ['digest_id'], ['id'])

    with op.batch_alter_table('tidings_preferences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('every', sa.String(length=16), nullable=True))



def downgrade() -> None:
    """Back to the previous revision."""
    with op.batch_alter_table('tidings_preferences', schema=None) as batch_op:
        batch_op.drop_column('every')

    with op.batch_alter_table('tidings_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tidings_deliveries_digest_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_tidings_deliveries_digest_id'))
        batch_op.drop_column('digest_id')

    with op.batch_alter_table('tidings_digests', schema=None) as batch_op:
        batch_op.drop_index('ix_tidings_digests_status_due')

    op.drop_table('tidings_digests')
