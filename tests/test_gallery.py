"""What the shoot pages show: a browser-viewable original for comparing, and where each shoot's jobs stand."""

from __future__ import annotations

import io
import uuid

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from luster_app.context import AppContext
from luster_app.imaging import has_gps
from luster_app.models import Job, JobStatus
from luster_app.services import gallery
from luster_app.services.errors import Busy, NotFound
from luster_app.services.shoots import create_shoot
from luster_app.services.uploads import complete_upload, presign_upload
from tests.conftest import PHOTOS, make_user
from tests.delivery_support import every_decode_slot_busy


def _upload(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID, path, content_type: str):  # noqa: ANN001, ANN202
    data = path.read_bytes()
    with context.session() as session:
        presigned = presign_upload(session=session, storage=context.storage, settings=context.settings, user_id=user_id,
                                   shoot_id=shoot_id, filename=path.name, content_type=content_type, size=len(data))
        key = presigned.upload.url.split("/api/files/", 1)[1].split("?", 1)[0]
        context.storage.put_bytes(key, data, content_type=content_type)
        return complete_upload(session=session, storage=context.storage, settings=context.settings, user_id=user_id,
                               asset_id=presigned.asset_id)


def _new_shoot(context: AppContext, user_id: uuid.UUID, name: str = "Elm Road") -> uuid.UUID:
    with context.session() as session:
        return create_shoot(session=session, user_id=user_id, name=name).id


def _display(context: AppContext, user_id: uuid.UUID, asset_id: uuid.UUID) -> str:
    with context.session() as session:
        return gallery.display_url(session=session, storage=context.storage, settings=context.settings,
                                   limits=context.upload_checks, user_id=user_id, asset_id=asset_id)


def test_an_iphone_heic_is_compared_as_an_upright_jpeg_without_location(client: TestClient, context: AppContext) -> None:
    user, _ = make_user(context)
    photo = _upload(context, user.id, _new_shoot(context, user.id), PHOTOS / "heic" / "IMG_5195.HEIC", "image/heic")
    response = client.get(_display(context, user.id, photo.id))
    assert response.status_code == 200
    assert response.content[:3] == b"\xff\xd8\xff"  # what any browser shows, unlike HEIC
    assert Image.open(io.BytesIO(response.content)).size == (photo.width, photo.height)
    assert not has_gps(response.content)
    # Made once: the second look is the same copy.
    assert client.get(_display(context, user.id, photo.id)).content == response.content


def test_a_jpeg_is_compared_as_uploaded(client: TestClient, context: AppContext) -> None:
    user, _ = make_user(context)
    path = PHOTOS / "orientation" / "landscape_6.jpg"
    photo = _upload(context, user.id, _new_shoot(context, user.id), path, "image/jpeg")
    assert client.get(_display(context, user.id, photo.id)).content == path.read_bytes()
    stranger, _ = make_user(context)
    with pytest.raises(NotFound):
        _display(context, stranger.id, photo.id)


def test_a_shoot_counts_photos_by_their_latest_job(context: AppContext) -> None:
    user, _ = make_user(context)
    shoot_id = _new_shoot(context, user.id)
    first = _upload(context, user.id, shoot_id, PHOTOS / "gps" / "DSCN0010.jpg", "image/jpeg")
    second = _upload(context, user.id, shoot_id, PHOTOS / "gps" / "DSCN0021.jpg", "image/jpeg")
    with context.session() as session:
        # The first photo failed once, then succeeded on a re-run; the second is still processing.
        for asset, status in ((first, JobStatus.FAILED), (first, JobStatus.SUCCEEDED), (second, JobStatus.PROCESSING)):
            session.add(Job(user_id=user.id, asset_id=asset.id, preset="enhance", engine="classic", status=status))
            session.commit()
        progress = gallery.progress_by_shoot(session=session, user_id=user.id)
        jobs = gallery.jobs_of_shoot(session=session, user_id=user.id, shoot_id=shoot_id)
    assert progress[shoot_id] == gallery.ShootProgress(in_progress=1, succeeded=1, failed=0)
    assert progress[shoot_id].summary == "1 in progress · 1 enhanced"
    assert [job.status for job in jobs if job.asset_id == first.id] == [JobStatus.FAILED, JobStatus.SUCCEEDED]
    assert gallery.ShootProgress().summary == "Nothing enhanced yet"


def test_the_compare_copy_of_a_heic_waits_its_turn_among_the_web_process_decodes(context: AppContext) -> None:
    """Opening the compare view decodes a HEIC (or develops a RAW) in the web process: it shares the
    upload checks' bounds, so many opened at once meet "try again", not an out-of-memory crash."""
    user, _ = make_user(context)
    photo = _upload(context, user.id, _new_shoot(context, user.id), PHOTOS / "heic" / "IMG_5195.HEIC", "image/heic")
    with every_decode_slot_busy(context), pytest.raises(Busy, match="try again"):
        _display(context, user.id, photo.id)
    assert _display(context, user.id, photo.id)
