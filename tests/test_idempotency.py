"""`Idempotency-Key` on POST /api/jobs and /api/jobs/batch: a retry of one click queues one job."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.models import IdempotencyKey, utcnow
from luster_app.pages import shoot_view
from luster_app.services.credits import grant_adjustment
from tests.engines_for_tests import InvertEngine, indexed_image
from tests.jobs_support import add_photo, jobs_by_status, user_with_credits, worker_context


@pytest.fixture
def app(settings, db_url) -> Iterator[tuple[AppContext, TestClient]]:
    """The API on SQLite and on PostgreSQL."""
    context = worker_context(settings, db_url, InvertEngine())
    with TestClient(create_api(context)) as client:
        yield context, client
    context.db.dispose()


def _credits(client: TestClient, headers: dict[str, str]) -> dict[str, int]:
    return client.get("/api/me", headers=headers).json()["credits"]


def test_the_same_key_twice_gets_the_first_answer_and_queues_one_job(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 5)
    photo = add_photo(context, user, indexed_image(1))
    body = {"asset_id": str(photo.id), "preset": "sky", "params": {"style": "sunset"}}
    keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}

    first = client.post("/api/jobs", json=body, headers=keyed)
    again = client.post("/api/jobs", json=body, headers=keyed)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert jobs_by_status(context) == {"queued": 1}
    assert _credits(client, headers) == {"balance": 5, "reserved": 1, "available": 4}
    # Without a key, or with another, a request is a new one.
    assert client.post("/api/jobs", json=body, headers=headers).json()["id"] != first.json()["id"]
    other = client.post("/api/jobs", json=body, headers={**headers, "Idempotency-Key": "another"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert jobs_by_status(context) == {"queued": 3}


def test_the_same_key_on_a_batch_replays_the_whole_batch(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 5)
    photos = [str(add_photo(context, user, indexed_image(n)).id) for n in (1, 2, 3)]
    keyed = {**headers, "Idempotency-Key": "click-1"}
    body = {"asset_ids": photos, "preset": "enhance"}

    first = client.post("/api/jobs/batch", json=body, headers=keyed)
    again = client.post("/api/jobs/batch", json=body, headers=keyed)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and len(first.json()["jobs"]) == 3
    assert _credits(client, headers) == {"balance": 5, "reserved": 3, "available": 2}


def test_the_same_key_with_a_different_body_is_422_and_queues_nothing(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 5)
    first, second = (str(add_photo(context, user, indexed_image(n)).id) for n in (1, 2))
    keyed = {**headers, "Idempotency-Key": "click-1"}
    assert client.post("/api/jobs", json={"asset_id": first, "preset": "enhance"}, headers=keyed).status_code == 201

    other_photo = client.post("/api/jobs", json={"asset_id": second, "preset": "enhance"}, headers=keyed)
    other_endpoint = client.post("/api/jobs/batch", json={"asset_ids": [first], "preset": "enhance"}, headers=keyed)

    for response in (other_photo, other_endpoint):
        assert response.status_code == 422
        assert "different request" in response.json()["detail"]
    assert jobs_by_status(context) == {"queued": 1}


def test_a_key_is_per_user(app) -> None:
    context, client = app
    alice, alice_headers = user_with_credits(context, 1)
    bob, bob_headers = user_with_credits(context, 1)
    for user, headers in ((alice, alice_headers), (bob, bob_headers)):
        photo = add_photo(context, user, indexed_image(1))
        response = client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "enhance"},
                               headers={**headers, "Idempotency-Key": "shared"})
        assert response.status_code == 201 and response.json()["asset_id"] == str(photo.id)
    assert jobs_by_status(context) == {"queued": 2}


def test_a_key_older_than_24_hours_is_a_new_request(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 5)
    body = {"asset_id": str(add_photo(context, user, indexed_image(1)).id), "preset": "enhance"}
    keyed = {**headers, "Idempotency-Key": "yesterday"}
    first = client.post("/api/jobs", json=body, headers=keyed).json()
    with context.session() as session:
        session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=24, minutes=1)))
        session.commit()
    again = client.post("/api/jobs", json=body, headers=keyed)
    assert again.status_code == 201 and again.json()["id"] != first["id"]


def test_a_refused_request_is_not_remembered(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 0)
    body = {"asset_id": str(add_photo(context, user, indexed_image(1)).id), "preset": "enhance"}
    keyed = {**headers, "Idempotency-Key": "before-buying"}
    assert client.post("/api/jobs", json=body, headers=keyed).status_code == 402
    with context.session() as session:
        grant_adjustment(session=session, user_id=user.id, delta=1, reason="bought")
    assert client.post("/api/jobs", json=body, headers=keyed).status_code == 201


def test_an_unusable_key_is_422(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 1)
    body = {"asset_id": str(add_photo(context, user, indexed_image(1)).id), "preset": "enhance"}
    for key in ("x" * 256, "  "):
        response = client.post("/api/jobs", json=body, headers={**headers, "Idempotency-Key": key})
        assert response.status_code == 422
    assert jobs_by_status(context) == {}


@pytest.mark.parametrize("path", ["/api/jobs", "/api/jobs/batch"])
def test_duplicates_sent_at_the_same_moment_queue_one_job(app, path: str) -> None:
    context, client = app
    user, headers = user_with_credits(context, 10)
    for attempt in range(3):
        photo = str(add_photo(context, user, indexed_image(attempt)).id)
        body = {"asset_id": photo, "preset": "enhance"} if path == "/api/jobs" else {"asset_ids": [photo], "preset": "enhance"}
        keyed = {**headers, "Idempotency-Key": f"double-tap-{attempt}"}
        barrier = threading.Barrier(4)

        def send(_: int) -> tuple[int, str]:
            barrier.wait()
            response = client.post(path, json=body, headers=keyed)
            return response.status_code, response.text

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(send, range(4)))
        assert {status for status, _ in answers} == {201}, answers
        assert len({text for _, text in answers}) == 1
        assert jobs_by_status(context) == {"queued": attempt + 1}
    assert _credits(client, headers) == {"balance": 10, "reserved": 3, "available": 7}


def test_the_web_apps_enhance_dispatched_twice_with_its_clicks_key_queues_once(app) -> None:
    """What the shoot page's Enhance confirm calls (pages/shoot_view.enhance) with the key minted
    when its dialog opened: a repeated dispatch of that click queues nothing more."""
    context, _ = app
    user, _ = user_with_credits(context, 5)
    photos = [str(add_photo(context, user, indexed_image(n)).id) for n in (1, 2)]
    key = uuid.uuid4().hex
    assert shoot_view.enhance(context, user.id, photos, "enhance", {}, key) == 2
    assert shoot_view.enhance(context, user.id, photos, "enhance", {}, key) == 2
    assert jobs_by_status(context) == {"queued": 2}
    assert shoot_view.enhance(context, user.id, photos, "enhance", {}, uuid.uuid4().hex) == 2  # a new click
    assert jobs_by_status(context) == {"queued": 4}
