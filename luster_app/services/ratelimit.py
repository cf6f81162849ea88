"""A sliding-window rate limiter kept in the database, so every app replica shares it."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, func, insert, literal, select, text
from sqlmodel import Session

from luster_app.db import is_postgres
from luster_app.models import RateLimitHit, utcnow
from luster_app.services.errors import RateLimited


def check_rate_limit(*, session: Session, bucket: str, limit: int, window_seconds: int, message: str) -> None:
    """Count one request in `bucket`; raise RateLimited (429) if it is over `limit` per window.

    Runs inside the caller's transaction: a request that fails later is still counted, which
    is what a limiter against guessing and flooding wants.
    """
    now = utcnow()
    window_start = now - timedelta(seconds=window_seconds)
    hits = RateLimitHit.__table__
    stale = delete(hits).where(hits.c.bucket == bucket, hits.c.at < window_start)
    in_window = select(func.count()).select_from(hits).where(hits.c.bucket == bucket, hits.c.at >= window_start)
    # The hit is written only while the window has room: the count and the insert are one statement.
    counted = insert(hits).from_select(
        ["bucket", "at"], select(literal(bucket), literal(now, hits.c.at.type)).where(in_window.scalar_subquery() < limit)
    ).returning(hits.c.id)
    if is_postgres(session.get_bind()):
        _lock_bucket(session=session, bucket=bucket)
        counted = counted.add_cte(stale.cte("stale"))  # pruned in the same round trip
    else:
        session.execute(stale)  # first: it takes SQLite's single write lock before the count
    if session.execute(counted).first() is None:
        raise RateLimited(message, retry_after=window_seconds)


def _lock_bucket(*, session: Session, bucket: str) -> None:
    """Serialise the count-and-insert per bucket until the transaction ends, or a burst all counts
    below the limit (the count's snapshot is taken after this lock is held)."""
    key = int.from_bytes(hashlib.blake2b(bucket.encode(), digest_size=8).digest(), "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
