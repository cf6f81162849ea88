"""A browser that goes away mid-upload (a phone's tab closed, a laptop asleep) leaves no photo
spinning: the worker finishes what reached storage and rejects the rest, with a reason."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import update

from luster_app.config import Settings
from luster_app.imaging import has_gps
from luster_app.models import Asset, utcnow
from luster_app.services.credits import grant_adjustment
from tests.conftest import PHOTOS, make_user
from tests.fixtures_storage import CONTENT_TYPES, Backend, new_shoot, upload
from worker.worker import Worker

IPHONE_HEIC = PHOTOS / "heic" / "IMG_5195.HEIC"  # 2566×3313 upright, with GPS


def _start_upload(
    backend: Backend, headers: dict[str, str], shoot_id: str, data: bytes, filename: str, *, send: bool, **presign_extra: object
) -> str:
    """Presign and (if `send`) put the bytes in storage, then go away without reporting back."""
    body = {"shoot_id": shoot_id, "filename": filename, "content_type": CONTENT_TYPES[f".{filename.rsplit('.', 1)[1].lower()}"],
            "size": len(data), **presign_extra}
    presign = backend.client.post("/api/uploads/presign", json=body, headers=headers)
    assert presign.status_code == 200, presign.text
    if send:
        assert backend.send(presign.json()["upload"], data, filename=filename).status_code in (200, 204)
    return presign.json()["asset_id"]


def _age(backend: Backend, asset_id: str, seconds: int) -> None:
    with backend.context.session() as session:
        session.execute(update(Asset).where(Asset.id == uuid.UUID(asset_id)).values(created_at=utcnow() - timedelta(seconds=seconds)))
        session.commit()


def _photos(backend: Backend, headers: dict[str, str], shoot_id: str) -> dict[str, dict]:
    listed = backend.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
    return {asset["filename"]: asset for asset in listed}


def _run_worker(backend: Backend) -> None:
    assert Worker(backend.context, concurrency=1, drain=True).run() == 0


def test_a_phone_upload_whose_tab_closed_is_finished_by_the_worker(backend: Backend) -> None:
    user, headers = make_user(backend.context)
    with backend.context.session() as session:
        grant_adjustment(session=session, user_id=user.id, delta=1, reason="test credit")
    shoot_id = new_shoot(backend, headers)
    asset_id = _start_upload(backend, headers, shoot_id, IPHONE_HEIC.read_bytes(), IPHONE_HEIC.name, send=True)
    _age(backend, asset_id, backend.context.settings.upload_abandon_seconds + 60)

    _run_worker(backend)

    photo = _photos(backend, headers, shoot_id)[IPHONE_HEIC.name]
    assert (photo["status"], photo["width"], photo["height"]) == ("ready", 2566, 3313)
    thumbnail = backend.fetch(photo["thumb_url"])
    assert thumbnail.status_code == 200
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        assert image.format == "JPEG" and image.height > image.width
    assert not has_gps(thumbnail.content)
    # The photographer can enhance it like any other photo.
    job = backend.client.post("/api/jobs", json={"asset_id": asset_id, "preset": "enhance"}, headers=headers)
    assert job.status_code == 201, job.text


@pytest.mark.parametrize(
    ("data", "send", "reason"),
    [
        (b"", False, "front.jpg never finished uploading. Upload it again."),
        ((PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()[:40_000], True, "The file is truncated or damaged."),
    ],
    ids=["nothing-arrived", "cut-off-mid-upload"],
)
def test_an_abandoned_upload_with_no_whole_photo_is_rejected_and_nothing_kept(
    backend: Backend, data: bytes, send: bool, reason: str
) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    asset_id = _start_upload(backend, headers, shoot_id, data or b"x" * 1000, "front.jpg", send=send)
    _age(backend, asset_id, backend.context.settings.upload_abandon_seconds + 60)

    _run_worker(backend)

    photo = _photos(backend, headers, shoot_id)["front.jpg"]
    assert photo["status"] == "rejected" and reason in photo["reject_reason"]
    assert backend.stored_keys() == set()
    # The browser that comes back late hears the same reason.
    late = backend.client.post(f"/api/uploads/{asset_id}/complete", headers=headers)
    assert late.status_code == 422 and reason in late.json()["detail"]


def test_a_photo_uploaded_again_after_its_tab_closed_is_in_the_shoot_once(backend: Backend) -> None:
    """The bytes of the first try reached storage, but the tab closed before it reported back;
    the photographer chose the file again later. Finishing the first try too would show the
    photo twice and charge for it twice when the whole shoot is enhanced."""
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    data = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    first_try = _start_upload(backend, headers, shoot_id, data, "porch.jpg", send=True)
    _age(backend, first_try, backend.context.settings.upload_abandon_seconds + 60)
    again = upload(backend, headers, shoot_id, data, filename="porch.jpg")
    assert again.complete is not None and again.complete.status_code == 200, again.presign.text

    _run_worker(backend)

    listed = {photo["id"]: photo for photo in backend.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()}
    assert [photo_id for photo_id, photo in listed.items() if photo["status"] == "ready"] == [again.asset_id]
    assert listed[first_try]["status"] == "rejected"
    assert "porch.jpg was uploaded again" in listed[first_try]["reject_reason"]
    assert not any(first_try in key for key in backend.stored_keys())
    assert any(again.asset_id in key for key in backend.stored_keys())


def test_a_copy_the_photographer_insisted_on_is_finished_though_its_tab_closed(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    data = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    first = upload(backend, headers, shoot_id, data, filename="porch.jpg")
    assert first.complete is not None and first.complete.status_code == 200
    insisted = _start_upload(backend, headers, shoot_id, data, "porch.jpg", send=True, allow_duplicate=True)
    _age(backend, first.asset_id, backend.context.settings.upload_abandon_seconds + 120)
    _age(backend, insisted, backend.context.settings.upload_abandon_seconds + 60)

    _run_worker(backend)

    listed = backend.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
    assert sorted(photo["id"] for photo in listed if photo["status"] == "ready") == sorted([first.asset_id, insisted])


def test_an_upload_still_within_its_time_is_left_alone(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    data = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    asset_id = _start_upload(backend, headers, shoot_id, data, "slow.jpg", send=False)
    _age(backend, asset_id, backend.context.settings.signed_url_ttl_seconds + 60)  # its URL expired, but not long ago

    _run_worker(backend)

    assert _photos(backend, headers, shoot_id)["slow.jpg"]["status"] == "pending"


def test_the_abandon_time_must_outlast_the_upload_url(settings: Settings) -> None:
    with pytest.raises(ValueError, match="UPLOAD_ABANDON_SECONDS must be longer than SIGNED_URL_TTL_SECONDS"):
        Settings(**{**settings.model_dump(), "signed_url_ttl_seconds": 900, "upload_abandon_seconds": 600})
