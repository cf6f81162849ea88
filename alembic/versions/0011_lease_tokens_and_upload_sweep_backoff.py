"""a lease token per claim (only that attempt may finish, retry, fail or release the job), and a
per-photo backoff for the abandoned-upload sweep

Revision ID: 0011
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import luster_app.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sweep_failures", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("sweep_after", luster_app.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_column("sweep_after")
        batch_op.drop_column("sweep_failures")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("lease_token")
