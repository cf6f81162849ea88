"""Hostile files through the real upload path on every storage backend: each is refused with its
reason, nothing of it stays in storage, and the app goes on accepting real photos afterwards.

tests/test_uploads_rejections.py covers plain text, a JPEG cut in half, a PNG declaring
30000×30000 pixels, a broken PNG and zero-byte files; these are the rest of the hostile set.
"""

from __future__ import annotations

import random
import re
import struct
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select

from luster_app.context import AppContext
from luster_app.models import Asset, AssetKind
from luster_app.services.credits import grant_adjustment
from tests.conftest import PHOTOS, make_user
from tests.engines_for_tests import InvertEngine
from tests.fixtures_storage import Backend, new_shoot, upload
from worker.worker import Worker

HEIC = (PHOTOS / "heic" / "IMG_5195.HEIC").read_bytes()
JPEG = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
TEN_MB = 10 * 1024 * 1024

TRUNCATED = "The file is truncated or damaged."
UNREADABLE = "The file is damaged or not a readable image."
NOT_A_PHOTO = "Not a photo: upload JPEG, HEIC, PNG, WebP or camera RAW files."


def _box_offset(data: bytes, kind: bytes) -> int:
    """Where the first ISO-BMFF box of type `kind` starts (its 4-byte size precedes the type)."""
    return data.index(kind) - 4


def _with_box_size(data: bytes, kind: bytes, size: int) -> bytes:
    offset = _box_offset(data, kind)
    return data[:offset] + struct.pack(">I", size) + data[offset + 4 :]


