"""Deletion is real: objects the S3 server could not delete during an outage are recorded, and the
worker's sweep deletes them once it is back. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.models import PendingDeletion, utcnow
from luster_app.services.storage_cleanup import sweep_pending_deletions
from tests.conftest import make_user
from tests.fixtures_storage import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, Backend, new_shoot, s3_settings, upload
from tests.test_faults import RestartableS3, restartable_s3  # noqa: F401  (fixture)
from tests.test_own_api import JPEG, keys_of
from worker.worker import Worker


@pytest.fixture
def app(settings: Settings, db_url: str, restartable_s3: RestartableS3) -> Iterator[Backend]:  # noqa: F811
    bucket = f"luster-own-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=restartable_s3.endpoint, region_name=S3_REGION, aws_access_key_id=S3_ACCESS_KEY,
                 aws_secret_access_key=S3_SECRET_KEY).create_bucket(Bucket=bucket)
    context = AppContext(s3_settings(settings, restartable_s3.endpoint, bucket, "put"), db=make_engine(db_url))
    with TestClient(create_api(context)) as client:
        yield Backend(name="s3-put", context=context, client=client)
    context.db.dispose()


def pending(app: Backend, keys: set[str]) -> list[PendingDeletion]:
    """The deletions recorded for `keys`. (Others may be due later: a completed upload's key, in
    case its link writes there again before it expires.)"""
    with app.context.session() as session:
        query = select(PendingDeletion).where(PendingDeletion.storage_key.in_(keys)).order_by(PendingDeletion.id)
        return list(session.execute(query).scalars())


def test_objects_storage_refused_to_delete_are_deleted_by_the_sweep_once_it_is_back(
    app: Backend, restartable_s3: RestartableS3  # noqa: F811
) -> None:
    _, headers = make_user(app.context)
    shoot = new_shoot(app, headers)
    photo = upload(app, headers, shoot, JPEG, filename="front.jpg").asset_id
    stored = keys_of(app, photo)
    assert len(stored) == 2  # original and thumbnail

    restartable_s3.stop()
    response = app.client.delete(f"/api/assets/{photo}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["objects_pending"] == 2
    assert app.client.get(f"/api/shoots/{shoot}/assets", headers=headers).json() == []  # gone for the photographer
    recorded = pending(app, stored)
    assert len(recorded) == 2 and all(row.attempts == 1 and row.last_error for row in recorded)
    # Still down: the sweep keeps them and waits longer before the next try.
    with app.context.session() as session:
        assert sweep_pending_deletions(session=session, storage=app.context.storage, now=utcnow() + timedelta(minutes=5)) == (0, 2)
    assert [row.attempts for row in pending(app, stored)] == [2, 2]
    assert all(row.next_attempt_at > recorded[0].next_attempt_at for row in pending(app, stored))

    restartable_s3.start()
    assert len(keys_of(app, photo)) == 2  # not deleted by anything so far
    with app.context.session() as session:  # the retry falls due
        session.execute(update(PendingDeletion).values(next_attempt_at=utcnow()))
        session.commit()
    Worker(app.context, concurrency=1, drain=True).upload_sweeper.sweep_deletions()
    assert keys_of(app, photo) == set()
    assert pending(app, stored) == []
