"""Error tracking and server errors: every 5xx answer is logged with its traceback and request id;
with SENTRY_DSN set, errors of the app and the worker reach Sentry (a local envelope endpoint),
tagged with their request or job id and without a secret, token, signed URL or email in them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import sentry_sdk
from fastapi.testclient import TestClient
from sqlalchemy import text

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.error_tracking import configure_error_tracking, scrub_event
from luster_app.logging import configure_logging
from luster_app.services.jobs import JobOptions, create_job
from tests.billing_support import Shop, fake_stripe, shop  # noqa: F401  (fixtures)
from tests.conftest import make_user
from tests.engines_for_tests import InvertEngine, indexed_image
from tests.fakes.sentry_server import FakeSentry
from tests.jobs_support import add_photo, user_with_credits, worker_context
from tests.metrics_support import free_port
from worker.worker import Worker

SIGNED_URL = "https://bucket.example.com/u/s/a/original.jpg?X-Amz-Signature=abc123def456&X-Amz-Credential=AKIAEXAMPLE"


@pytest.fixture
def logs(settings: Settings) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging(settings, stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def fake_sentry() -> Iterator[FakeSentry]:
    fake = FakeSentry().start()
    yield fake
    fake.stop()


@pytest.fixture
def tracking(fake_sentry: FakeSentry, shop: Shop) -> Iterator[FakeSentry]:
    """Error tracking on, with the shop's settings (its Stripe secrets) and the fake's DSN."""
    assert configure_error_tracking(shop.context.settings.model_copy(update={"sentry_dsn": fake_sentry.dsn}))
    yield fake_sentry
    sentry_sdk.get_client().close()


def _break_the_stripe_events_table(shop: Shop) -> None:
    # The database fails under the handler (a dropped table stands in for an outage mid-request).
    with shop.context.db.begin() as conn:
        conn.execute(text("ALTER TABLE stripe_events RENAME TO stripe_events_gone"))


def _paid_event(shop: Shop) -> tuple[dict, str]:
    user, headers = shop.new_user()
    session_id = shop.checkout(headers)
    return shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id)), user.email


def test_a_webhook_answering_500_logs_its_traceback_with_the_request_id(shop: Shop, logs: io.StringIO) -> None:
    event, _ = _paid_event(shop)
    _break_the_stripe_events_table(shop)
    response = shop.deliver(event)
    assert response.status_code == 500
    assert response.json() == {"detail": f"event {event['id']} could not be handled now; Stripe will deliver it again"}
    request_id = response.headers["X-Request-ID"]
    output = logs.getvalue()
    [line] = [line for line in output.splitlines() if "answered 500" in line]
    assert " ERROR " in line and f"request_id={request_id}" in line and "POST /api/webhooks/stripe" in line
    traceback = output[output.index(line):]
    assert "Traceback (most recent call last)" in traceback and "stripe_events" in traceback


def test_a_service_error_answering_5xx_is_logged_too(settings: Settings, sqlite_url: str, logs: io.StringIO) -> None:
    # Stripe unreachable (nothing listens on its port): "Buy" answers 502 PaymentUnavailable.
    unreachable = f"http://127.0.0.1:{free_port()}"
    context = AppContext(settings.model_copy(update={"stripe_secret_key": "sk_test_unreachable0000", "stripe_api_base": unreachable}),
                         db=make_engine(sqlite_url))
    _, headers = make_user(context)
    with TestClient(create_api(context)) as client:
        response = client.post("/api/billing/checkout", json={"pack": "starter"}, headers=headers)
    context.db.dispose()
    assert response.status_code == 502
    request_id = response.headers["X-Request-ID"]
    output = logs.getvalue()
    [line] = [line for line in output.splitlines() if f"request_id={request_id}" in line and "answered 502" in line]
    assert "Traceback (most recent call last)" in output[output.index(line):]


def test_unset_dsn_turns_error_tracking_off(settings: Settings) -> None:
    assert not configure_error_tracking(settings)


def test_a_web_error_reaches_sentry_tagged_and_without_secrets(shop: Shop, tracking: FakeSentry, logs: io.StringIO) -> None:
    event, email = _paid_event(shop)
    _break_the_stripe_events_table(shop)
    signed_body, signature = shop.stripe.sign(event)
    response = shop.client.post(
        f"/api/webhooks/stripe?token={SIGNED_URL}", content=signed_body, headers={**signature, "Cookie": f"owner={email}"}
    )
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    sentry_sdk.flush()
    received = tracking.wait_for_event(lambda e: e.get("tags", {}).get("request_id") == request_id)
    assert "answered 500" in received["logentry"]["message"]
    assert len([e for e in tracking.events if e.get("tags", {}).get("request_id") == request_id]) == 1  # reported once
    assert received["exception"]["values"][-1]["stacktrace"]["frames"]  # the traceback went with it
    everything = tracking.everything_received()
    settings = shop.context.settings
    for secret in (settings.stripe_webhook_secret, settings.stripe_secret_key, signature["Stripe-Signature"], email,
                   "abc123def456", "AKIAEXAMPLE"):
        assert secret not in everything


def test_a_worker_error_reaches_sentry_with_the_job_id_and_no_secret(shop: Shop, tracking: FakeSentry, db_url: str) -> None:
    settings = shop.context.settings

    class BrokenEngine(InvertEngine):
        name = "test-broken"

        def edit(self, request):  # noqa: ANN001, ANN202
            # A bug whose message drags in what must never leave: a secret, an email, a signed URL.
            raise RuntimeError(f"engine bug near {settings.stripe_secret_key} for owner@example.com at {SIGNED_URL}")

    context = worker_context(settings, db_url, BrokenEngine(), job_max_attempts=1)
    try:
        user, _ = user_with_credits(context, 1)
        photo = add_photo(context, user, indexed_image(1))
        with context.session() as session:
            job = create_job(session=session, user_id=user.id, asset_id=photo.id, preset="enhance", params={},
                             options=JobOptions.for_context(context))
        assert Worker(context, concurrency=1, drain=True).run() == 0
    finally:
        context.db.dispose()
    sentry_sdk.flush()
    received = tracking.wait_for_event(lambda e: e.get("tags", {}).get("job_id") == str(job.id))
    assert received["tags"]["user_id"] == str(user.id)
    assert received["exception"]["values"][-1]["type"] == "RuntimeError"
    everything = tracking.everything_received()
    for secret in (settings.stripe_secret_key, "owner@example.com", "abc123def456", "AKIAEXAMPLE"):
        assert secret not in everything


def test_scrubbing_keeps_the_ids_and_drops_what_identifies_or_authorises() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    event = {
        "message": f"failed for jane@example.com with Bearer {token} on {SIGNED_URL} and my-secret-value",
        "request": {"url": f"http://testserver/api/jobs?sig=zzz&email=jane@example.com", "method": "POST",
                    "headers": {"Authorization": f"Bearer {token}", "Stripe-Signature": "t=1,v1=deadbeef", "User-Agent": "pytest"},
                    "cookies": {"session": token}, "data": {"email": "jane@example.com"}, "query_string": "sig=zzz"},
        "user": {"id": "u-1", "email": "jane@example.com", "ip_address": "10.0.0.1"},
        "breadcrumbs": {"values": [{"message": f"signed {SIGNED_URL}"}]},
    }
    scrubbed = scrub_event(event, None, secrets=["my-secret-value"])
    flat = str(scrubbed)
    for gone in ("jane@example.com", token, "abc123def456", "my-secret-value", "deadbeef", "zzz", "10.0.0.1"):
        assert gone not in flat
    assert scrubbed["request"] == {"method": "POST", "url": "http://testserver/api/jobs", "headers": {"User-Agent": "pytest"}}
    assert scrubbed["user"] == {"id": "u-1"}


def test_an_unhandled_error_reaches_sentry_without_the_callers_token_or_email(shop: Shop, tracking: FakeSentry) -> None:
    user, headers = shop.new_user()
    with shop.context.db.begin() as conn:  # the database fails under a signed-in request
        conn.execute(text("ALTER TABLE credits RENAME TO credits_gone"))
    with TestClient(create_api(shop.context), raise_server_exceptions=False) as client:
        response = client.get("/api/me", headers=headers)
    assert response.status_code == 500
    sentry_sdk.flush()
    received = tracking.wait_for_event(lambda e: "exception" in e and "credits" in str(e["exception"]))
    assert received["tags"]["request_id"]  # the answer came from outside the request-id middleware: no header to match
    assert received["tags"]["user_id"] == str(user.id)
    everything = tracking.everything_received()
    token = headers["Authorization"].removeprefix("Bearer ")
    for secret in (token, token.split(".")[-1], user.email, shop.context.settings.stripe_secret_key):
        assert secret not in everything
