"""POST /api/jobs, POST /api/jobs/batch, GET /api/jobs/{id}: what a photographer's requests get."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.models import AssetStatus
from luster_app.services.account import close_account
from tests.engines_for_tests import InvertEngine, indexed_image
from tests.jobs_support import add_photo, add_shoot, balance, jobs_by_status, user_with_credits, worker_context


@pytest.fixture
def app(settings, db_url) -> Iterator[tuple[AppContext, TestClient]]:
    """The API on SQLite and on PostgreSQL."""
    context = worker_context(settings, db_url, InvertEngine())
    with TestClient(create_api(context)) as client:
        yield context, client
    context.db.dispose()


def _me(client: TestClient, headers: dict[str, str]) -> dict[str, int]:
    return client.get("/api/me", headers=headers).json()["credits"]


def test_a_job_is_queued_and_reserves_a_credit(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 2)
    photo = add_photo(context, user, indexed_image(1))

    response = client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "sky", "params": {"style": "sunset"}}, headers=headers)

    assert response.status_code == 201
    job = response.json()
    assert job["status"] == "queued"
    assert job["asset_id"] == str(photo.id)
    assert job["attempts"] == 0
    assert job["engine"] == "test-invert"
    assert _me(client, headers) == {"balance": 2, "reserved": 1, "available": 1}
    detail = client.get(f"/api/jobs/{job['id']}", headers=headers).json()
    assert [event["type"] for event in detail["events"]] == ["created"]
    assert detail["outputs"] == []


def test_no_available_credit_is_402_with_how_to_get_credits(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 1)
    first, second = add_photo(context, user, indexed_image(1)), add_photo(context, user, indexed_image(2))

    assert client.post("/api/jobs", json={"asset_id": str(first.id), "preset": "enhance"}, headers=headers).status_code == 201
    response = client.post("/api/jobs", json={"asset_id": str(second.id), "preset": "enhance"}, headers=headers)

    assert response.status_code == 402
    assert "Buy a credit pack" in response.json()["detail"]
    assert balance(context, user.id) == 1


def test_a_job_asked_with_a_token_refused_is_401_and_queues_nothing(app) -> None:
    # The jobs endpoints check the token on their own thread (`Caller`), not through `CurrentUser`.
    context, client = app
    user, headers = user_with_credits(context, 5)
    photo = add_photo(context, user, indexed_image(1))
    header, payload, signature = headers["Authorization"].removeprefix("Bearer ").split(".")
    forged = {"Authorization": f"Bearer {header}.{payload}.{signature[::-1]}"}
    lapsed = AppContext(context.settings.model_copy(update={"session_ttl_seconds": -60}), db=context.db)
    expired = {"Authorization": f"Bearer {lapsed.auth.issue_access_token(user_id=user.id, email=user.email)}"}
    refused_while_open = (expired, {}, {"Authorization": "Bearer not-a-token"}, forged)
    closed = headers

    for refused in (*refused_while_open, closed):
        if refused is closed:
            with context.session() as session:
                close_account(session=session, storage=context.storage, settings=context.settings, user_id=user.id)
        single = client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "enhance"}, headers=refused)
        batch = client.post("/api/jobs/batch", json={"asset_ids": [str(photo.id)], "preset": "enhance"}, headers=refused)
        assert (single.status_code, batch.status_code) == (401, 401)
        assert single.headers["WWW-Authenticate"] == "Bearer"
    assert "closed" in single.json()["detail"]
    assert jobs_by_status(context) == {}


def test_another_users_photo_is_404(app) -> None:
    context, client = app
    owner, _ = user_with_credits(context, 5)
    _, intruder_headers = user_with_credits(context, 5)
    photo = add_photo(context, owner, indexed_image(1))

    for asset_id in (photo.id, uuid.uuid4()):
        response = client.post("/api/jobs", json={"asset_id": str(asset_id), "preset": "enhance"}, headers=intruder_headers)
        assert response.status_code == 404
    assert jobs_by_status(context) == {}


def test_a_photo_still_uploading_is_409(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 5)
    photo = add_photo(context, user, indexed_image(1), status=AssetStatus.PENDING)

    response = client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "enhance"}, headers=headers)

    assert response.status_code == 409
    assert "uploading" in response.json()["detail"]


@pytest.mark.parametrize("body", [{"preset": "watercolour"}, {"preset": "sky", "params": {"style": 42, "colour": "red"}}])
def test_unknown_preset_or_bad_params_is_422(app, body) -> None:
    context, client = app
    user, headers = user_with_credits(context, 5)
    photo = add_photo(context, user, indexed_image(1))

    response = client.post("/api/jobs", json={"asset_id": str(photo.id), **body}, headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"]
    assert jobs_by_status(context) == {}


def test_batch_is_all_or_nothing_against_available_credits(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 3)
    shoot = add_shoot(context, user)
    photos = [str(add_photo(context, user, indexed_image(i), shoot=shoot).id) for i in range(5)]

    refused = client.post("/api/jobs/batch", json={"asset_ids": photos, "preset": "enhance"}, headers=headers)
    assert refused.status_code == 402
    assert "needs 5 credits and you have 3 available" in refused.json()["detail"]
    assert jobs_by_status(context) == {}

    accepted = client.post("/api/jobs/batch", json={"asset_ids": photos[:3], "preset": "enhance"}, headers=headers)
    assert accepted.status_code == 201
    assert [job["asset_id"] for job in accepted.json()["jobs"]] == photos[:3]
    assert _me(client, headers) == {"balance": 3, "reserved": 3, "available": 0}


def test_batch_with_one_foreign_photo_creates_nothing(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 5)
    other, _ = user_with_credits(context, 5)
    mine = add_photo(context, user, indexed_image(1))
    theirs = add_photo(context, other, indexed_image(2))

    response = client.post("/api/jobs/batch", json={"asset_ids": [str(mine.id), str(theirs.id)], "preset": "enhance"}, headers=headers)

    assert response.status_code == 404
    assert jobs_by_status(context) == {}


def test_another_users_job_is_404(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 1)
    _, intruder_headers = user_with_credits(context, 1)
    photo = add_photo(context, user, indexed_image(1))
    job_id = client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "enhance"}, headers=headers).json()["id"]

    assert client.get(f"/api/jobs/{job_id}", headers=intruder_headers).status_code == 404
    assert client.get(f"/api/jobs/{uuid.uuid4()}", headers=headers).status_code == 404


def test_too_many_requests_a_minute_is_429(settings, sqlite_url) -> None:
    context = worker_context(settings, sqlite_url, InvertEngine(), jobs_per_minute_per_user=2)
    with TestClient(create_api(context)) as client:
        user, headers = user_with_credits(context, 10)
        photo = add_photo(context, user, indexed_image(1))
        statuses = [
            client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "enhance"}, headers=headers).status_code
            for _ in range(3)
        ]
    assert statuses == [201, 201, 429]


def test_a_burst_of_concurrent_requests_gets_no_more_jobs_than_the_rate_limit(settings, db_url) -> None:
    """20 requests at once, 3 allowed a minute: exactly 3 queued, 17 refused with 429."""
    context = worker_context(settings, db_url, InvertEngine(), jobs_per_minute_per_user=3)
    with TestClient(create_api(context)) as client:
        user, headers = user_with_credits(context, 20)
        photo = add_photo(context, user, indexed_image(1))

        def post(_: int) -> int:
            return client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "enhance"}, headers=headers).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(post, range(20)))
        assert sorted(statuses) == [201] * 3 + [429] * 17
        assert jobs_by_status(context) == {"queued": 3}
        assert _me(client, headers) == {"balance": 20, "reserved": 3, "available": 17}
    context.db.dispose()


def test_concurrent_requests_never_spend_more_than_the_available_credits(app) -> None:
    """20 requests at once from a user with 3 credits: exactly 3 accepted, 17 refused with 402."""
    context, client = app
    user, headers = user_with_credits(context, 3)
    shoot = add_shoot(context, user)
    photos = [add_photo(context, user, indexed_image(i), shoot=shoot) for i in range(20)]

    def post(photo_id: uuid.UUID) -> int:
        return client.post("/api/jobs", json={"asset_id": str(photo_id), "preset": "enhance"}, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(post, [photo.id for photo in photos]))

    assert sorted(statuses) == [201] * 3 + [402] * 17
    assert jobs_by_status(context) == {"queued": 3}
    assert _me(client, headers) == {"balance": 3, "reserved": 3, "available": 0}
