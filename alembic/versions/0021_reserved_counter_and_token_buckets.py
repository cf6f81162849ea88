"""credits.reserved kept by triggers on jobs; rate limits as token buckets, one row per bucket

A job create read its owner's reserved jobs with a count under the credits lock, and the rate
limiter counted a row per request in its window: both grew with the rows they count. Now the
count is a column the database keeps (a trigger on every insert, delete or status change of a
job, so no code path can forget it) and a bucket is one row updated in place.

The reserving statuses are written out here, as a migration must not follow later code: they
are `JobStatus.RESERVING` (tests/test_reserved_counter.py checks the two agree). On SQLite a
batch migration that rebuilds `jobs` drops these triggers (create them again after it: the same
test fails if not), and one that rebuilds `credits` fails while they name it (drop them first).
Every change of a job's reservation locks its owner's credits row (the trigger's UPDATE): code
that changes jobs of a photographer must lock that row first (`lock_credits`), or it can deadlock
with code that does.

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import luster_app.models

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESERVING = "('queued', 'processing', 'needs_review')"

POSTGRES_FUNCTION = f"""
CREATE FUNCTION jobs_keep_reserved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF OLD.status IN {RESERVING} THEN
            UPDATE credits SET reserved = reserved - 1 WHERE user_id = OLD.user_id;
        END IF;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        IF NEW.status IN {RESERVING} THEN
            UPDATE credits SET reserved = reserved + 1 WHERE user_id = NEW.user_id;
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""
# Fires only when a job's reserving changes (a claim, queued to processing, does not lock credits).
POSTGRES_TRIGGERS = (
    f"""CREATE TRIGGER jobs_keep_reserved_insert AFTER INSERT ON jobs FOR EACH ROW
    WHEN (NEW.status IN {RESERVING}) EXECUTE FUNCTION jobs_keep_reserved()""",
    f"""CREATE TRIGGER jobs_keep_reserved_delete AFTER DELETE ON jobs FOR EACH ROW
    WHEN (OLD.status IN {RESERVING}) EXECUTE FUNCTION jobs_keep_reserved()""",
    f"""CREATE TRIGGER jobs_keep_reserved_update AFTER UPDATE OF status, user_id ON jobs FOR EACH ROW
    WHEN ((OLD.status IN {RESERVING}) IS DISTINCT FROM (NEW.status IN {RESERVING}) OR OLD.user_id <> NEW.user_id)
    EXECUTE FUNCTION jobs_keep_reserved()""",
)
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER jobs_keep_reserved_insert AFTER INSERT ON jobs WHEN NEW.status IN {RESERVING}
    BEGIN UPDATE credits SET reserved = reserved + 1 WHERE user_id = NEW.user_id; END""",
    f"""CREATE TRIGGER jobs_keep_reserved_delete AFTER DELETE ON jobs WHEN OLD.status IN {RESERVING}
    BEGIN UPDATE credits SET reserved = reserved - 1 WHERE user_id = OLD.user_id; END""",
    f"""CREATE TRIGGER jobs_keep_reserved_update AFTER UPDATE OF status, user_id ON jobs
    WHEN (OLD.status IN {RESERVING}) <> (NEW.status IN {RESERVING}) OR OLD.user_id <> NEW.user_id
    BEGIN
        UPDATE credits SET reserved = reserved - 1 WHERE user_id = OLD.user_id AND OLD.status IN {RESERVING};
        UPDATE credits SET reserved = reserved + 1 WHERE user_id = NEW.user_id AND NEW.status IN {RESERVING};
    END""",
)
TRIGGER_NAMES = ("jobs_keep_reserved_insert", "jobs_keep_reserved_delete", "jobs_keep_reserved_update")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Running workers (the old code) may change jobs while this runs: a change committed after
        # the backfill's snapshot and before the triggers exist would be counted wrong for good.
        # Jobs first, then credits: the order the worker's finish takes them.
        op.execute("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE")
    op.create_table(
        "rate_limit_buckets",
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("bucket"),
    )
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limit_hits_bucket_at")
    op.drop_table("rate_limit_hits")

    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reserved", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE credits SET reserved = (SELECT count(*) FROM jobs"
        f" WHERE jobs.user_id = credits.user_id AND jobs.status IN {RESERVING})"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        for trigger in POSTGRES_TRIGGERS:
            op.execute(trigger)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    for name in TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON jobs" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION jobs_keep_reserved()")
    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.drop_column("reserved")

    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column("at", luster_app.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.create_index("ix_rate_limit_hits_bucket_at", ["bucket", "at"], unique=False)
    op.drop_table("rate_limit_buckets")
