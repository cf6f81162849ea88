"""A token-bucket rate limiter kept in the database, so every app replica shares it.

A bucket admits `limit` requests at once and earns them back at `limit` per window, so it
admits on average `limit` a window. It is one row, updated in place by one statement: the
cost of a check does not grow with the traffic it has counted, and the row's lock (held
until the caller's transaction ends) is the only serialisation it needs.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import case, delete, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from luster_app.db import is_postgres
from luster_app.models import RateLimitBucket
from luster_app.services.errors import RateLimited


def check_rate_limit(*, session: Session, bucket: str, limit: int, window_seconds: int, message: str) -> None:
    """Count one request in `bucket`; raise RateLimited (429) if it is over `limit` per window.

    Runs inside the caller's transaction: a request that fails later is still counted, which
    is what a limiter against guessing and flooding wants.
    """
    now = time.time()
    earn_per_second = limit / window_seconds if window_seconds > 0 else 1e12  # no window: full at once
    buckets = RateLimitBucket.__table__
    # Never negative: another replica's clock a little ahead, or this request's time read before
    # it waited for the row, must not take tokens away.
    elapsed = case((buckets.c.refilled_at < now, literal(now) - buckets.c.refilled_at), else_=literal(0.0))
    earned = buckets.c.tokens + elapsed * literal(earn_per_second)
    held = case((earned > limit, literal(limit, buckets.c.tokens.type)), else_=earned)
    dialect = postgresql if is_postgres(session.get_bind()) else sqlite
    # A new bucket starts full, less this request; a known one admits only with a whole token
    # (an UPSERT's WHERE leaves the row as it was, and returns nothing, when it does not).
    admit = (
        dialect.insert(buckets).values(bucket=bucket, tokens=limit - 1, refilled_at=now)
        .on_conflict_do_update(index_elements=["bucket"], set_={"tokens": held - 1, "refilled_at": now}, where=held >= 1)
        .returning(buckets.c.tokens)
    )
    left = session.execute(admit).scalar()
    if left is None or left < 0:
        # A token is earned back within window / limit seconds.
        raise RateLimited(message, retry_after=max(1, math.ceil(window_seconds / limit)) if limit > 0 else window_seconds)


# Longer than any window here (the longest is an hour): a bucket unused this long is full
# again, so forgetting it changes no answer.
IDLE_BUCKET_SECONDS = 86_400


def forget_idle_buckets(*, session: Session) -> int:
    """Delete the buckets unused for IDLE_BUCKET_SECONDS, committed; returns how many went."""
    idle = delete(RateLimitBucket).where(RateLimitBucket.refilled_at < time.time() - IDLE_BUCKET_SECONDS)
    forgotten = session.execute(idle).rowcount
    session.commit()
    return forgotten
