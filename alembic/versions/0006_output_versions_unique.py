"""output versions unique per photo

Revision ID: 0006
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("uq_assets_parent_version", "assets", ["parent_asset_id", "version"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_assets_parent_version", table_name="assets")
