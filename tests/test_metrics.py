"""Prometheus metrics: a real job and a real signed webhook move exactly the right counters, on
the web app's /metrics and on the worker's own listener; the metrics token keeps scrapers out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.guards import production_problems
from luster_app.migrations import ROOT, upgrade
from luster_app.models import AssetStatus
from tests.billing_support import Shop, fake_stripe, shop  # noqa: F401  (fixtures)
from tests.browser_support import BIN_DIRS
from tests.conftest import unavailable
from tests.engines_for_tests import indexed_image
from tests.jobs_support import add_photo, add_photos, worker_context
from tests.metrics_support import Samples, free_port, moved, parse, series_of, value
from tests.test_guards import production_settings
from worker.worker import Worker

TOKEN = "metrics-token-5f1e2d3c4b5a"


def scrape(client: TestClient, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


class RunningWorker:
    """A worker in a thread of this process, with its /healthz and /metrics listener."""

    def __init__(self, context: AppContext) -> None:
        self.worker = Worker(context, concurrency=2)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.url = f"http://127.0.0.1:{context.settings.worker_metrics_port}"

    def __enter__(self) -> RunningWorker:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.worker.stop()
        self.thread.join(60)

    def scrape_once_idle(self, owner: str) -> Samples:
        """The listener's metrics once no slot is busy: a job's counters move before its slot frees."""
        deadline = time.monotonic() + 60
        while True:
            response = self.get("/metrics")
            assert response.status_code == 200
            samples = parse(response.text)
            if value(samples, "luster_worker_slots_in_use", worker=owner) == 0 or time.monotonic() > deadline:
                return samples
            time.sleep(0.05)

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        deadline = time.monotonic() + 30  # the listener starts with the worker's thread
        while True:
            try:
                return httpx.get(self.url + path, headers={"Authorization": f"Bearer {token}"} if token else {})
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _wait_for_job(client: TestClient, headers: dict[str, str], job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_job_and_a_signed_webhook_move_the_counters_by_exactly_their_amounts(shop: Shop, db_url: str) -> None:
    client, stripe = shop.client, shop.stripe
    user, headers = shop.new_user()
    start = scrape(client)

    # A purchase: Stripe's signed event grants the pack once; its redelivery is a duplicate.
    session_id = shop.checkout(headers, "starter")
    completed = stripe.event("checkout.session.completed", stripe.pay(session_id))
    shop.deliver_ok(completed)
    shop.deliver_ok(completed)
    assert shop.balance(headers) == 10
    paid = scrape(client)
    checkout = "checkout.session.completed"
    assert moved(start, paid, "luster_stripe_events_total", type=checkout, outcome="handled") == 1
    assert moved(start, paid, "luster_stripe_events_total", type=checkout, outcome="duplicate") == 1
    assert moved(start, paid, "luster_credits_granted_total", kind="purchase") == 10
    assert moved(start, paid, "luster_http_requests_total", method="POST", route="/api/webhooks/stripe", status="200") == 2

    # A job queued through the API waits in the queue until a worker claims it.
    photo = add_photo(shop.context, user, indexed_image(1))
    response = client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "enhance"}, headers=headers)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    queued = scrape(client)
    assert moved(paid, queued, "luster_jobs_created_total", preset="enhance", engine="classic") == 1
    assert value(queued, "luster_queue_jobs", state="due") == 1
    assert value(queued, "luster_queue_oldest_due_age_seconds") >= 0
    assert value(queued, "luster_queue_up") == 1

    # The real worker with the classic engine runs it; its own listener reports what it did.
    context = worker_context(shop.context.settings, db_url, worker_metrics_port=free_port())
    try:
        with RunningWorker(context) as running:
            assert _wait_for_job(client, headers, job_id)["status"] == "succeeded"
            owner = running.worker.owner
            on_worker = running.scrape_once_idle(owner)
            assert value(on_worker, "luster_worker_slots", worker=owner) == 2
            assert value(on_worker, "luster_worker_last_claim_timestamp_seconds", worker=owner) > time.time() - 600
            assert ("luster_worker_slots_in_use", frozenset({("worker", owner)})) in on_worker
    finally:
        context.db.dispose()
    done = scrape(client)
    for samples in (on_worker, done):
        assert moved(queued, samples, "luster_jobs_finished_total", preset="enhance", engine="classic", outcome="succeeded") == 1
        assert moved(queued, samples, "luster_credits_charged_total") == 1
        assert moved(queued, samples, "luster_engine_call_duration_seconds_count", engine="classic", preset="enhance", outcome="ok") == 1
        assert moved(queued, samples, "luster_job_attempt_duration_seconds_count", preset="enhance", engine="classic", outcome="succeeded") == 1
    assert shop.balance(headers) == 9
    assert value(done, "luster_queue_jobs", state="due") == 0
    assert value(done, "luster_queue_oldest_due_age_seconds") == 0

    # Requests are counted by their route's template, never by a path holding an id.
    routes = {labels["route"] for labels in series_of(done, "luster_http_requests_total")}
    assert "/api/jobs/{job_id}" in routes
    assert not [route for route in routes if job_id in route or str(user.id) in route]
    assert moved(queued, done, "luster_http_request_duration_seconds_count", method="GET", route="/api/jobs/{job_id}") >= 1

    # A full refund after a credit was spent takes back what is left (a take-back never goes below
    # zero), and the counter moves by exactly that.
    assert value(done, "luster_credits_negative_balances") == 0
    stripe.refund(session_id, 1200)
    shop.deliver_ok(stripe.event("charge.refunded", stripe.charge(session_id)))
    assert shop.balance(headers) == 0
    refunded = scrape(client)
    assert moved(done, refunded, "luster_credits_taken_back_total", kind="refund") == 9
    assert moved(done, refunded, "luster_stripe_events_total", type="charge.refunded", outcome="handled") == 1
    assert value(refunded, "luster_credits_negative_balances") == 0


def test_a_forged_webhook_counts_as_rejected(shop: Shop) -> None:
    before = scrape(shop.client)
    event = shop.stripe.event("checkout.session.completed", {"id": "cs_forged", "object": "checkout.session"})
    assert shop.deliver(event, body=b'{"id": "evt_other"}').status_code == 400
    after = scrape(shop.client)
    assert moved(before, after, "luster_stripe_events_total", type="(unverified)", outcome="rejected") == 1
    assert moved(before, after, "luster_http_requests_total", method="POST", route="/api/webhooks/stripe", status="400") == 1


def test_uploads_completed_and_rejected_by_reason(client: TestClient, context: AppContext, user_and_headers) -> None:
    user, headers = user_and_headers
    good, bad = add_photos(context, user, [indexed_image(1), indexed_image(2)], status=AssetStatus.PENDING)
    context.storage.put_bytes(bad.storage_key, b"this is no photo at all", content_type="image/png")
    before = scrape(client)
    assert client.post(f"/api/uploads/{good.id}/complete", headers=headers).status_code == 200
    assert client.post(f"/api/uploads/{bad.id}/complete", headers=headers).status_code == 422
    assert client.post(f"/api/uploads/{bad.id}/complete", headers=headers).status_code == 422  # no second count
    after = scrape(client)
    assert moved(before, after, "luster_uploads_completed_total") == 1
    assert moved(before, after, "luster_uploads_rejected_total", reason="not_a_photo") == 1


@pytest.fixture
def guarded(settings, sqlite_url) -> Iterator[tuple[TestClient, AppContext]]:
    ctx = AppContext(settings.model_copy(update={"metrics_token": TOKEN}), db=make_engine(sqlite_url))
    with TestClient(create_api(ctx)) as client:
        yield client, ctx
    ctx.db.dispose()


def test_with_a_token_set_metrics_answer_only_to_it(guarded) -> None:
    client, _ = guarded
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "luster_" not in response.text
    assert "luster_http_requests_total" in client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text


def test_the_workers_listener_asks_for_the_token_too_but_not_for_its_health(guarded, sqlite_url) -> None:
    _, ctx = guarded
    context = worker_context(ctx.settings, sqlite_url, worker_metrics_port=free_port())
    try:
        with RunningWorker(context) as running:
            assert running.get("/metrics").status_code == 401
            assert running.get("/metrics", token="wrong").status_code == 401
            assert running.get("/metrics", token=TOKEN).status_code == 200
            assert running.get("/healthz").status_code == 200
    finally:
        context.db.dispose()


def test_the_served_app_answers_metrics_at_the_root_before_the_reflex_pages(context: AppContext) -> None:
    # What `luster serve` runs: Reflex mounts its backend and compiled pages at "" inside this
    # API app (rx.App(api_transformer=...)), after the API's own routes.
    api = create_api(context)
    api.mount("", Starlette(routes=[Route("/{page:path}", lambda _request: PlainTextResponse("a Reflex page"))]))
    with TestClient(api) as client:
        assert client.get("/metrics").text.startswith("# HELP")
        page = client.get("/shoots/" + str(uuid.uuid4()))
        assert page.text == "a Reflex page"
        routes = {labels["route"] for labels in series_of(parse(client.get("/metrics").text), "luster_http_requests_total")}
    assert "/metrics" in routes
    assert not [route for route in routes if route.startswith("/shoots/")]  # the mount's prefix, not the page's path


SERVED_APP_CHECK = """
import json
from starlette.testclient import TestClient
from luster_app.luster_app import app
client = TestClient(app())  # the ASGI app `luster serve` runs: Reflex's backend with the API mounted
answers = {path: client.get(path).status_code for path in ("/metrics", "/api/metrics", "/api/health")}
answers["text"] = client.get("/metrics").text
print(json.dumps(answers))
"""


def test_luster_serves_metrics_at_the_root_of_the_real_app(tmp_path) -> None:
    if not (BIN_DIRS[0] / "bun").exists():
        unavailable("bun is not installed in .tools (run `make setup`): Reflex compiles the app with it")
    data = tmp_path / "data"
    data.mkdir()
    upgrade(f"sqlite:///{data / 'luster.db'}")
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "LUSTER_ENV": "test", "LUSTER_DATA_DIR": str(data), "DATABASE_URL": "",
        "REFLEX_USE_SYSTEM_BUN": "1", "PATH": os.pathsep.join([*map(str, BIN_DIRS), os.environ.get("PATH", "")]),
    }
    out = subprocess.run([sys.executable, "-c", SERVED_APP_CHECK], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    answers = json.loads(out.stdout.strip().splitlines()[-1])
    assert (answers["/metrics"], answers["/api/metrics"], answers["/api/health"]) == (200, 404, 200)
    samples = parse(answers["text"])
    assert value(samples, "luster_queue_up") == 1
    assert value(samples, "luster_http_requests_total", method="GET", route="/api/health", status="200") == 1


def test_production_refuses_a_placeholder_metrics_token() -> None:
    assert production_problems(production_settings(metrics_token=TOKEN)) == []
    assert production_problems(production_settings(metrics_token="changeme")) == ["METRICS_TOKEN is a placeholder"]
