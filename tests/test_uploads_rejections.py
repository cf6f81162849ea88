"""Anything that is not an acceptable photo is refused with a reason, and nothing is left in storage."""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from datetime import timedelta

import pytest
from sqlalchemy import update

from luster_app.config import Settings
from luster_app.models import Asset, utcnow
from tests.conftest import PHOTOS, make_user
from tests.fixtures_storage import Backend, build_backend, new_shoot, upload

JPEG = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`×`height` pixels, with one tiny compressed row of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def listed(backend: Backend, headers: dict[str, str], shoot_id: str) -> list[dict]:
    return backend.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()


@pytest.fixture
def small_limit(request: pytest.FixtureRequest, settings: Settings, sqlite_url: str):  # noqa: ANN201
    """Each backend with a 100 kB limit, so a real 160 kB photo is over it."""
    limited = settings.model_copy(update={"upload_max_bytes": 100_000})
    yield from build_backend(request.param, limited, sqlite_url, request)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.jpg", b"Shopping list: milk, eggs, a new lens.\n" * 20, "Not a photo: upload JPEG, HEIC, PNG, WebP or camera RAW files."),
        ("cut-off.jpg", JPEG[: len(JPEG) // 2], "The file is truncated or damaged."),
        ("huge.png", png_declaring(30000, 30000), "too many pixels"),
        ("looks-like-png.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "The file is damaged or not a readable image."),
    ],
    ids=["text-named-jpg", "truncated-jpeg", "png-30000x30000", "broken-png"],
)
def test_bad_files_are_rejected_with_a_reason_and_deleted(backend: Backend, name: str, data: bytes, reason: str) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    result = upload(backend, headers, shoot_id, data, filename=name)
    assert result.presign.status_code == 200
    assert result.sent.status_code in (200, 204)
    assert result.complete.status_code == 422
    detail = result.complete.json()["detail"]
    assert reason in detail or reason.lower() in detail.lower()
    [asset] = listed(backend, headers, shoot_id)
    assert (asset["status"], asset["reject_reason"]) == ("rejected", detail)
    assert asset["original_url"] is None and asset["thumb_url"] is None
    assert backend.stored_keys() == set()


def test_a_zero_byte_file_is_refused_at_presign(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    result = upload(backend, headers, shoot_id, b"", filename="empty.jpg")
    assert result.presign.status_code == 422
    assert result.presign.json() == {"detail": "empty.jpg is empty."}
    assert listed(backend, headers, shoot_id) == []


def test_a_zero_byte_upload_is_rejected_at_complete(backend: Backend) -> None:
    """A client that declared bytes but sent none: the stored object decides."""
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    result = upload(backend, headers, shoot_id, b"", filename="empty.jpg", declared_size=1000)
    assert result.complete.status_code == 422
    assert result.complete.json() == {"detail": "The file is empty."}
    assert listed(backend, headers, shoot_id)[0]["reject_reason"] == "The file is empty."
    assert backend.stored_keys() == set()


@pytest.mark.parametrize("small_limit", ["local", "s3-post", "s3-put"], indirect=True)
def test_over_the_limit_at_presign_is_413(small_limit: Backend) -> None:
    _, headers = make_user(small_limit.context)
    shoot_id = new_shoot(small_limit, headers)
    result = upload(small_limit, headers, shoot_id, JPEG, filename="big.jpg")
    assert result.presign.status_code == 413
    assert result.presign.json() == {"detail": "big.jpg is 0.2 MB; the limit is 0.1 MB."}
    assert listed(small_limit, headers, shoot_id) == []


@pytest.mark.parametrize("small_limit", ["local", "s3-post", "s3-put"], indirect=True)
def test_over_the_limit_bytes_actually_uploaded_are_rejected_and_gone(small_limit: Backend) -> None:
    """The client declares a small size and sends more: a presigned PUT cannot stop that, complete must."""
    _, headers = make_user(small_limit.context)
    shoot_id = new_shoot(small_limit, headers)
    result = upload(small_limit, headers, shoot_id, JPEG, filename="liar.jpg", declared_size=50_000)
    assert result.presign.status_code == 200
    if small_limit.name == "local":
        assert result.sent.status_code == 413  # the app's own endpoint cuts it off while streaming
        assert result.complete.json() == {"detail": "The upload did not reach storage; try again."}
    else:  # the local S3 server, like R2 with a PUT, stores what it is sent
        assert result.sent.status_code in (200, 204)
        assert result.complete.json() == {"detail": "The file is 0.2 MB; the limit is 0.1 MB."}
    assert result.complete.status_code == 422
    assert listed(small_limit, headers, shoot_id)[0]["status"] == "rejected"
    assert small_limit.stored_keys() == set()


def test_complete_before_the_bytes_arrive_is_rejected(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    presign = backend.client.post(
        "/api/uploads/presign",
        json={"shoot_id": shoot_id, "filename": "a.jpg", "content_type": "image/jpeg", "size": 1000},
        headers=headers,
    ).json()
    response = backend.client.post(f"/api/uploads/{presign['asset_id']}/complete", headers=headers)
    assert response.status_code == 422
    assert response.json() == {"detail": "The upload did not reach storage; try again."}


def test_a_rejected_upload_stays_rejected(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    result = upload(backend, headers, shoot_id, b"plain text", filename="a.jpg")
    # Sending good bytes to the old URL afterwards does not revive the asset.
    backend.send(result.presign.json()["upload"], JPEG, filename="a.jpg")
    again = backend.client.post(f"/api/uploads/{result.asset_id}/complete", headers=headers)
    assert again.status_code == 422
    assert again.json() == result.complete.json()


@pytest.mark.parametrize("content_type", ["image/gif", "text/plain", "application/pdf", "image/svg+xml", "video/quicktime"])
def test_types_other_than_jpeg_heic_png_webp_are_415(backend: Backend, content_type: str) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    result = upload(backend, headers, shoot_id, JPEG, filename="file.bin", content_type=content_type)
    assert result.presign.status_code == 415
    assert result.presign.json() == {"detail": "file.bin is not a JPEG, HEIC, PNG or WebP photo, nor a camera RAW file (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2)."}
    assert listed(backend, headers, shoot_id) == []


@pytest.mark.parametrize(
    ("filename", "content_type", "signed"),
    [
        ("IMG_0001.HEIC", "", "image/heic"),  # browsers that do not know HEIC send no type
        ("IMG_0001.heif", "image/heif", "image/heic"),
        ("DSC_0001.JPG", "image/jpeg", "image/jpeg"),
        ("DSC_0001.jpg", "image/jpg", "image/jpeg"),
        ("scan.png", "image/png; charset=binary", "image/png"),
        ("web.webp", "IMAGE/WEBP", "image/webp"),
    ],
)
def test_accepted_types_are_signed_as_their_canonical_type(backend: Backend, filename: str, content_type: str, signed: str) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    response = backend.client.post(
        "/api/uploads/presign",
        json={"shoot_id": shoot_id, "filename": filename, "content_type": content_type, "size": 1000},
        headers=headers,
    )
    assert response.status_code == 200
    upload_ = response.json()["upload"]
    assert (upload_["fields"] if upload_["method"] == "POST" else upload_["headers"])["Content-Type"] == signed


def test_the_same_file_twice_is_409_unless_the_user_insists(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    first = upload(backend, headers, shoot_id, JPEG, filename="DSCN0010.jpg")
    assert first.complete.status_code == 200
    again = upload(backend, headers, shoot_id, JPEG, filename="DSCN0010.jpg")
    assert again.presign.status_code == 409
    assert again.presign.json() == {"detail": "DSCN0010.jpg (0.2 MB) is already in this shoot."}
    # Another shoot, or another size under the same name, is a different photo.
    assert upload(backend, headers, new_shoot(backend, headers), JPEG, filename="DSCN0010.jpg").complete.status_code == 200
    other = (PHOTOS / "gps" / "DSCN0021.jpg").read_bytes()
    assert upload(backend, headers, shoot_id, other, filename="DSCN0010.jpg").complete.status_code == 200
    insisted = upload(backend, headers, shoot_id, JPEG, filename="DSCN0010.jpg", allow_duplicate=True)
    assert insisted.complete.status_code == 200
    assert [a["status"] for a in listed(backend, headers, shoot_id)] == ["ready"] * 3


def test_a_rejected_file_can_be_chosen_again(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    assert upload(backend, headers, shoot_id, b"x" * 50, filename="a.jpg").complete.status_code == 422
    assert upload(backend, headers, shoot_id, b"x" * 50, filename="a.jpg").presign.status_code == 200


def test_file_names_lose_folders_and_control_characters(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    result = upload(backend, headers, shoot_id, JPEG, filename="C:\\Users\\me\\..\\Front\x07 door.jpg")
    assert result.complete.json()["filename"] == "Front door.jpg"
    [key] = [k for k in backend.stored_keys() if "/original" in k]
    assert re.search(rf"/{result.asset_id}/original-[0-9a-f]{{16}}\.jpg$", key)


def test_an_abandoned_upload_does_not_block_choosing_the_file_again(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    body = {"shoot_id": shoot_id, "filename": "a.jpg", "content_type": "image/jpeg", "size": len(JPEG)}
    first = backend.client.post("/api/uploads/presign", json=body, headers=headers)
    assert backend.client.post("/api/uploads/presign", json=body, headers=headers).status_code == 409
    # The first upload never finished and its link has since expired.
    with backend.context.session() as session:
        session.execute(
            update(Asset)
            .where(Asset.id == uuid.UUID(first.json()["asset_id"]))
            .values(created_at=utcnow() - timedelta(seconds=backend.context.settings.signed_url_ttl_seconds + 60))
        )
        session.commit()
    assert backend.client.post("/api/uploads/presign", json=body, headers=headers).status_code == 200
