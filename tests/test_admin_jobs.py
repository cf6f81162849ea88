"""The admin console's jobs: filters, timelines, canceling a queued job, retrying a failed one."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update

from luster_app.context import AppContext
from luster_app.models import Job, utcnow
from luster_app.services.job_queue import claim_jobs
from tests.admin_support import make_admin, queue_job
from tests.engines_for_tests import FlakyEngine, InvertEngine, RefusingEngine, indexed_image, recorded_calls
from tests.jobs_support import (
    WorkerProcess,
    add_photo,
    balance,
    job_charges,
    outputs_of,
    user_with_credits,
    worker_settings,
)
from tests.test_worker_lifecycle import make_app  # noqa: F401  (fixture: API and in-process workers on SQLite and PostgreSQL)
from worker.worker import Worker


def _drain(context: AppContext) -> None:
    assert Worker(context, concurrency=2, drain=True).run() == 0


def _events(client: TestClient, headers: dict[str, str], job_id: str) -> list[str]:
    return [event["type"] for event in client.get(f"/api/jobs/{job_id}", headers=headers).json()["events"]]


def test_a_canceled_job_is_never_run_by_a_worker_and_costs_nothing(make_app, tmp_path: Path) -> None:
    context, client = make_app(InvertEngine())
    _, admin_headers = make_admin(context)
    user, headers = user_with_credits(context, 2)
    kept = queue_job(client, headers, add_photo(context, user, indexed_image(1)).id)
    canceled = queue_job(client, headers, add_photo(context, user, indexed_image(2)).id)

    response = client.post(f"/api/admin/jobs/{canceled}/cancel", headers=admin_headers)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    assert client.get("/api/me", headers=headers).json()["credits"] == {"balance": 2, "reserved": 1, "available": 1}
    # `luster worker --drain` in its own process, with an engine that writes down every photo it edits.
    settings = worker_settings(context.settings, context.db.url.render_as_string(hide_password=False))
    worker = WorkerProcess(settings, f"record:{tmp_path / 'calls'}", drain=True, log=tmp_path / "worker.log")
    try:
        assert worker.wait(timeout=300) == 0, worker.output()
    finally:
        worker.stop()
    assert recorded_calls(tmp_path / "calls") == [1]
    job = client.get(f"/api/jobs/{canceled}", headers=headers).json()
    assert job["status"] == "canceled"
    assert "No credit was charged" in job["error_message"]
    assert [event["type"] for event in job["events"]] == ["created", "admin_cancel"]
    assert job["outputs"] == [] and outputs_of(context, canceled) == []
    assert client.get(f"/api/jobs/{kept}", headers=headers).json()["status"] == "succeeded"
    assert balance(context, user.id) == 1
    assert job_charges(context, user.id) == 1


def test_a_job_its_worker_is_processing_cannot_be_canceled(make_app) -> None:
    context, client = make_app(InvertEngine())
    _, admin_headers = make_admin(context)
    user, headers = user_with_credits(context, 1)
    job_id = queue_job(client, headers, add_photo(context, user, indexed_image(1)).id)
    with context.session() as session:
        [claimed] = claim_jobs(session=session, owner="worker-a", limit=1, lease_seconds=300)
    assert str(claimed.job.id) == job_id

    response = client.post(f"/api/admin/jobs/{job_id}/cancel", headers=admin_headers)

    assert response.status_code == 409
    assert "its worker owns it" in response.json()["detail"]
    assert client.get(f"/api/jobs/{job_id}", headers=headers).json()["status"] == "processing"


def test_a_finished_or_unknown_job_cannot_be_canceled(make_app) -> None:
    context, client = make_app(InvertEngine())
    _, admin_headers = make_admin(context)
    user, headers = user_with_credits(context, 1)
    job_id = queue_job(client, headers, add_photo(context, user, indexed_image(1)).id)
    _drain(context)

    done = client.post(f"/api/admin/jobs/{job_id}/cancel", headers=admin_headers)
    unknown = client.post("/api/admin/jobs/00000000-0000-0000-0000-000000000001/cancel", headers=admin_headers)

    assert done.status_code == 409 and "this one is succeeded" in done.json()["detail"]
    assert unknown.status_code == 404
    assert balance(context, user.id) == 0
    assert _events(client, headers, job_id) == ["created", "claimed", "succeeded"]


def test_a_retried_job_runs_again_and_is_charged_once_when_it_succeeds(make_app) -> None:
    engine = RefusingEngine("content_policy", "The image service declined this photo.")
    failing, client = make_app(engine)
    _, admin_headers = make_admin(failing)
    user, headers = user_with_credits(failing, 1)
    job_id = queue_job(client, headers, add_photo(failing, user, indexed_image(1)).id)
    _drain(failing)
    assert client.get(f"/api/jobs/{job_id}", headers=headers).json()["status"] == "failed"

    retried = client.post(f"/api/admin/jobs/{job_id}/retry", headers=admin_headers)

    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["error_code"]) == ("queued", None)
    assert client.get("/api/me", headers=headers).json()["credits"] == {"balance": 1, "reserved": 1, "available": 0}
    working, _ = make_app(InvertEngine())
    _drain(working)
    job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "succeeded"
    assert [event["type"] for event in job["events"]] == [
        "created", "claimed", "failed", "admin_retry", "claimed", "succeeded",
    ]
    assert len(job["outputs"]) == 1
    assert engine.calls == 1
    assert balance(failing, user.id) == 0
    assert job_charges(failing, user.id) == 1
    again = client.post(f"/api/admin/jobs/{job_id}/retry", headers=admin_headers)
    assert again.status_code == 409 and "Only a failed job" in again.json()["detail"]


def test_a_retry_after_the_last_attempt_gets_more_attempts(make_app) -> None:
    engine = FlakyEngine(failures=3)  # busy for three calls, then works
    context, client = make_app(engine, job_max_attempts=2)
    _, admin_headers = make_admin(context)
    user, headers = user_with_credits(context, 1)
    job_id = queue_job(client, headers, add_photo(context, user, indexed_image(1)).id)
    _drain(context)
    failed = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert (failed["status"], failed["attempts"], failed["max_attempts"]) == ("failed", 2, 2)

    retried = client.post(f"/api/admin/jobs/{job_id}/retry", json={"extra_attempts": 2}, headers=admin_headers)
    assert retried.json()["max_attempts"] == 4
    _drain(context)

    job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert (job["status"], job["attempts"], engine.calls) == ("succeeded", 4, 4)
    assert balance(context, user.id) == 0
    assert job_charges(context, user.id) == 1


def test_a_retry_needs_a_credit_the_photographer_has_free(make_app) -> None:
    context, client = make_app(RefusingEngine())
    _, admin_headers = make_admin(context)
    user, headers = user_with_credits(context, 1)
    failed = queue_job(client, headers, add_photo(context, user, indexed_image(1)).id)
    _drain(context)
    queue_job(client, headers, add_photo(context, user, indexed_image(2)).id)  # reserves the only credit

    refused = client.post(f"/api/admin/jobs/{failed}/retry", headers=admin_headers)

    assert refused.status_code == 402
    assert "grant one first" in refused.json()["detail"]
    assert client.get(f"/api/jobs/{failed}", headers=headers).json()["status"] == "failed"
    granted = client.post(f"/api/admin/users/{user.id}/credits", json={"delta": 1, "reason": "retry"}, headers=admin_headers)
    assert granted.status_code == 200
    assert client.post(f"/api/admin/jobs/{failed}/retry", headers=admin_headers).json()["status"] == "queued"
    assert client.get("/api/me", headers=headers).json()["credits"] == {"balance": 2, "reserved": 2, "available": 0}


def test_jobs_are_filtered_by_status_owner_preset_and_age(make_app) -> None:
    context, client = make_app(InvertEngine())
    _, admin_headers = make_admin(context)
    jo, jo_headers = user_with_credits(context, 3)
    sam, sam_headers = user_with_credits(context, 3)
    jo_dusk = queue_job(client, jo_headers, add_photo(context, jo, indexed_image(1)).id, "dusk")
    jo_lawn = queue_job(client, jo_headers, add_photo(context, jo, indexed_image(2)).id, "lawn")
    sam_dusk = queue_job(client, sam_headers, add_photo(context, sam, indexed_image(3)).id, "dusk")
    client.post(f"/api/admin/jobs/{jo_lawn}/cancel", headers=admin_headers)
    with context.session() as session:  # Sam's job has waited since yesterday
        session.execute(update(Job).where(Job.id == uuid.UUID(sam_dusk)).values(created_at=utcnow() - timedelta(days=1)))
        session.commit()

    def listed(**params) -> list[str]:
        response = client.get("/api/admin/jobs", params=params, headers=admin_headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["jobs"])
        return sorted(job["id"] for job in body["jobs"])

    assert listed() == sorted([jo_dusk, jo_lawn, sam_dusk])
    assert listed(status="queued") == sorted([jo_dusk, sam_dusk])
    assert listed(status="canceled") == [jo_lawn]
    assert listed(email=jo.email.upper()) == sorted([jo_dusk, jo_lawn])
    assert listed(preset="dusk") == sorted([jo_dusk, sam_dusk])
    assert listed(preset="dusk", email=sam.email) == [sam_dusk]
    assert listed(min_age_minutes=60) == [sam_dusk]
    assert listed(max_age_minutes=60) == sorted([jo_dusk, jo_lawn])
    page = client.get("/api/admin/jobs", params={"limit": 2}, headers=admin_headers).json()
    assert (len(page["jobs"]), page["total"]) == (2, 3)
    assert page["jobs"][0]["email"] in (jo.email, sam.email)
    assert client.get("/api/admin/jobs", params={"status": "lost"}, headers=admin_headers).status_code == 422
    assert client.get("/api/admin/jobs", params={"preset": "nope"}, headers=admin_headers).status_code == 422


def test_an_admin_sees_any_jobs_timeline_and_whose_it_is(make_app) -> None:
    context, client = make_app(InvertEngine())
    _, admin_headers = make_admin(context)
    user, headers = user_with_credits(context, 1)
    job_id = queue_job(client, headers, add_photo(context, user, indexed_image(1)).id)
    _drain(context)

    seen = client.get(f"/api/admin/jobs/{job_id}", headers=admin_headers).json()
    own = client.get(f"/api/jobs/{job_id}", headers=headers).json()

    assert (seen["email"], seen["user_id"]) == (user.email, str(user.id))
    assert seen["events"] == own["events"]
    assert [event["type"] for event in seen["events"]] == ["created", "claimed", "succeeded"]
    assert len(seen["outputs"]) == 1 and seen["outputs"][0]["url"]
    assert client.get(f"/api/admin/jobs/{user.id}", headers=admin_headers).status_code == 404
