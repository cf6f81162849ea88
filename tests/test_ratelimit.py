"""The shared rate limiter: the limit holds per bucket, and buckets are independent."""

import pytest

from luster_app.services.errors import RateLimited
from luster_app.services.ratelimit import check_rate_limit


def test_limit_holds_per_bucket(context) -> None:
    with context.session() as session:
        for _ in range(3):
            check_rate_limit(session=session, bucket="email:a", limit=3, window_seconds=60, message="slow down")
        with pytest.raises(RateLimited, match="slow down"):
            check_rate_limit(session=session, bucket="email:a", limit=3, window_seconds=60, message="slow down")
        check_rate_limit(session=session, bucket="email:b", limit=3, window_seconds=60, message="slow down")


def test_old_hits_fall_out_of_the_window(context) -> None:
    with context.session() as session:
        check_rate_limit(session=session, bucket="ip:1", limit=1, window_seconds=0, message="x")
        check_rate_limit(session=session, bucket="ip:1", limit=1, window_seconds=0, message="x")
