"""Storage fixtures: moto's S3 server over real HTTP, and the app with each storage backend."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.storage.local import LocalStorage
from luster_app.storage.s3 import S3Storage

S3_REGION = "us-east-1"
S3_ACCESS_KEY = "test-access-key"
S3_SECRET_KEY = "test-secret-key"
BACKENDS = ["local", "s3-post", "s3-put"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server on a free local port, for the whole session."""
    from tests.conftest import unavailable

    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        unavailable("moto[server] is not installed")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh, empty, private bucket for this test."""
    name = f"luster-test-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
    ).create_bucket(Bucket=name)
    return name


def s3_settings(settings: Settings, endpoint: str, bucket: str, upload_method: str) -> Settings:
    return settings.model_copy(
        update={
            "s3_endpoint": endpoint,
            "s3_bucket": bucket,
            "s3_region": S3_REGION,
            "s3_access_key_id": S3_ACCESS_KEY,
            "s3_secret_access_key": S3_SECRET_KEY,
            "s3_upload_method": upload_method,
        }
    )


@dataclass
class Backend:
    """The app on one storage backend, and what a browser and a test need to drive it."""

    name: str
    context: AppContext
    client: TestClient

    @property
    def storage(self) -> LocalStorage | S3Storage:
        return self.context.storage  # type: ignore[return-value]

    def send(self, upload: dict, data: bytes, *, filename: str = "photo.jpg") -> httpx.Response:
        """Do what the browser does with presign's `upload`: POST a form or PUT the bytes."""
        url = upload["url"]
        # Local storage URLs point at the app itself; the TestClient is that app.
        http = self.client if url.startswith(self.context.settings.app_url) else httpx.Client(timeout=30)
        if upload["method"] == "POST":
            content_type = upload["fields"].get("Content-Type", "application/octet-stream")
            return http.post(url, data=upload["fields"], files={"file": (filename, data, content_type)})
        return http.put(url, content=data, headers=upload["headers"])

    def fetch(self, url: str) -> httpx.Response:
        """GET a signed URL the way a browser's <img> or download link would."""
        if url.startswith(self.context.settings.app_url):
            return self.client.get(url)
        return httpx.get(url, timeout=30)

    def stored_keys(self) -> set[str]:
        """Every object in storage: what a rejected upload must not leave behind."""
        storage = self.storage
        if isinstance(storage, LocalStorage):
            if not storage.root.exists():
                return set()
            return {str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if p.is_file()}
        pages = storage.client.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def build_backend(name: str, settings: Settings, db_url: str, request: pytest.FixtureRequest) -> Iterator[Backend]:
    if name != "local":
        endpoint = request.getfixturevalue("s3_server")
        settings = s3_settings(settings, endpoint, request.getfixturevalue("s3_bucket"), name.removeprefix("s3-"))
    context = AppContext(settings, db=make_engine(db_url))
    try:
        with TestClient(create_api(context)) as client:
            yield Backend(name=name, context=context, client=client)
    finally:
        context.db.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, settings: Settings, sqlite_url: str) -> Iterator[Backend]:
    """The app on local storage, on S3 with presigned POST, and on S3 with presigned PUT (R2)."""
    yield from build_backend(request.param, settings, sqlite_url, request)


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(root=tmp_path / "storage", secret_path=tmp_path / "storage_url.key", base_url="http://testserver")


# --- driving an upload the way the shoot page does ---

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".heic": "image/heic", ".png": "image/png", ".webp": "image/webp"}


def new_shoot(backend: Backend, headers: dict[str, str], name: str = "12 Oak Street") -> str:
    response = backend.client.post("/api/shoots", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@dataclass
class UploadResult:
    presign: httpx.Response
    sent: httpx.Response | None = None
    complete: httpx.Response | None = None

    @property
    def asset_id(self) -> str:
        return self.presign.json()["asset_id"]


def upload(
    backend: Backend,
    headers: dict[str, str],
    shoot_id: str,
    data: bytes,
    *,
    filename: str = "photo.jpg",
    content_type: str | None = None,
    declared_size: int | None = None,
    **presign_extra: object,
) -> UploadResult:
    """Presign, send the bytes to storage, then complete; stops at the first step that fails."""
    content_type = CONTENT_TYPES.get(Path(filename).suffix.lower(), "") if content_type is None else content_type
    body = {"shoot_id": shoot_id, "filename": filename, "content_type": content_type, "size": len(data) if declared_size is None else declared_size}
    result = UploadResult(presign=backend.client.post("/api/uploads/presign", json={**body, **presign_extra}, headers=headers))
    if result.presign.status_code != 200:
        return result
    result.sent = backend.send(result.presign.json()["upload"], data, filename=filename)
    result.complete = backend.client.post(f"/api/uploads/{result.asset_id}/complete", headers=headers)
    return result
