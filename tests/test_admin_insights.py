"""The admin console's prompt versions, Stripe events and queue health (also GET /api/admin/stats)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.models import Job, JobStatus, utcnow
from luster_app.services.jobs import JobOptions, add_events, create_batch, event_row
from luster_app.services.queue_health import queue_health
from tests.admin_support import make_admin, queue_job
from tests.billing_support import Shop, fake_stripe, shop  # noqa: F401  (fixtures)
from tests.engines_for_tests import indexed_image
from tests.jobs_support import add_photo, add_photos, user_with_credits


@pytest.fixture
def app(settings, db_url) -> Iterator[tuple[AppContext, TestClient]]:
    context = AppContext(settings, db=make_engine(db_url))
    with TestClient(create_api(context)) as client:
        yield context, client
    context.db.dispose()


def _job(context: AppContext, job_id: str) -> Job:
    with context.session() as session:
        return session.get(Job, uuid.UUID(job_id))


def test_a_new_prompt_version_once_active_is_used_by_new_jobs_while_old_jobs_keep_theirs(app) -> None:
    context, client = app
    _, admin_headers = make_admin(context)
    user, headers = user_with_credits(context, 5)
    versions_url = "/api/admin/presets/enhance/prompt-versions"
    [seeded] = client.get(versions_url, headers=admin_headers).json()
    assert (seeded["version"], seeded["is_active"], seeded["jobs"]) == (1, True, 0)
    before = queue_job(client, headers, add_photo(context, user, indexed_image(1)).id)

    template = "Brighten this listing photo evenly and keep every object exactly where it is."
    added = client.post(versions_url, json={"template": template}, headers=admin_headers)
    assert added.status_code == 201, added.text
    assert (added.json()["version"], added.json()["is_active"]) == (2, False)
    still_old = queue_job(client, headers, add_photo(context, user, indexed_image(2)).id)
    activated = client.post(f"{versions_url}/2/activate", headers=admin_headers)
    assert activated.status_code == 200 and activated.json()["is_active"] is True
    after = queue_job(client, headers, add_photo(context, user, indexed_image(3)).id)

    assert _job(context, after).prompt_version_id == added.json()["id"]
    assert _job(context, after).prompt_text == template
    for old in (before, still_old):
        assert _job(context, old).prompt_version_id == seeded["id"]
        assert _job(context, old).prompt_text != template
    listed = client.get(versions_url, headers=admin_headers).json()
    assert [(v["version"], v["is_active"], v["jobs"]) for v in listed] == [(2, True, 1), (1, False, 2)]
    used_v1 = client.get(f"{versions_url}/1/jobs", headers=admin_headers).json()
    used_v2 = client.get(f"{versions_url}/2/jobs", headers=admin_headers).json()
    assert sorted(job["id"] for job in used_v1["jobs"]) == sorted([before, still_old])
    assert [job["id"] for job in used_v2["jobs"]] == [after]
    assert used_v2["jobs"][0]["email"] == user.email


def test_a_prompt_version_can_be_added_active_in_one_step(app) -> None:
    context, client = app
    _, admin_headers = make_admin(context)
    added = client.post(
        "/api/admin/presets/sky/prompt-versions", json={"template": "Replace the sky: {style}.", "activate": True},
        headers=admin_headers,
    ).json()
    listed = client.get("/api/admin/presets/sky/prompt-versions", headers=admin_headers).json()
    assert [(v["version"], v["is_active"]) for v in listed] == [(added["version"], True), (1, False)]
    sky = {p["name"]: p for p in client.get("/api/presets").json()["presets"]}["sky"]
    assert sky["prompt_version"] == added["version"]


def test_a_broken_template_or_a_missing_version_is_refused(app) -> None:
    context, client = app
    _, admin_headers = make_admin(context)
    url = "/api/admin/presets/enhance/prompt-versions"
    assert client.post(url, json={"template": "Use {no_such_field}."}, headers=admin_headers).status_code == 422
    assert client.post(f"{url}/9/activate", headers=admin_headers).status_code == 404
    assert client.get("/api/admin/presets/nope/prompt-versions", headers=admin_headers).status_code == 422
    assert [v["version"] for v in client.get(url, headers=admin_headers).json()] == [1]


def test_recent_stripe_events_show_what_handling_each_did(shop: Shop) -> None:  # noqa: F811
    _, admin_headers = make_admin(shop.context)
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "pro")
    paid = shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id))
    shop.deliver_ok(paid)
    other = shop.stripe.event("customer.created", {"id": "cus_1", "object": "customer"})
    shop.deliver_ok(other)

    events = shop.client.get("/api/admin/stripe-events", headers=admin_headers).json()

    assert [(e["id"], e["type"], e["outcome"]) for e in events] == [
        (other["id"], "customer.created", "ignored: not an event Luster uses"),
        (paid["id"], "checkout.session.completed", "granted 50 credits"),
    ]
    assert all(e["processed_at"] for e in events)
    limited = shop.client.get("/api/admin/stripe-events", params={"limit": 1}, headers=admin_headers).json()
    assert [e["id"] for e in limited] == [other["id"]]


def _known_queue(context: AppContext, now: datetime) -> dict[str, uuid.UUID]:
    """Ten jobs in known states: 2 queued (one waiting 30 minutes), 1 processing, 1 succeeded,
    1 canceled, and 5 failed: 2 content_policy and 1 engine_unavailable within the last hour,
    1 content_policy and 1 unreadable_image before it; 3 retried attempts, 2 of them within the hour."""
    user, _ = user_with_credits(context, 20)
    photos = add_photos(context, user, [indexed_image(i) for i in range(10)])
    with context.session() as session:
        jobs = create_batch(
            session=session, user_id=user.id, asset_ids=[p.id for p in photos], preset="enhance", params={},
            options=JobOptions.for_context(context),
        )
    states = {
        "waiting": (JobStatus.QUEUED, None, None),
        "queued": (JobStatus.QUEUED, None, None),
        "processing": (JobStatus.PROCESSING, None, None),
        "succeeded": (JobStatus.SUCCEEDED, None, 5),
        "canceled": (JobStatus.CANCELED, "canceled", 5),
        "policy-1": (JobStatus.FAILED, "content_policy", 10),
        "policy-2": (JobStatus.FAILED, "content_policy", 50),
        "busy": (JobStatus.FAILED, "engine_unavailable", 20),
        "policy-old": (JobStatus.FAILED, "content_policy", 90),
        "unreadable-old": (JobStatus.FAILED, "unreadable_image", 300),
    }
    named = {name: job.id for name, job in zip(states, jobs, strict=True)}
    with context.session() as session:
        for name, (status, code, finished_minutes_ago) in states.items():
            finished = now - timedelta(minutes=finished_minutes_ago) if finished_minutes_ago else None
            created = now - timedelta(minutes=30 if name == "waiting" else 1)
            session.execute(
                update(Job).where(Job.id == named[name])
                .values(status=status, error_code=code, finished_at=finished, created_at=created)
            )
        retries = [("busy", "engine_unavailable", 30), ("policy-1", "storage_unavailable", 25), ("policy-old", "engine_unavailable", 120)]
        rows = []
        for name, code, minutes_ago in retries:
            row = event_row(named[name], "attempt_failed", attempt=1, error_code=code, message="busy")
            rows.append({**row, "at": now - timedelta(minutes=minutes_ago)})
        add_events(session, rows)
        session.commit()
    return named


# Every status is counted, jobs held for review too (none here).
EXPECTED_BY_STATUS = {"queued": 2, "processing": 1, "needs_review": 0, "succeeded": 1, "failed": 5, "canceled": 1}
EXPECTED_FAILED = {"content_policy": 2, "engine_unavailable": 1}
EXPECTED_RETRIED = {"engine_unavailable": 1, "storage_unavailable": 1}


def test_queue_health_counts_a_known_queue(app) -> None:
    context, _ = app
    admin, _ = make_admin(context)
    now = utcnow()
    named = _known_queue(context, now)

    with context.session() as session:
        health = queue_health(session=session, admin=admin, now=now + timedelta(minutes=15))

    assert health.jobs_by_status == EXPECTED_BY_STATUS
    assert health.oldest_queued_job_id == named["waiting"]
    assert health.oldest_queued_age_seconds == 45 * 60
    # A quarter of an hour on, the content_policy failure 50 minutes before has left the hour.
    assert health.failed_last_hour == {"content_policy": 1, "engine_unavailable": 1}
    assert health.retried_last_hour == EXPECTED_RETRIED


def test_the_stats_endpoint_answers_queue_health_as_json(app) -> None:
    context, client = app
    _, admin_headers = make_admin(context)
    named = _known_queue(context, utcnow())

    stats = client.get("/api/admin/stats", headers=admin_headers).json()

    assert stats["jobs_by_status"] == EXPECTED_BY_STATUS
    assert stats["oldest_queued_job_id"] == str(named["waiting"])
    assert 30 * 60 <= stats["oldest_queued_age_seconds"] <= 30 * 60 + 600
    assert stats["failed_last_hour"] == EXPECTED_FAILED
    assert stats["retried_last_hour"] == EXPECTED_RETRIED


def test_an_empty_queue_reports_zeros_and_no_oldest_job(app) -> None:
    context, client = app
    _, admin_headers = make_admin(context)
    stats = client.get("/api/admin/stats", headers=admin_headers).json()
    assert stats["jobs_by_status"] == dict.fromkeys(EXPECTED_BY_STATUS, 0)
    assert (stats["oldest_queued_job_id"], stats["oldest_queued_age_seconds"]) == (None, None)
    assert stats["failed_last_hour"] == stats["retried_last_hour"] == {}
