"""${message}

Describe what the revision changes, and what it does to the rows already there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: tuple[str, ...] | None = ${repr(branch_labels)}
depends_on: str | None = ${repr(depends_on)}


def upgrade() -> None:
    """What the models have that the previous revision did not."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Back to the previous revision."""
    ${downgrades if downgrades else "pass"}
