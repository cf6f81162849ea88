"""Abandoned uploads that fail to settle every time back off one by one, and never hold up the
newer ones: the sweep takes 20 photos a pass, and used to take the same 20 failing ones forever."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from PIL import Image

from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.models import Asset, AssetKind, AssetStatus, utcnow
from luster_app.storage.keys import original_key
from tests.conftest import make_user
from tests.jobs_support import add_shoot
from worker.pipeline import ImageLimits
from worker.upload_sweeper import UploadSweeper
from worker.worker import Worker

FAILING = 25  # more than one pass takes


@pytest.fixture
def context(settings, db_url) -> Iterator[AppContext]:
    ctx = AppContext(settings, db=make_engine(db_url))
    yield ctx
    ctx.db.dispose()


def _pending(context: AppContext, user, shoot, *, age: timedelta, data: bytes | None) -> Asset:
    """A photo whose browser went away `age` ago. With `data`, its bytes reached storage; without,
    its object is unreadable (a folder where the file should be): settling it fails every time."""
    asset_id = uuid.uuid4()
    key = original_key(user.id, shoot.id, asset_id, "JPEG")
    if data is None:
        context.storage.path_for(key).mkdir(parents=True)
    else:
        context.storage.put_bytes(key, data, content_type="image/jpeg")
    asset = Asset(
        id=asset_id, shoot_id=shoot.id, user_id=user.id, kind=AssetKind.ORIGINAL, storage_key=key,
        filename=f"{asset_id.hex[:8]}.jpg", content_type="image/jpeg", bytes=len(data or b"x"),
        status=AssetStatus.PENDING, created_at=utcnow() - age,
    )
    with context.session() as session:
        session.add(asset)
        session.commit()
        session.refresh(asset)
    return asset


def _status(context: AppContext, asset_id: uuid.UUID) -> str:
    with context.session() as session:
        return session.get(Asset, asset_id).status


def test_failing_abandoned_uploads_do_not_block_a_newer_one(context) -> None:
    user, _ = make_user(context)
    shoot = add_shoot(context, user)
    abandoned = timedelta(seconds=context.settings.upload_abandon_seconds)
    failing = [_pending(context, user, shoot, age=abandoned * 3 - timedelta(seconds=n), data=None) for n in range(FAILING)]
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "JPEG")
    good = _pending(context, user, shoot, age=abandoned * 2, data=buffer.getvalue())
    sweeper = UploadSweeper(context, interval=300, limits=ImageLimits.from_settings(context.settings))

    for _ in range(3):
        sweeper._sweep()

    assert _status(context, good.id) == AssetStatus.READY
    assert {_status(context, photo.id) for photo in failing} == {AssetStatus.PENDING}  # tried again later
    with context.session() as session:
        waits = [session.get(Asset, photo.id).sweep_after for photo in failing]
    assert all(wait is not None and wait > utcnow() for wait in waits)


def test_a_drained_worker_settles_every_abandoned_upload_before_it_exits(context) -> None:
    """`worker --drain` (and every test that runs one) exits once no job is due; it used to exit
    while its first sweep was still going, or had not begun, and take at most one pass of photos."""
    user, _ = make_user(context)
    shoot = add_shoot(context, user)
    abandoned = timedelta(seconds=context.settings.upload_abandon_seconds)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "JPEG")
    photos = [_pending(context, user, shoot, age=abandoned * 2 - timedelta(seconds=n), data=buffer.getvalue()) for n in range(FAILING)]

    assert Worker(context, concurrency=1, drain=True).run() == 0

    assert [_status(context, photo.id) for photo in photos] == [AssetStatus.READY] * FAILING
