"""a job keeps what its corrections did; a shoot can blur faces and plates by default

Revision ID: 0015
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("corrections", sa.JSON(), nullable=True))
    with op.batch_alter_table("shoots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auto_privacy", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("shoots", schema=None) as batch_op:
        batch_op.drop_column("auto_privacy")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("corrections")
