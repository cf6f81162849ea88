"""shoot shares: a shoot's public disclosure page (AB 723), reached by an unguessable token

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import luster_app.models

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shoot_shares",
        sa.Column("shoot_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", luster_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shoot_id"], ["shoots.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("shoot_id"),
    )
    with op.batch_alter_table("shoot_shares", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shoot_shares_token"), ["token"], unique=True)
        batch_op.create_index(batch_op.f("ix_shoot_shares_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shoot_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shoot_shares_user_id"))
        batch_op.drop_index(batch_op.f("ix_shoot_shares_token"))
    op.drop_table("shoot_shares")
