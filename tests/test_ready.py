"""/api/ready: a replica takes traffic only when its database and its storage both answer."""

from __future__ import annotations

from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.storage import ObjectInfo, build_storage
from tests.fixtures_storage import free_port, s3_settings


def _s3_storage(settings, endpoint: str, bucket: str):  # noqa: ANN001, ANN202
    """The real S3 backend, as the app builds it from settings."""
    return build_storage(s3_settings(settings, endpoint, bucket, "post"))


def _ready(context: AppContext) -> tuple[int, dict[str, str]]:
    with TestClient(create_api(context)) as client:
        response = client.get("/api/ready")
    return response.status_code, response.json()


def test_ready_when_database_and_storage_answer(settings, sqlite_url, s3_server, s3_bucket) -> None:
    storage = _s3_storage(settings, s3_server, s3_bucket)
    context = AppContext(settings, db=make_engine(sqlite_url), storage=storage)
    assert _ready(context) == (200, {"status": "ok", "database": "ok", "storage": "ok"})


def test_not_ready_when_storage_is_unreachable(settings, sqlite_url) -> None:
    # A port nothing listens on: boto3 fails to connect, as it would with a dead endpoint.
    storage = _s3_storage(settings, f"http://127.0.0.1:{free_port()}", "luster-photos")
    context = AppContext(settings, db=make_engine(sqlite_url), storage=storage)
    assert _ready(context) == (503, {"detail": "storage unavailable"})


def test_not_ready_when_storage_refuses_the_credentials(settings, sqlite_url) -> None:
    class RefusingStorage:
        def head(self, key: str) -> ObjectInfo | None:
            raise PermissionError(f"403 Forbidden on HEAD {key}")

    context = AppContext(settings, db=make_engine(sqlite_url), storage=RefusingStorage())
    assert _ready(context) == (503, {"detail": "storage unavailable"})


def test_not_ready_when_the_database_is_down(settings, tmp_path, s3_server, s3_bucket) -> None:
    storage = _s3_storage(settings, s3_server, s3_bucket)
    broken = AppContext(settings, db=make_engine(f"sqlite:///{tmp_path}/missing-dir/luster.db"), storage=storage)
    assert _ready(broken) == (503, {"detail": "database unavailable"})


def test_health_stays_up_when_only_storage_is_down(settings, sqlite_url) -> None:
    storage = _s3_storage(settings, f"http://127.0.0.1:{free_port()}", "luster-photos")
    context = AppContext(settings, db=make_engine(sqlite_url), storage=storage)
    with TestClient(create_api(context)) as client:
        assert client.get("/api/health").status_code == 200
        assert client.get("/api/ready").status_code == 503
