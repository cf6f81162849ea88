"""A request holds a pooled database connection only while one of its threads uses it.

FastAPI runs each sync dependency and the sync endpoint on separate thread-pool threads. If the
signed-in user's lookup kept its connection (an open read transaction) while the request waited
for a thread for its endpoint, then under load every thread could sit waiting for a connection
while every connection sat with a request waiting for a thread: nothing moves until the pool's
timeout, and the requests fail with 500s. Here, with fewer threads than requests and a one-
connection pool, every request must still succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import anyio.to_thread
import httpx
import pytest
import sqlalchemy as sa

from luster_app.api import create_api
from luster_app.context import AppContext
from tests.engines_for_tests import indexed_image
from tests.jobs_support import add_photo, jobs_by_status, user_with_credits

REQUESTS = 6


@pytest.mark.parametrize("endpoint", ["me", "jobs"])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_more_requests_than_threads_and_connections_all_succeed(settings, sqlite_url, pg_url, database, endpoint) -> None:
    # /api/me signs in through `CurrentUser` (its own thread), POST /api/jobs on the endpoint's thread.
    url = pg_url if database == "postgresql" else sqlite_url
    # One connection, and a checkout that gives up after 3 s (the default waits 30 s).
    engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=3)
    context = AppContext(settings, db=engine)
    user, headers = user_with_credits(context, REQUESTS)
    photo = add_photo(context, user, indexed_image(1))

    def send(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        if endpoint == "me":
            return http.get("/api/me", headers=headers)
        return http.post("/api/jobs", headers=headers, json={"asset_id": str(photo.id), "preset": "enhance"})

    async def burst() -> list[httpx.Response]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        transport = httpx.ASGITransport(app=create_api(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://luster.test") as http:
            return await asyncio.gather(*(send(http) for _ in range(REQUESTS)))

    try:
        responses = asyncio.run(burst())
        queued = jobs_by_status(context)
    finally:
        engine.dispose()
    assert [response.status_code for response in responses] == [200 if endpoint == "me" else 201] * REQUESTS
    assert queued == ({} if endpoint == "me" else {"queued": REQUESTS})
