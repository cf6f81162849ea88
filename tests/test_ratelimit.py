"""The shared rate limiter: the limit holds per bucket, buckets are independent, a bucket earns
its requests back over its window, and a burst from many connections admits exactly the limit."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from luster_app.context import AppContext
from luster_app.models import RateLimitBucket
from luster_app.services.errors import RateLimited
from luster_app.services.ratelimit import IDLE_BUCKET_SECONDS, check_rate_limit, forget_idle_buckets


def test_limit_holds_per_bucket(context) -> None:
    with context.session() as session:
        for _ in range(3):
            check_rate_limit(session=session, bucket="email:a", limit=3, window_seconds=60, message="slow down")
        with pytest.raises(RateLimited, match="slow down") as refused:
            check_rate_limit(session=session, bucket="email:a", limit=3, window_seconds=60, message="slow down")
        assert refused.value.retry_after == 20  # one request is earned back every 60 / 3 seconds
        check_rate_limit(session=session, bucket="email:b", limit=3, window_seconds=60, message="slow down")


def test_old_hits_fall_out_of_the_window(context) -> None:
    with context.session() as session:
        check_rate_limit(session=session, bucket="ip:1", limit=1, window_seconds=0, message="x")
        check_rate_limit(session=session, bucket="ip:1", limit=1, window_seconds=0, message="x")


def test_a_bucket_earns_requests_back_over_its_window(context) -> None:
    with context.session() as session:
        for _ in range(2):
            check_rate_limit(session=session, bucket="jobs:u", limit=2, window_seconds=20, message="x")
        with pytest.raises(RateLimited):
            check_rate_limit(session=session, bucket="jobs:u", limit=2, window_seconds=20, message="x")
        # 10.5 s pass (the bucket's clock moved back): one request is earned back every 10 s.
        session.execute(sa.update(RateLimitBucket).values(refilled_at=RateLimitBucket.refilled_at - 10.5))
        check_rate_limit(session=session, bucket="jobs:u", limit=2, window_seconds=20, message="x")
        with pytest.raises(RateLimited):
            check_rate_limit(session=session, bucket="jobs:u", limit=2, window_seconds=20, message="x")


def test_a_burst_on_postgres_admits_exactly_the_limit(pg_context: AppContext) -> None:
    def request(_: int) -> bool:
        with pg_context.session() as session:
            try:
                check_rate_limit(session=session, bucket="checkouts:u", limit=10, window_seconds=3600, message="x")
            except RateLimited:
                return False
            time.sleep(0.01)  # the caller's work, with the bucket's row still held
            session.commit()
            return True

    with ThreadPoolExecutor(8) as pool:
        admitted = list(pool.map(request, range(30)))
    assert admitted.count(True) == 10


def test_idle_buckets_are_forgotten_and_busy_ones_kept(context) -> None:
    with context.session() as session:
        for bucket in ("ip:old", "ip:new"):
            check_rate_limit(session=session, bucket=bucket, limit=5, window_seconds=60, message="x")
        session.execute(sa.update(RateLimitBucket).where(RateLimitBucket.bucket == "ip:old")
                        .values(refilled_at=time.time() - IDLE_BUCKET_SECONDS - 1))
        session.commit()
        assert forget_idle_buckets(session=session) == 1
        assert session.execute(sa.select(RateLimitBucket.bucket)).scalars().all() == ["ip:new"]
