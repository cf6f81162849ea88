"""Both storage backends behave the same through the Storage interface, over real HTTP for S3."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from luster_app.config import Settings
from luster_app.storage import build_storage
from luster_app.storage.local import LocalStorage
from luster_app.storage.s3 import S3Storage, default_upload_method
from tests.fixtures_storage import BACKENDS, Backend, build_backend, s3_settings


@pytest.fixture(params=BACKENDS[:2])  # the interface does not depend on the upload method
def any_backend(request: pytest.FixtureRequest, settings: Settings, sqlite_url: str) -> Iterator[Backend]:
    yield from build_backend(request.param, settings, sqlite_url, request)


def test_objects_round_trip(any_backend: Backend) -> None:
    storage = any_backend.storage
    storage.put_bytes("u/s/a/original.jpg", b"\xff\xd8\xff photo bytes", content_type="image/jpeg")
    assert storage.get_bytes("u/s/a/original.jpg") == b"\xff\xd8\xff photo bytes"
    with storage.open_read("u/s/a/original.jpg") as stream:
        assert stream.read(3) == b"\xff\xd8\xff"
    info = storage.head("u/s/a/original.jpg")
    assert info is not None
    assert (info.size, info.content_type) == (len(b"\xff\xd8\xff photo bytes"), "image/jpeg")


def test_missing_objects_read_as_absent(any_backend: Backend) -> None:
    storage = any_backend.storage
    assert storage.head("u/s/a/nothing.jpg") is None
    with pytest.raises(FileNotFoundError):
        storage.get_bytes("u/s/a/nothing.jpg")
    storage.delete("u/s/a/nothing.jpg")  # absent is fine


def test_delete_removes_the_object(any_backend: Backend) -> None:
    storage = any_backend.storage
    storage.put_bytes("u/s/a/thumb.jpg", b"thumb", content_type="image/jpeg")
    storage.delete("u/s/a/thumb.jpg")
    assert storage.head("u/s/a/thumb.jpg") is None
    assert any_backend.stored_keys() == set()


def test_signed_get_url_downloads_with_the_given_file_name(any_backend: Backend) -> None:
    any_backend.storage.put_bytes("u/s/a/original.jpg", b"photo", content_type="image/jpeg")
    url = any_backend.storage.signed_get_url("u/s/a/original.jpg", expires_in=60, download_name="Front door é.jpg")
    response = any_backend.fetch(url)
    assert response.status_code == 200
    assert response.content == b"photo"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="Front door e.jpg"')
    assert "filename*=UTF-8''Front%20door%20%C3%A9.jpg" in disposition


def test_signed_get_url_without_name_is_inline(any_backend: Backend) -> None:
    any_backend.storage.put_bytes("u/s/a/thumb.jpg", b"thumb", content_type="image/jpeg")
    response = any_backend.fetch(any_backend.storage.signed_get_url("u/s/a/thumb.jpg", expires_in=60))
    assert response.status_code == 200
    assert "content-disposition" not in response.headers


def test_presigned_post_policy_pins_key_type_and_size(settings: Settings, s3_server: str, s3_bucket: str) -> None:
    storage = S3Storage.from_settings(s3_settings(settings, s3_server, s3_bucket, "post"))
    upload = storage.presign_upload("u/s/a/original.jpg", content_type="image/jpeg", size=500, max_bytes=1000, expires_in=60)
    assert upload.method == "POST"
    assert upload.fields["key"] == "u/s/a/original.jpg"
    policy = json.loads(base64.b64decode(upload.fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 1000] in conditions
    assert {"key": "u/s/a/original.jpg"} in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert {"bucket": s3_bucket} in conditions


def test_presigned_put_signs_type_and_length(settings: Settings, s3_server: str, s3_bucket: str) -> None:
    storage = S3Storage.from_settings(s3_settings(settings, s3_server, s3_bucket, "put"))
    upload = storage.presign_upload("u/s/a/original.heic", content_type="image/heic", size=500, max_bytes=1000, expires_in=60)
    assert upload.method == "PUT"
    assert upload.headers == {"Content-Type": "image/heic"}
    query = parse_qs(urlsplit(upload.url).query)
    assert urlsplit(upload.url).path.endswith(f"/{s3_bucket}/u/s/a/original.heic")
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert query["X-Amz-Expires"] == ["60"]


@pytest.mark.parametrize(
    ("endpoint", "method"),
    [
        ("https://0123456789abcdef.r2.cloudflarestorage.com", "put"),
        ("https://0123456789abcdef.eu.r2.cloudflarestorage.com", "put"),
        ("https://s3.eu-west-1.amazonaws.com", "post"),
        ("http://minio.internal:9000", "post"),
        ("", "post"),
    ],
)
def test_upload_method_is_detected_from_the_endpoint(endpoint: str, method: str) -> None:
    assert default_upload_method(endpoint) == method


def test_upload_method_setting_overrides_detection(settings: Settings) -> None:
    r2 = s3_settings(settings, "https://acct.r2.cloudflarestorage.com", "photos", "post")
    assert S3Storage.from_settings(r2).upload_method == "post"
    assert S3Storage.from_settings(r2.model_copy(update={"s3_upload_method": ""})).upload_method == "put"


def test_build_storage_picks_s3_when_configured_else_local(settings: Settings) -> None:
    assert isinstance(build_storage(settings), LocalStorage)
    assert build_storage(settings).root == settings.luster_data_dir / "storage"
    s3 = build_storage(s3_settings(settings, "http://127.0.0.1:9", "photos", ""))
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.endpoint_url, s3.upload_method) == ("photos", "http://127.0.0.1:9", "post")


def test_s3_client_is_built_once_per_thread(settings: Settings, s3_server: str, s3_bucket: str) -> None:
    import threading

    storage = S3Storage.from_settings(s3_settings(settings, s3_server, s3_bucket, ""))
    clients = []
    thread = threading.Thread(target=lambda: clients.append(storage.client))
    thread.start()
    thread.join()
    assert storage.client is storage.client
    assert clients[0] is not storage.client
