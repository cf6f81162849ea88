"""A job's life through the real worker (in this process): success, retries, permanent failures."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.services.jobs import JobOptions, create_job
from tests.engines_for_tests import FlakyEngine, InvertEngine, RefusingEngine, WaitingEngine, indexed_image
from tests.jobs_support import add_photo, balance, job_charges, outputs_of, user_with_credits, worker_context
from worker.worker import Worker


@pytest.fixture
def make_app(settings, db_url) -> Iterator:
    """Build the API and an in-process worker around one engine, on SQLite and on PostgreSQL."""
    contexts: list[AppContext] = []
    clients: list[TestClient] = []

    def build(engine, **overrides) -> tuple[AppContext, TestClient]:
        context = worker_context(settings, db_url, engine, **overrides)
        client = TestClient(create_api(context))
        contexts.append(context)
        clients.append(client)
        return context, client

    yield build
    for client in clients:
        client.close()
    for context in contexts:
        context.db.dispose()


def _queue(client: TestClient, headers: dict[str, str], photo_id, preset: str = "enhance") -> str:
    response = client.post("/api/jobs", json={"asset_id": str(photo_id), "preset": preset}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _drain(context: AppContext, concurrency: int = 2) -> None:
    assert Worker(context, concurrency=concurrency, drain=True).run() == 0


def test_a_job_produces_an_output_and_costs_one_credit(make_app) -> None:
    context, client = make_app(InvertEngine())
    user, headers = user_with_credits(context, 3)
    photo = add_photo(context, user, Image.new("RGB", (60, 40), (200, 150, 100)))
    job_id = _queue(client, headers, photo.id)

    _drain(context)

    job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "succeeded"
    assert job["attempts"] == 1
    assert job["error_code"] is None
    assert [event["type"] for event in job["events"]] == ["created", "claimed", "succeeded"]
    [output] = job["outputs"]
    assert (output["version"], output["width"], output["height"]) == (1, 60, 40)
    assert output["url"] and output["thumb_url"]
    [stored] = outputs_of(context, job["id"])
    assert re.search(rf"/outputs/{job_id}_[0-9a-f]{{16}}_v1\.jpg$", stored.storage_key)  # per attempt
    assert stored.parent_asset_id == photo.id
    result = Image.open(io.BytesIO(context.storage.get_bytes(stored.storage_key)))
    red, green, blue = result.convert("RGB").getpixel((30, 20))
    assert abs(red - 55) < 6 and abs(green - 105) < 6 and abs(blue - 155) < 6  # the engine's inverted colours
    assert balance(context, user.id) == 2
    assert job_charges(context, user.id) == 1


def test_each_output_of_a_photo_gets_the_next_version(make_app) -> None:
    context, client = make_app(WaitingEngine(0.2))
    user, headers = user_with_credits(context, 3)
    photo = add_photo(context, user, indexed_image(1))
    job_ids = [_queue(client, headers, photo.id, preset) for preset in ("enhance", "dusk", "sky")]

    _drain(context, concurrency=3)  # all three render at once and race for version numbers

    outputs = [output for job_id in job_ids for output in outputs_of(context, job_id)]
    assert sorted(output.version for output in outputs) == [1, 2, 3]
    for output in outputs:
        assert re.search(rf"/outputs/{output.job_id}_[0-9a-f]{{16}}_v{output.version}\.jpg$", output.storage_key)
        assert context.storage.head(output.storage_key) is not None
    assert balance(context, user.id) == 0


def test_two_transient_failures_then_success_is_one_charge(make_app) -> None:
    engine = FlakyEngine(failures=2)
    context, client = make_app(engine)
    user, headers = user_with_credits(context, 1)
    job_id = _queue(client, headers, add_photo(context, user, indexed_image(1)).id)

    _drain(context)

    job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "succeeded"
    assert job["attempts"] == 3
    assert engine.calls == 3
    assert [event["type"] for event in job["events"]] == [
        "created", "claimed", "attempt_failed", "claimed", "attempt_failed", "claimed", "succeeded",
    ]
    assert [e["detail"]["attempt"] for e in job["events"] if e["type"] == "claimed"] == [1, 2, 3]
    assert len(job["outputs"]) == 1
    assert balance(context, user.id) == 0
    assert job_charges(context, user.id) == 1


def test_a_permanent_failure_fails_at_once_without_charge(make_app) -> None:
    engine = RefusingEngine("content_policy", "The image service declined this photo; try another preset.")
    context, client = make_app(engine)
    user, headers = user_with_credits(context, 1)
    job_id = _queue(client, headers, add_photo(context, user, indexed_image(1)).id)

    _drain(context)

    job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "failed"
    assert job["attempts"] == 1
    assert engine.calls == 1
    assert job["error_code"] == "content_policy"
    assert "declined this photo; try another preset" in job["error_message"]
    assert "No credit was charged" in job["error_message"]
    assert job["outputs"] == []
    assert job["events"][-1]["type"] == "failed"
    assert balance(context, user.id) == 1
    assert job_charges(context) == 0
    me = client.get("/api/me", headers=headers).json()["credits"]
    assert me == {"balance": 1, "reserved": 0, "available": 1}


def test_transient_failures_stop_at_max_attempts(make_app) -> None:
    engine = FlakyEngine(failures=100)
    context, client = make_app(engine, job_max_attempts=3)
    user, headers = user_with_credits(context, 1)
    job_id = _queue(client, headers, add_photo(context, user, indexed_image(1)).id)

    _drain(context)

    job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "failed"
    assert job["attempts"] == 3
    assert engine.calls == 3
    assert job["error_code"] == "engine_unavailable"
    assert "We tried 3 times" in job["error_message"]
    assert balance(context, user.id) == 1


def test_an_unreadable_original_fails_with_a_message(make_app) -> None:
    context, client = make_app(InvertEngine())
    user, headers = user_with_credits(context, 1)
    photo = add_photo(context, user, indexed_image(1))
    context.storage.put_bytes(photo.storage_key, b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="image/png")
    job_id = _queue(client, headers, photo.id)

    _drain(context)

    job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "failed"
    assert job["error_code"] == "unreadable_image"
    assert "Upload it again" in job["error_message"]
    assert balance(context, user.id) == 1


def test_a_retry_waits_for_its_backoff(make_app) -> None:
    """A transient failure schedules the job in the future; a drained worker leaves it queued."""
    context, client = make_app(FlakyEngine(failures=1), job_retry_base_seconds=3600, job_retry_max_seconds=3600)
    user, headers = user_with_credits(context, 1)
    job_id = _queue(client, headers, add_photo(context, user, indexed_image(1)).id)

    _drain(context)

    job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "queued"
    assert job["attempts"] == 1
    assert job["error_code"] == "engine_unavailable"
    assert "Retrying automatically" in job["error_message"]
    retry_in = job["events"][-1]["detail"]["retry_in_seconds"]
    assert 1800 <= retry_in <= 3600
    assert client.get("/api/me", headers=headers).json()["credits"]["available"] == 0  # still reserved


def test_jobs_created_by_the_service_run_too(make_app) -> None:
    """The service function (shared by API, UI and worker) and the worker agree."""
    context, _ = make_app(InvertEngine())
    user, _ = user_with_credits(context, 2)
    photo = add_photo(context, user, indexed_image(1))
    with context.session() as session:
        job = create_job(
            session=session, user_id=user.id, asset_id=photo.id, preset="lawn", params={}, options=JobOptions.for_context(context)
        )

    _drain(context)

    assert [output.version for output in outputs_of(context, job.id)] == [1]
    assert balance(context, user.id) == 1
