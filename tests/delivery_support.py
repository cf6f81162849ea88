"""Shoots with delivered photos as the worker leaves them, for the download, export and sharing tests."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from luster_app.context import AppContext
from luster_app.imaging import encode_jpeg, load_normalised
from luster_app.models import Asset, AssetKind, AssetStatus, Job, JobStatus
from luster_app.services.uploads import complete_upload, presign_upload
from luster_app.storage.keys import output_key
from tests.conftest import PHOTOS

PHOTO = PHOTOS / "gps" / "DSCN0010.jpg"


def upload(
    context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID, photo: Path = PHOTO, *, content_type: str = "image/jpeg"
) -> Asset:
    """An original uploaded and checked as the upload routes do it."""
    data = photo.read_bytes()
    with context.session() as session:
        presigned = presign_upload(session=session, storage=context.storage, settings=context.settings, user_id=user_id,
                                   shoot_id=shoot_id, filename=photo.name, content_type=content_type, size=len(data))
        key = session.get(Asset, presigned.asset_id).storage_key
        context.storage.put_bytes(key, data, content_type=content_type)
        return complete_upload(session=session, storage=context.storage, settings=context.settings, user_id=user_id,
                               asset_id=presigned.asset_id)


def add_output(
    context: AppContext, original: Asset, preset: str, version: int, *, photo: Path = PHOTO,
    status: str = AssetStatus.READY, job_status: str = JobStatus.SUCCEEDED, alteration: dict[str, Any] | None = None,
) -> Asset:
    """What the worker leaves behind for a job: the job row and its output in storage (`status`
    `held` with `job_status` `needs_review` for an edit waiting for its owner's review)."""
    pixels = load_normalised(photo.read_bytes(), max_pixels=context.settings.max_image_pixels)
    data = encode_jpeg(pixels)
    stem = photo.stem
    with context.session() as session:
        job = Job(user_id=original.user_id, asset_id=original.id, preset=preset, engine="classic", status=job_status,
                  alteration=alteration)
        session.add(job)
        session.flush()
        key = output_key(original.user_id, original.shoot_id, original.id, job.id, version, attempt="a1")
        context.storage.put_bytes(key, data, content_type="image/jpeg")
        output = Asset(shoot_id=original.shoot_id, user_id=original.user_id, kind=AssetKind.OUTPUT, storage_key=key,
                       filename=f"{stem}_{preset}_v{version}.jpg", content_type="image/jpeg", bytes=len(data),
                       width=pixels.width, height=pixels.height, status=status,
                       parent_asset_id=original.id, job_id=job.id, version=version)
        session.add(output)
        session.commit()
        session.refresh(output)
        return output


@contextmanager
def every_decode_slot_busy(context: AppContext) -> Iterator[threading.Event]:
    """Every slot the web process decodes photos in is taken (upload checks in progress) until the
    event is set or the block ends."""
    slots, release = context.upload_checks.slots, threading.Event()
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1

    def give_back() -> None:
        release.wait()
        for _ in range(taken):
            slots.release()

    returner = threading.Thread(target=give_back)
    returner.start()
    try:
        yield release
    finally:
        release.set()
        returner.join()
