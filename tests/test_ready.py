"""/api/ready: a replica takes traffic only when its database and its storage both answer."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.storage import ObjectInfo
from tests.conftest import unavailable


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3Head:
    """The one Storage method /api/ready calls, over boto3 and real HTTP."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        self.bucket = bucket
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="test-access-key", aws_secret_access_key="test-secret-key",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
        )

    def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return ObjectInfo(size=answer["ContentLength"], content_type=answer.get("ContentType"))


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        unavailable("moto[server] is not installed")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _ready(context: AppContext) -> tuple[int, dict[str, str]]:
    with TestClient(create_api(context)) as client:
        response = client.get("/api/ready")
    return response.status_code, response.json()


def test_ready_when_database_and_storage_answer(settings, sqlite_url, s3_endpoint) -> None:
    bucket = f"luster-ready-{uuid.uuid4().hex[:8]}"
    storage = S3Head(s3_endpoint, bucket)
    storage.client.create_bucket(Bucket=bucket)
    context = AppContext(settings, db=make_engine(sqlite_url), storage=storage)
    assert _ready(context) == (200, {"status": "ok", "database": "ok", "storage": "ok"})


def test_not_ready_when_storage_is_unreachable(settings, sqlite_url) -> None:
    # A port nothing listens on: boto3 fails to connect, as it would with a dead endpoint.
    storage = S3Head(f"http://127.0.0.1:{_free_port()}", "luster-photos")
    context = AppContext(settings, db=make_engine(sqlite_url), storage=storage)
    assert _ready(context) == (503, {"detail": "storage unavailable"})


def test_not_ready_when_storage_refuses_the_credentials(settings, sqlite_url) -> None:
    class RefusingStorage:
        def head(self, key: str) -> ObjectInfo | None:
            raise PermissionError(f"403 Forbidden on HEAD {key}")

    context = AppContext(settings, db=make_engine(sqlite_url), storage=RefusingStorage())
    assert _ready(context) == (503, {"detail": "storage unavailable"})


def test_not_ready_when_the_database_is_down(settings, tmp_path, s3_endpoint) -> None:
    storage = S3Head(s3_endpoint, "luster-photos")
    broken = AppContext(settings, db=make_engine(f"sqlite:///{tmp_path}/missing-dir/luster.db"), storage=storage)
    assert _ready(broken) == (503, {"detail": "database unavailable"})


def test_health_stays_up_when_only_storage_is_down(settings, sqlite_url) -> None:
    storage = S3Head(f"http://127.0.0.1:{_free_port()}", "luster-photos")
    context = AppContext(settings, db=make_engine(sqlite_url), storage=storage)
    with TestClient(create_api(context)) as client:
        assert client.get("/api/health").status_code == 200
        assert client.get("/api/ready").status_code == 503
