"""A photo is used as it was checked: its upload link cannot swap in other bytes afterwards.

An upload link stays valid for its whole lifetime, and S3 cannot revoke one. A photographer (or
whoever holds the link) used it again after completion to replace an 800×600 photo by a far
larger one; the worker, which had budgeted memory for 800×600, rendered the replacement.
"""

from __future__ import annotations

import io
import re
import threading
import uuid
from datetime import timedelta

from PIL import Image

from luster_app.context import AppContext
from luster_app.models import Asset, utcnow
from luster_app.services.credits import grant_adjustment
from luster_app.services.storage_cleanup import sweep_pending_deletions
from luster_app.storage.keys import original_key
from tests.conftest import make_user
from tests.engines_for_tests import InvertEngine
from tests.fixtures_storage import Backend, new_shoot, upload
from tests.jobs_support import balance
from worker.worker import Worker


def _jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def test_a_photo_replaced_through_its_upload_link_after_completion_is_not_used(backend: Backend) -> None:
    context = backend.context
    user, headers = make_user(context)
    with context.session() as session:
        grant_adjustment(session=session, user_id=user.id, delta=1, reason="test credits")
    small, large = _jpeg((800, 600), (200, 150, 100)), _jpeg((2400, 1800), (20, 40, 60))
    result = upload(backend, headers, new_shoot(backend, headers), small)
    assert result.complete.status_code == 200, result.complete.text
    assert (result.complete.json()["width"], result.complete.json()["height"]) == (800, 600)

    again = backend.send(result.presign.json()["upload"], large)

    if backend.name == "local":  # the app's own upload links are single-use
        assert again.status_code == 403
        assert "already been used" in again.json()["detail"]
    with context.session() as session:
        photo = session.get(Asset, uuid.UUID(result.asset_id))
    assert context.storage.get_bytes(photo.storage_key) == small
    assert (photo.width, photo.height, photo.bytes) == (800, 600, len(small))

    job = backend.client.post("/api/jobs", json={"asset_id": result.asset_id, "preset": "enhance"}, headers=headers)
    assert job.status_code in (200, 201), job.text
    worker_context = AppContext(context.settings, db=context.db, image_engine=InvertEngine())
    assert Worker(worker_context, concurrency=1, drain=True).run() == 0

    done = backend.client.get(f"/api/jobs/{job.json()['id']}", headers=headers).json()
    assert done["status"] == "succeeded", done
    [output] = done["outputs"]
    assert (output["width"], output["height"]) == (800, 600)
    rendered = Image.open(io.BytesIO(backend.fetch(output["url"]).content)).convert("RGB")
    assert max(abs(a - b) for a, b in zip(rendered.getpixel((400, 300)), (55, 105, 155))) < 8  # the small one, inverted
    assert balance(context, user.id) == 0


def test_a_local_upload_link_works_once(backend: Backend) -> None:
    """Even before completion: a second upload through the same link is refused, and the first
    one's bytes are what completion checks."""
    if backend.name != "local":
        return  # S3 links cannot be made single-use; the test above covers them
    _, headers = make_user(backend.context)
    shoot = new_shoot(backend, headers)
    presign = backend.client.post(
        "/api/uploads/presign", json={"shoot_id": shoot, "filename": "a.jpg", "content_type": "image/jpeg", "size": 5000},
        headers=headers,
    ).json()
    first = _jpeg((80, 60), (1, 2, 3))

    assert backend.send(presign["upload"], first).status_code == 204
    assert backend.send(presign["upload"], _jpeg((90, 70), (4, 5, 6))).status_code == 403

    done = backend.client.post(f"/api/uploads/{presign['asset_id']}/complete", headers=headers)
    assert (done.status_code, done.json()["width"]) == (200, 80)


def test_racing_completions_of_one_photo_all_answer_ready_and_keep_one_copy(backend: Backend) -> None:
    """The winner drops the uploaded object once it has copied it; a completion still on its way
    then finds no upload, and must answer with the ready photo, not reject it."""
    _, headers = make_user(backend.context)
    shoot = new_shoot(backend, headers)
    presign = backend.client.post(
        "/api/uploads/presign", json={"shoot_id": shoot, "filename": "a.jpg", "content_type": "image/jpeg", "size": 5000},
        headers=headers,
    ).json()
    assert backend.send(presign["upload"], _jpeg((640, 480), (9, 9, 9))).status_code in (200, 204)
    answers: list[int] = []

    def complete() -> None:
        answers.append(backend.client.post(f"/api/uploads/{presign['asset_id']}/complete", headers=headers).status_code)

    threads = [threading.Thread(target=complete) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [200] * 6
    names = sorted(re.sub(r"-[0-9a-f]{16}\.", ".", key.rsplit("/", 1)[1]) for key in backend.stored_keys())
    assert names == ["original.jpg", "thumb.jpg"]


def test_what_an_upload_link_writes_after_completion_is_removed_once_the_link_is_dead(backend: Backend) -> None:
    """S3: the second write lands where nothing reads it; the worker's sweep removes it once the
    link has expired (before, it stayed in the bucket, paid for, as long as the photo)."""
    if backend.name == "local":
        return  # the app's own links are single-use (above)
    context = backend.context
    user, headers = make_user(context)
    shoot = new_shoot(backend, headers)
    result = upload(backend, headers, shoot, _jpeg((80, 60), (1, 2, 3)))
    assert result.complete.status_code == 200, result.complete.text
    upload_key = original_key(user.id, uuid.UUID(shoot), uuid.UUID(result.asset_id), "JPEG")
    assert context.storage.head(upload_key) is None  # completion dropped what it copied

    assert backend.send(result.presign.json()["upload"], _jpeg((800, 600), (9, 9, 9))).status_code in (200, 204)
    assert context.storage.head(upload_key) is not None

    link_dead = utcnow() + timedelta(seconds=context.settings.signed_url_ttl_seconds + 1)
    with context.session() as session:
        sweep_pending_deletions(session=session, storage=context.storage, now=link_dead)
    assert context.storage.head(upload_key) is None
    with context.session() as session:  # the photo itself is untouched
        photo = session.get(Asset, uuid.UUID(result.asset_id))
    assert (photo.width, photo.height) == (80, 60) and context.storage.head(photo.storage_key) is not None
