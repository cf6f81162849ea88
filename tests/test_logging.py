"""Structured logs: JSON in production with the request, job and user ids; no tokens or secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.logging import configure_logging, log_context
from tests.conftest import make_user

JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiI0MiIsImVtYWlsIjoiYUBiLmMifQ.MEUCIQDx3-signature_part"
S3_SIGNED_URL = (
    "https://luster-photos.4f1c2a.r2.cloudflarestorage.com/u1/s1/a1/original.jpg"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=9c1e0b8f%2F20250101%2Fauto%2Fs3%2Faws4_request"
    "&X-Amz-Date=20250101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=5d41402abc4b2a76b9719d911017c592ae1f8e9b7c3d"
)
LOCAL_SIGNED_URL = "http://localhost:8000/api/files/u1/s1/a1/thumb.jpg?expires=1735689600&sig=q1w2e3r4t5y6u7i8o9p0"
STRIPE_KEY = "sk_live_51NzQe2ExAmPlEkEy0000000000"
DB_PASSWORD = "pg-pass-7c6b5a49"


class LogCapture:
    """What Luster's configured handler wrote, line by line."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    @property
    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines]


def _configured(settings: Settings) -> Iterator[LogCapture]:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging(settings, stream=stream)
    try:
        yield LogCapture(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def production_logs(settings: Settings) -> Iterator[LogCapture]:
    prod = settings.model_copy(update={
        "luster_env": "production", "stripe_secret_key": STRIPE_KEY,
        "database_url": f"postgresql+psycopg://luster:{DB_PASSWORD}@db.internal:5432/luster",
    })
    yield from _configured(prod)


@pytest.fixture
def development_logs(settings: Settings) -> Iterator[LogCapture]:
    yield from _configured(settings.model_copy(update={"luster_env": "development"}))


def test_production_request_log_is_json_with_the_request_id(context, production_logs: LogCapture) -> None:
    with TestClient(create_api(context)) as client:
        response = client.get("/api/health", headers={"X-Request-ID": "edge-7f3a9c"})
    assert response.headers["X-Request-ID"] == "edge-7f3a9c"
    [access] = [r for r in production_logs.records if r["logger"] == "luster.access"]
    assert access["request_id"] == "edge-7f3a9c"
    assert access["level"] == "INFO"
    assert access["message"].startswith("GET /api/health 200")


def test_a_request_without_an_id_gets_one_and_the_log_carries_the_user(context, production_logs: LogCapture) -> None:
    user, headers = make_user(context)
    with TestClient(create_api(context)) as client:
        response = client.get("/api/me", headers=headers)
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) >= 16
    [access] = [r for r in production_logs.records if r["logger"] == "luster.access"]
    assert access["request_id"] == request_id
    assert access["user_id"] == str(user.id)


def test_an_unsafe_incoming_request_id_is_replaced(context, production_logs: LogCapture) -> None:
    with TestClient(create_api(context)) as client:
        response = client.get("/api/health", headers={"X-Request-ID": "x\" injected=1 " + "a" * 200})
    assert "injected" not in response.headers["X-Request-ID"]
    assert "injected" not in production_logs.stream.getvalue()


def test_worker_job_lines_carry_job_and_user_ids(production_logs: LogCapture) -> None:
    with log_context(job_id="job-1", user_id="user-9"):
        logging.getLogger("worker").info("job %s succeeded", "job-1")
    logging.getLogger("worker").info("idle")
    job_line, idle_line = production_logs.records
    assert (job_line["job_id"], job_line["user_id"], job_line["message"]) == ("job-1", "user-9", "job job-1 succeeded")
    assert "job_id" not in idle_line


def test_tokens_signed_urls_and_secrets_are_redacted(production_logs: LogCapture) -> None:
    log = logging.getLogger("luster.test")
    log.info("auth header Authorization: Bearer %s", JWT)
    log.info("raw token %s in a message", JWT)
    log.info("uploading to %s", S3_SIGNED_URL)
    log.info("thumbnail at %s", LOCAL_SIGNED_URL)
    log.info("magic link /auth/confirm?token_hash=pkce_8f7e6d5c4b3a&type=magiclink")
    log.info("stripe call with %s", STRIPE_KEY)
    log.info("database at postgresql+psycopg://luster:%s@db.internal:5432/luster", DB_PASSWORD)
    output = production_logs.stream.getvalue()
    for secret in (JWT, "signature_part", "5d41402abc4b2a76b9719d911017c592ae1f8e9b7c3d", "9c1e0b8f",
                   "q1w2e3r4t5y6u7i8o9p0", "pkce_8f7e6d5c4b3a", STRIPE_KEY, DB_PASSWORD):
        assert secret not in output
    messages = [r["message"] for r in production_logs.records]
    assert messages[0] == "auth header Authorization: Bearer [REDACTED]"
    assert messages[2] == "uploading to https://luster-photos.4f1c2a.r2.cloudflarestorage.com/u1/s1/a1/original.jpg?[REDACTED]"
    assert messages[3] == "thumbnail at http://localhost:8000/api/files/u1/s1/a1/thumb.jpg?[REDACTED]"
    assert messages[6] == "database at postgresql+psycopg://luster:[REDACTED]@db.internal:5432/luster"


def test_a_disclosure_pages_token_is_redacted(production_logs: LogCapture) -> None:
    """The token is the page's capability: a line naming its path (a 500's) must not hand it out."""
    token = "Xq3-vR8_pL2mN7kT4wY9zB6cD1fG5hJ0sA8eU3iO2rQ"
    logging.getLogger("luster.api").error("GET /disclosure/%s/originals/abc answered 500: boom", token)
    assert token not in production_logs.stream.getvalue()
    assert production_logs.records[-1]["message"] == "GET /disclosure/[REDACTED]/originals/abc answered 500: boom"


def test_a_traceback_is_redacted_too(production_logs: LogCapture) -> None:
    try:
        raise RuntimeError(f"upstream refused {S3_SIGNED_URL} with key {STRIPE_KEY}")
    except RuntimeError:
        logging.getLogger("luster.test").exception("engine call failed")
    [record] = production_logs.records
    assert "RuntimeError: upstream refused" in record["exception"]
    assert STRIPE_KEY not in record["exception"]
    assert "X-Amz-Signature" not in record["exception"]


def test_development_logs_are_readable_text(development_logs: LogCapture) -> None:
    with log_context(request_id="req-1"):
        logging.getLogger("luster.test").warning("upload rejected: %s", "not an image")
    [line] = development_logs.lines
    assert "WARNING luster.test [request_id=req-1] upload rejected: not an image" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
