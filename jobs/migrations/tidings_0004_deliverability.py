"""Deliverability: the suppression list, the failover provider of a delivery, a transition's traceparent.

Rows already there: no address is suppressed, no delivery names a provider, no transition a trace.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'tidings_0004'
down_revision: str | None = 'tidings_0003'
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    """What the models have that the previous revision did not."""
    op.create_table('tidings_suppressions',
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('address', 'channel')
    )
    with op.batch_alter_table('tidings_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider', sa.String(length=200), nullable=True))

    with op.batch_alter_table('tidings_transitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traceparent', sa.String(length=55), nullable=True))



def downgrade() -> None:
    """Back to the previous revision."""
    with op.batch_alter_table('tidings_transitions', schema=None) as batch_op:
        batch_op.drop_column('traceparent')

    with op.batch_alter_table('tidings_deliveries', schema=None) as batch_op:
        batch_op.drop_column('provider')

    op.drop_table('tidings_suppressions')
