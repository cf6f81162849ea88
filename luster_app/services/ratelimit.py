"""A sliding-window rate limiter kept in the database, so every app replica shares it."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, func, select, text
from sqlmodel import Session

from luster_app.db import is_postgres
from luster_app.models import RateLimitHit, utcnow
from luster_app.services.errors import RateLimited


def check_rate_limit(*, session: Session, bucket: str, limit: int, window_seconds: int, message: str) -> None:
    """Count one request in `bucket`; raise RateLimited (429) if it is over `limit` per window.

    Runs inside the caller's transaction: a request that fails later is still counted, which
    is what a limiter against guessing and flooding wants.
    """
    _lock_bucket(session=session, bucket=bucket)
    now = utcnow()
    window_start = now - timedelta(seconds=window_seconds)
    session.execute(delete(RateLimitHit).where(RateLimitHit.bucket == bucket, RateLimitHit.at < window_start))
    count = session.execute(
        select(func.count()).select_from(RateLimitHit).where(RateLimitHit.bucket == bucket)
    ).scalar_one()
    if count >= limit:
        raise RateLimited(message, retry_after=window_seconds)
    session.add(RateLimitHit(bucket=bucket, at=now))
    session.flush()


def _lock_bucket(*, session: Session, bucket: str) -> None:
    """Serialise count-then-insert per bucket until the transaction ends, or a burst all counts below the limit.

    SQLite needs nothing: the DELETE above takes its single write lock before the count.
    """
    if is_postgres(session.get_bind()):
        key = int.from_bytes(hashlib.blake2b(bucket.encode(), digest_size=8).digest(), "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
