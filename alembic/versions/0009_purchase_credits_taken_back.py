"""purchases count the credits their refunds and disputes hold back, so the two never overlap

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkout_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_credits_taken", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("dispute_credits_taken", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("checkout_sessions", schema=None) as batch_op:
        batch_op.drop_column("dispute_credits_taken")
        batch_op.drop_column("refund_credits_taken")