def heic_cut_inside_its_tiles() -> bytes:
    """An iPhone HEIC missing its last tenth: the boxes are intact, the tile data is not all there."""
    return HEIC[: len(HEIC) * 9 // 10]


def heic_meta_box_past_the_end() -> bytes:
    """The `meta` box claims 4 GB, far past the end of the file."""
    return _with_box_size(HEIC, b"meta", 0xFFFFFFF0)


def heic_scrambled_item_locations() -> bytes:
    """Box sizes intact, but the item location table (where each tile lies) is random bytes."""
    offset = _box_offset(HEIC, b"iloc") + 12  # past size, type, version and flags
    noise = random.Random(5195).randbytes(600)
    return HEIC[:offset] + noise + HEIC[offset + len(noise) :]


def svg_named_jpg() -> bytes:
    return (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="3000">'
        b'<script>fetch("/api/me")</script><rect width="100%" height="100%" fill="red"/></svg>\n'
    )


def html_named_jpg() -> bytes:
    return b"<!doctype html><html><body><img src=x onerror=alert(document.cookie)></body></html>\n"


def random_ten_megabytes() -> bytes:
    """Exactly the default upload limit of random bytes (the seed's first bytes are no image magic)."""
    return random.Random(10).randbytes(TEN_MB)


def jpeg_declaring_65500_square() -> bytes:
    """A real JPEG whose frame header claims 65500×65500 pixels (4.3 gigapixels)."""
    position = 2
    while JPEG[position + 1] not in (0xC0, 0xC2):  # walk the segments to the frame header (not EXIF's thumbnail)
        position += 2 + struct.unpack(">H", JPEG[position + 2 : position + 4])[0]
    return JPEG[: position + 5] + struct.pack(">HH", 65500, 65500) + JPEG[position + 9 :]


HOSTILE: list[tuple[str, Callable[[], bytes], str]] = [
    ("IMG_5195.HEIC", heic_cut_inside_its_tiles, TRUNCATED),
    ("IMG_5195.HEIC", heic_meta_box_past_the_end, TRUNCATED),
    ("IMG_5195.HEIC", heic_scrambled_item_locations, UNREADABLE),
    ("floorplan.jpg", svg_named_jpg, NOT_A_PHOTO),
    ("listing.jpg", html_named_jpg, NOT_A_PHOTO),
    ("noise.jpg", random_ten_megabytes, NOT_A_PHOTO),
    ("bomb.jpg", jpeg_declaring_65500_square, "too many pixels"),
]
IDS = ["heic-truncated-tiles", "heic-meta-box-past-end", "heic-scrambled-iloc", "svg-named-jpg",
       "html-named-jpg", "random-10mb", "jpeg-65500x65500"]


@pytest.mark.parametrize(("filename", "make", "reason"), HOSTILE, ids=IDS)
def test_hostile_files_are_refused_with_a_reason_and_nothing_is_kept(
    backend: Backend, filename: str, make: Callable[[], bytes], reason: str
) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    data = make()
    assert len(data) <= backend.context.settings.upload_max_bytes

    hostile = upload(backend, headers, shoot_id, data, filename=filename)

    assert hostile.presign.status_code == 200  # the declared type and size are acceptable: the bytes decide
    assert hostile.sent.status_code in (200, 204)
    assert hostile.complete.status_code == 422
    assert reason in hostile.complete.json()["detail"]
    assert backend.stored_keys() == set()
    [asset] = backend.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
    assert asset["status"] == "rejected" and asset["original_url"] is None and asset["thumb_url"] is None

    # The app goes on serving: health answers and the next real photo is accepted.
    assert backend.client.get("/api/health").json() == {"status": "ok"}
    good = upload(backend, headers, shoot_id, JPEG, filename="DSCN0010.jpg")
    assert good.complete.status_code == 200 and good.complete.json()["status"] == "ready"
    # Only the checked copy and its thumbnail stay (the uploaded object is dropped once copied).
    assert {re.sub(r"-[0-9a-f]{16}\.", ".", key.rsplit("/", 1)[1]) for key in backend.stored_keys()} == {"original.jpg", "thumb.jpg"}


def test_an_intact_iphone_heic_still_passes_the_box_check(backend: Backend) -> None:
    """The truncation check reads the container's own box sizes; a whole HEIC is accepted."""
    _, headers = make_user(backend.context)
    result = upload(backend, headers, new_shoot(backend, headers), HEIC, filename="IMG_5195.HEIC")
    assert result.complete.status_code == 200
    assert (result.complete.json()["width"], result.complete.json()["height"]) == (2566, 3313)


def test_the_worker_fails_hostile_originals_swapped_in_after_upload_and_keeps_serving(backend: Backend) -> None:
    """Storage is not the upload check: if an accepted photo's object is later replaced by a hostile
    file, its job fails with a reason and no charge, and the next photo's job still succeeds."""
    user, headers = make_user(backend.context)
    with backend.context.session() as session:
        grant_adjustment(session=session, user_id=user.id, delta=len(HOSTILE) + 1, reason="test credits")
    shoot_id = new_shoot(backend, headers)
    photos = [upload(backend, headers, shoot_id, JPEG, filename=f"photo-{n}.jpg", allow_duplicate=True) for n in range(len(HOSTILE) + 1)]
    assert all(photo.complete.status_code == 200 for photo in photos)
    *tampered, intact = photos
    with backend.context.session() as session:
        keys = dict(session.execute(select(Asset.id, Asset.storage_key).where(Asset.kind == AssetKind.ORIGINAL)).all())
    for photo, (_, make, _) in zip(tampered, HOSTILE, strict=True):
        backend.storage.put_bytes(keys[uuid.UUID(photo.asset_id)], make(), content_type="image/jpeg")
    job_ids = [
        backend.client.post("/api/jobs", json={"asset_id": photo.asset_id, "preset": "enhance"}, headers=headers).json()["id"]
        for photo in photos
    ]

    worker_context = AppContext(backend.context.settings, db=backend.context.db, image_engine=InvertEngine())
    assert Worker(worker_context, concurrency=2, drain=True).run() == 0

    jobs = [backend.client.get(f"/api/jobs/{job_id}", headers=headers).json() for job_id in job_ids]
    assert [(job["status"], job["error_code"]) for job in jobs[:-1]] == [("failed", "unreadable_image")] * len(HOSTILE)
    assert jobs[-1]["status"] == "succeeded" and len(jobs[-1]["outputs"]) == 1
    assert backend.client.get("/api/me", headers=headers).json()["credits"]["balance"] == len(HOSTILE)
