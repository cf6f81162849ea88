"""Camera RAW uploads end to end: presign (RAW names and types, their own size limit), straight to
storage, complete (checked by their bytes and by LibRaw; thumbnail from the embedded preview),
then a job whose output is the full-resolution photo, upright, in its colours, with no GPS. On
local storage and on the S3 server, on SQLite and PostgreSQL. The DNGs are made in the tests."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.imaging import has_gps, metadata_report
from luster_app.imaging.raw import UNREADABLE_RAW
from luster_app.models import User
from luster_app.services import gallery
from luster_app.services.credits import grant_adjustment
from tests.conftest import make_user
from tests.dng_support import make_dng
from tests.engines_for_tests import NoopEngine
from tests.fixtures_storage import Backend, build_backend, new_shoot, upload
from tests.test_raw_imaging import UPRIGHT, quadrants
from worker.worker import Worker

MB = 1024 * 1024
GPS_IFD = 0x8825


@pytest.fixture(params=[("local", "sqlite"), ("s3-post", "postgres"), ("s3-put", "sqlite")], ids=lambda p: "-".join(p))
def app(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Backend]:
    """The API on the embedded default (local storage) and on the S3 server, over both databases."""
    storage, database = request.param
    db_url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "pg_url")
    yield from build_backend(storage, settings, db_url, request)


def photographer(app: Backend) -> tuple[uuid.UUID, dict[str, str], str]:
    user, headers = make_user(app.context)
    with app.context.session() as session:
        grant_adjustment(session=session, user_id=user.id, delta=3, reason="trial credits")
    return user.id, headers, new_shoot(app, headers)


def fetch_image(app: Backend, url: str) -> tuple[bytes, Image.Image]:
    response = app.fetch(url)
    assert response.status_code == 200
    return response.content, Image.open(io.BytesIO(response.content))


def test_a_raw_goes_from_upload_to_a_full_resolution_upright_output_without_gps(app: Backend) -> None:
    user_id, headers, shoot_id = photographer(app)
    # The camera was held turned a quarter: stored 320 × 480, upright 480 × 320 by its orientation tag (6).
    dng = make_dng(480, 320, orientation=6, gps=True)
    with Image.open(io.BytesIO(dng)) as header:
        assert header.getexif().get_ifd(GPS_IFD)  # the file does say where it was taken

    result = upload(app, headers, shoot_id, dng, filename="IMG_0042.DNG", content_type="image/x-adobe-dng")
    assert result.complete is not None and result.complete.status_code == 200, result.complete.text
    asset = result.complete.json()
    assert (asset["status"], asset["content_type"]) == ("ready", "image/x-adobe-dng")
    assert (asset["width"], asset["height"], asset["bytes"]) == (480, 320, len(dng))
    assert app.fetch(asset["original_url"]).content == dng  # the RAW itself is kept, byte for byte

    thumb_bytes, thumb = fetch_image(app, asset["thumb_url"])
    assert thumb.format == "JPEG" and thumb.size == (480, 320) and not thumb.getexif() and not has_gps(thumb_bytes)
    assert quadrants(thumb) == {**UPRIGHT, "centre": "magenta"}  # the camera's preview, upright

    job = app.client.post("/api/jobs", json={"asset_id": asset["id"], "preset": "enhance"}, headers=headers)
    assert job.status_code == 201, job.text
    worker = AppContext(app.context.settings, db=app.context.db, storage=app.context.storage, image_engine=NoopEngine())
    assert Worker(worker, concurrency=1, drain=True).run() == 0
    assert app.client.get(f"/api/jobs/{job.json()['id']}", headers=headers).json()["status"] == "succeeded"

    [listed] = app.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
    [output] = listed["outputs"]
    jpeg, image = fetch_image(app, output["url"])
    assert image.format == "JPEG" and image.size == (480, 320)  # full resolution, upright
    found = quadrants(image)
    assert {k: found[k] for k in UPRIGHT} == UPRIGHT and found["centre"] != "magenta"  # developed, not the preview
    report = metadata_report(jpeg)
    assert not has_gps(jpeg) and report.exif_orientation is None and not report.exif_gps

    # The compare view's copy of the original, which browsers cannot show as a RAW, is developed too.
    with app.context.session() as session:
        url = gallery.display_url(
            session=session, storage=app.storage, settings=app.context.settings, limits=app.context.upload_checks,
            user_id=user_id, asset_id=uuid.UUID(asset["id"])
        )
    display_bytes, display = fetch_image(app, url)
    assert display.size == (480, 320) and not has_gps(display_bytes)
    assert {k: quadrants(display)[k] for k in UPRIGHT} == UPRIGHT


def test_presign_takes_raw_names_and_types_up_to_their_own_limit(
    client: TestClient, user_and_headers: tuple[User, dict[str, str]]
) -> None:
    _, headers = user_and_headers
    shoot_id = client.post("/api/shoots", json={"name": "Loft"}, headers=headers).json()["id"]

    def presigned(filename: str, content_type: str, size: int) -> int:
        body = {"shoot_id": shoot_id, "filename": filename, "content_type": content_type, "size": size}
        return client.post("/api/uploads/presign", json=body, headers=headers).status_code

    for filename, content_type in [
        ("a.DNG", "image/x-adobe-dng"), ("b.dng", ""), ("c.CR3", "application/octet-stream"), ("d.nef", "image/tiff"),
        ("e.arw", "image/x-sony-arw"), ("f.RAF", ""), ("g.orf", ""), ("h.rw2", "image/x-panasonic-rw2"), ("i.cr2", "image/x-canon-cr2"),
    ]:
        assert presigned(filename, content_type, 60 * MB) == 200, filename
    assert presigned("j.dng", "", 121 * MB) == 413  # past RAW_MAX_BYTES
    assert presigned("k.jpg", "image/jpeg", 11 * MB) == 413  # photos keep their 10 MB limit
    assert presigned("scan.tif", "image/tiff", 1 * MB) == 415  # a TIFF that does not say it is a RAW


def test_the_bytes_decide_what_a_raw_is_not_its_name(backend: Backend) -> None:
    _, headers, shoot_id = photographer(backend)
    dng = make_dng(96, 64)
    named_jpeg = upload(backend, headers, shoot_id, dng, filename="house.jpg", content_type="image/jpeg")
    assert named_jpeg.complete.status_code == 200, named_jpeg.complete.text
    assert named_jpeg.complete.json()["content_type"] == "image/x-adobe-dng"
    key = {k for k in backend.stored_keys() if named_jpeg.asset_id in k and "/original-" in k}
    assert len(key) == 1 and key.pop().endswith(".dng")

    jpeg = io.BytesIO()
    Image.new("RGB", (60, 40), "teal").save(jpeg, "JPEG")
    named_raw = upload(backend, headers, shoot_id, jpeg.getvalue(), filename="IMG_1.CR3", content_type="")
    assert named_raw.complete.status_code == 200 and named_raw.complete.json()["content_type"] == "image/jpeg"


@pytest.mark.parametrize("damage", ["cut off", "not a raw inside"])
def test_a_raw_that_libraw_cannot_read_is_refused_with_the_reason(backend: Backend, damage: str) -> None:
    _, headers, shoot_id = photographer(backend)
    dng = make_dng(96, 64, gps=True)
    damaged = dng[: len(dng) - 700] if damage == "cut off" else dng[:400] + bytes(len(dng) - 400)
    result = upload(backend, headers, shoot_id, damaged, filename="IMG_7.dng", content_type="image/x-adobe-dng")
    assert result.complete.status_code == 422
    assert result.complete.json()["detail"] == UNREADABLE_RAW
    [listed] = backend.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
    assert (listed["status"], listed["reject_reason"]) == ("rejected", UNREADABLE_RAW)
    assert backend.stored_keys() == set()  # nothing of it (nor its GPS) stays in storage


def test_a_photo_signed_as_a_raw_keeps_the_photo_limit(
    request: pytest.FixtureRequest, settings: Settings, sqlite_url: str
) -> None:
    limited = settings.model_copy(update={"upload_max_bytes": 100_000})
    for app in build_backend("local", limited, sqlite_url, request):
        _, headers, shoot_id = photographer(app)
        noise = Image.fromarray(np.random.default_rng(7).integers(0, 256, (300, 400, 3), dtype=np.uint8))
        jpeg = io.BytesIO()
        noise.save(jpeg, "JPEG", quality=95)
        assert len(jpeg.getvalue()) > 100_000
        result = upload(app, headers, shoot_id, jpeg.getvalue(), filename="IMG_3.CR3", content_type="image/x-canon-cr3")
        assert result.presign.status_code == 200  # within the RAW limit, as signed
        assert result.complete.status_code == 422
        assert result.complete.json()["detail"].endswith("the limit is 0.1 MB.")
