"""The embedded storage: the app's own signed endpoints play S3's role, and enforce the same limits."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from luster_app.config import Settings
from luster_app.storage.local import InvalidKey, LocalStorage, ObjectTooLarge
from tests.fixtures_storage import Backend, build_backend

KEY = "user/shoot/asset/original.jpg"


@pytest.fixture
def local(request: pytest.FixtureRequest, settings: Settings, sqlite_url: str) -> Iterator[Backend]:
    yield from build_backend("local", settings, sqlite_url, request)


def _path_and_query(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {name: values[0] for name, values in parse_qs(parts.query).items()}


def test_upload_url_stores_the_bytes(local: Backend) -> None:
    upload = local.storage.presign_upload(KEY, content_type="image/jpeg", size=5, max_bytes=100, expires_in=60)
    assert upload.method == "PUT"
    assert upload.url.startswith("http://testserver/api/files/user/shoot/asset/original.jpg?")
    assert local.send({"method": upload.method, "url": upload.url, "headers": upload.headers}, b"12345").status_code == 204
    assert local.storage.get_bytes(KEY) == b"12345"


def test_upload_past_the_signed_limit_is_413_and_keeps_nothing(local: Backend) -> None:
    upload = local.storage.presign_upload(KEY, content_type="image/jpeg", size=5, max_bytes=100, expires_in=60)
    response = local.client.put(upload.url, content=b"x" * 101, headers=upload.headers)
    assert response.status_code == 413
    assert response.json() == {"detail": "The file is larger than the upload limit."}
    assert local.stored_keys() == set()


def test_upload_with_an_unsent_length_is_still_cut_off_at_the_limit(local: Backend) -> None:
    upload = local.storage.presign_upload(KEY, content_type="image/jpeg", size=5, max_bytes=100, expires_in=60)

    def chunked() -> Iterator[bytes]:  # a generator body is sent without Content-Length
        yield from (b"x" * 40 for _ in range(5))

    response = local.client.put(upload.url, content=chunked(), headers=upload.headers)
    assert response.status_code == 413
    assert local.stored_keys() == set()


def test_changing_the_signed_limit_or_key_is_refused(local: Backend) -> None:
    upload = local.storage.presign_upload(KEY, content_type="image/jpeg", size=5, max_bytes=100, expires_in=60)
    path, query = _path_and_query(upload.url)
    raised = urlencode({**query, "max": "1000000"})
    assert local.client.put(f"{path}?{raised}", content=b"x" * 200).status_code == 403
    other = path.replace("original.jpg", "other.jpg")
    assert local.client.put(f"{other}?{urlencode(query)}", content=b"x").status_code == 403
    assert local.stored_keys() == set()


def test_expired_links_are_refused(local: Backend) -> None:
    local.storage.put_bytes(KEY, b"photo", content_type="image/jpeg")
    upload = local.storage.presign_upload(KEY, content_type="image/jpeg", size=5, max_bytes=100, expires_in=-1)
    assert local.client.put(upload.url, content=b"12345", headers=upload.headers).status_code == 403
    download = local.storage.signed_get_url(KEY, expires_in=-1)
    response = local.client.get(download)
    assert response.status_code == 403
    assert response.json() == {"detail": "This link is invalid or has expired."}


def test_download_needs_a_valid_signature(local: Backend) -> None:
    local.storage.put_bytes(KEY, b"photo", content_type="image/jpeg")
    path, query = _path_and_query(local.storage.signed_get_url(KEY, expires_in=60, download_name="a.jpg"))
    assert local.client.get(f"{path}?{urlencode(query)}").content == b"photo"
    assert local.client.get(f"{path}?{urlencode({**query, 'name': 'b.jpg'})}").status_code == 403
    assert local.client.get(f"{path}?{urlencode({**query, 'sig': 'A' * 43})}").status_code == 403
    assert local.client.get(path).status_code == 422  # no signature at all


def test_download_of_a_deleted_object_is_404(local: Backend) -> None:
    local.storage.put_bytes(KEY, b"photo", content_type="image/jpeg")
    url = local.storage.signed_get_url(KEY, expires_in=60)
    local.storage.delete(KEY)
    assert local.client.get(url).status_code == 404


@pytest.mark.parametrize("key", ["../secret", "a/../../b", "/etc/passwd", "a//b", "a\\..\\b", "a/./b"])
def test_keys_cannot_leave_the_storage_directory(local_storage: LocalStorage, key: str) -> None:
    with pytest.raises(InvalidKey):
        local_storage.path_for(key)
    with pytest.raises(InvalidKey):
        local_storage.signed_get_url(key, expires_in=60)


def test_traversal_through_the_endpoint_is_refused(local: Backend) -> None:
    secret_file = local.context.settings.luster_data_dir / "storage_url.key"
    url = local.storage.signed_get_url(KEY, expires_in=60)
    _, query = _path_and_query(url)
    for path in ("/api/files/../storage_url.key", "/api/files/%2e%2e/storage_url.key", "/api/files/a/%2e%2e/%2e%2e/x"):
        response = local.client.get(f"{path}?{urlencode(query)}")
        assert response.status_code in (403, 404)
        assert response.content != secret_file.read_bytes()


def test_secret_is_created_once_private_and_shared_by_instances(tmp_path: Path) -> None:
    first = LocalStorage(root=tmp_path / "s", secret_path=tmp_path / "k", base_url="http://app")
    url = first.signed_get_url(KEY, expires_in=60)
    second = LocalStorage(root=tmp_path / "s", secret_path=tmp_path / "k", base_url="http://app")
    _, query = _path_and_query(url)
    assert second.verify_download(KEY, expires=int(query["expires"]), download_name="", signature=query["sig"])
    assert stat.S_IMODE(os.stat(tmp_path / "k").st_mode) == 0o600
    assert len((tmp_path / "k").read_bytes()) == 32


def test_a_signature_from_another_data_dir_is_refused(tmp_path: Path) -> None:
    ours = LocalStorage(root=tmp_path / "s", secret_path=tmp_path / "k1", base_url="http://app")
    theirs = LocalStorage(root=tmp_path / "s", secret_path=tmp_path / "k2", base_url="http://app")
    _, query = _path_and_query(theirs.signed_get_url(KEY, expires_in=60))
    assert not ours.verify_download(KEY, expires=int(query["expires"]), download_name="", signature=query["sig"])


def test_receive_stops_reading_at_the_limit(local_storage: LocalStorage) -> None:
    """The body is streamed: past the limit the rest is never read, so no whole file is held."""
    consumed = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            consumed.append(1)
            yield b"x" * 65536

    with pytest.raises(ObjectTooLarge):
        asyncio.run(local_storage.receive(KEY, endless(), max_bytes=10 * 65536))
    assert len(consumed) == 11
    assert local_storage.head(KEY) is None
    assert [p for p in local_storage.root.rglob("*") if p.is_file()] == []


def test_receive_replaces_an_object_only_when_complete(local_storage: LocalStorage) -> None:
    local_storage.put_bytes(KEY, b"old", content_type="image/jpeg")

    async def too_big() -> AsyncIterator[bytes]:
        yield b"new" * 10

    with pytest.raises(ObjectTooLarge):
        asyncio.run(local_storage.receive(KEY, too_big(), max_bytes=10))
    assert local_storage.get_bytes(KEY) == b"old"


@pytest.fixture
def s3_app(request: pytest.FixtureRequest, settings: Settings, sqlite_url: str) -> Iterator[Backend]:
    yield from build_backend("s3-put", settings, sqlite_url, request)


def test_files_endpoints_are_absent_with_s3_storage(s3_app: Backend) -> None:
    assert s3_app.client.get(f"/api/files/{KEY}?expires=1&sig=x").status_code == 404
    assert s3_app.client.put(f"/api/files/{KEY}?expires=1&sig=x&max=9", content=b"x").status_code == 404
