"""ORIGINAL_RETENTION_DAYS: the worker's sweep deletes photos older than that, with their outputs
and stored files; unset, nothing is ever deleted for age. On SQLite and PostgreSQL, S3 storage."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import update

from luster_app.context import AppContext
from luster_app.models import Asset, utcnow
from luster_app.services.retention import retention_notice
from tests.fixtures_storage import Backend
from tests.test_own_api import add_photo, app, keys_of, photographer, photos, queue, run_worker  # noqa: F401  (fixture)
from worker.worker import Worker


def age(app: Backend, asset_id: str, days: int) -> None:  # noqa: F811
    """The photo (and what was made from it) as if uploaded `days` ago."""
    then = utcnow() - timedelta(days=days)
    with app.context.session() as session:
        session.execute(update(Asset).where(Asset.id == uuid.UUID(asset_id)).values(created_at=then))
        session.execute(update(Asset).where(Asset.parent_asset_id == uuid.UUID(asset_id)).values(created_at=then))
        session.commit()


def sweep(app: Backend, retention_days: int) -> None:  # noqa: F811
    settings = app.context.settings.model_copy(update={"original_retention_days": retention_days})
    context = AppContext(settings, db=app.context.db, storage=app.context.storage)
    Worker(context, concurrency=1, drain=True).upload_sweeper.sweep_retention()


def test_photos_older_than_the_retention_period_are_deleted_with_their_outputs(app: Backend) -> None:  # noqa: F811
    alice = photographer(app)
    old, recent = add_photo(app, alice, "old.jpg"), add_photo(app, alice, "recent.jpg")
    queue(app, alice, old)
    run_worker(app)
    age(app, old, days=40)
    age(app, recent, days=20)

    sweep(app, 0)  # unset: kept, however old
    assert len(photos(app, alice)) == 2 and len(keys_of(app, old)) == 4

    sweep(app, 30)
    assert [p["filename"] for p in photos(app, alice)] == ["recent.jpg"]
    assert keys_of(app, old) == set() and len(keys_of(app, recent)) == 2


def test_the_account_page_says_how_long_photos_are_kept(settings) -> None:  # noqa: ANN001
    assert retention_notice(settings) == "Your photos are kept until you delete them."
    kept = settings.model_copy(update={"original_retention_days": 90})
    assert retention_notice(kept) == "Photos are deleted, with their enhanced versions, 90 days after upload."


def test_old_frames_of_a_bracket_are_deleted_too_and_hold_up_no_other_photo(app: Backend) -> None:  # noqa: F811
    """A grouped frame cannot be deleted alone: retention ungroups it first (before, every old
    frame was skipped, and once a hundred were old they blocked retention for everyone)."""
    alice = photographer(app)
    frames = [add_photo(app, alice, f"frame-{n}.jpg") for n in range(3)]
    single = add_photo(app, alice, "single.jpg")
    grouped = app.client.post(f"/api/shoots/{alice.shoot_id}/brackets", json={"asset_ids": frames}, headers=alice.headers)
    assert grouped.status_code == 201, grouped.text
    for photo in (*frames, single):
        age(app, photo, days=40)

    sweep(app, 30)

    assert photos(app, alice) == []
    assert all(keys_of(app, photo) == set() for photo in (*frames, single))
    assert app.client.get(f"/api/shoots/{alice.shoot_id}/brackets", headers=alice.headers).json()["groups"] == []
