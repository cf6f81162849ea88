"""bracket groups: frames of one shoot merged into one photo; each photo's exposure from EXIF

Revision ID: 0017
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from luster_app.models import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "brackets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("shoot_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["shoot_id"], ["shoots.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_brackets_user_id", "brackets", ["user_id"])
    op.create_index("ix_brackets_shoot_id", "brackets", ["shoot_id"])
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bracket_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("exposure", sa.JSON(), nullable=True))
        batch_op.create_index("ix_assets_bracket_id", ["bracket_id"])
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bracket_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("bracket_id")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index("ix_assets_bracket_id")
        batch_op.drop_column("exposure")
        batch_op.drop_column("bracket_id")
    op.drop_index("ix_brackets_shoot_id", table_name="brackets")
    op.drop_index("ix_brackets_user_id", table_name="brackets")
    op.drop_table("brackets")
