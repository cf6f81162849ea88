"""sign-in requests: which browser asked for a link for which email (sign-in links work only there)

Revision ID: 0012
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import luster_app.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("browser_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("created_at", luster_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", luster_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sign_in_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_requests_browser_hash"), ["browser_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sign_in_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_requests_browser_hash"))
    op.drop_table("sign_in_requests")
