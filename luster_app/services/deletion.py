"""Deleting what a photographer owns: one output version, a photo with everything made from it,
a whole shoot. The rows go in one transaction, then the stored objects (storage_cleanup.py).

A photo whose job is being processed is refused (Conflict, 409) rather than deleted under its
worker, which is about to write outputs for it; queued jobs of the photo are cancelled and go
with it, so their reserved credits are free at once.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Select, delete, select, update
from sqlmodel import Session

from luster_app.config import Settings
from luster_app.models import (
    Asset, AssetKind, AssetStatus, Bracket, DownloadLink, Job, JobEvent, JobStatus, Shoot, ShootShare, utcnow,
)
from luster_app.services.errors import Conflict, NotFound
from luster_app.services.jobs import lock_credits, start_transaction
from luster_app.services.storage_cleanup import delete_pending, record_deletions
from luster_app.storage import Storage

WAIT = "once that finishes (usually within a few minutes)."


@dataclass(frozen=True)
class Removed:
    """What a deletion took away, for the answer and the log."""

    photos: int = 0
    outputs: int = 0
    jobs_canceled: int = 0
    objects_pending: int = 0  # objects storage refused for now; the worker's sweep retries them


def delete_asset(*, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, asset_id: uuid.UUID) -> Removed:
    """An original: the photo with its outputs, thumbnails and jobs. An output: that version and
    its thumbnail. NotFound for anyone else's (and for thumbnails, which go with their photo)."""
    asset = session.execute(
        select(Asset).where(Asset.id == asset_id, Asset.user_id == user_id, Asset.kind != AssetKind.THUMB)
    ).scalars().first()
    if asset is None:
        raise NotFound("Photo not found.")
    what = asset.filename if asset.kind == AssetKind.ORIGINAL else "The photo this version belongs to"
    return _remove(
        session=session, storage=storage, settings=settings, user_id=user_id,
        roots=select(Asset.id).where(Asset.id == asset_id, Asset.user_id == user_id),
        busy=f"{what} is being enhanced right now. Delete it {WAIT}", keep_grouped=True,
    )


def delete_shoot(*, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, shoot_id: uuid.UUID) -> Removed:
    """Every photo of the shoot as `delete_asset` does, then the shoot itself."""
    shoot = session.execute(select(Shoot.id).where(Shoot.id == shoot_id, Shoot.user_id == user_id)).first()
    if shoot is None:
        raise NotFound("Shoot not found.")
    return _remove(
        session=session, storage=storage, settings=settings, user_id=user_id,
        roots=select(Asset.id).where(Asset.shoot_id == shoot_id, Asset.user_id == user_id),
        busy=f"A photo of this shoot is being enhanced right now. Delete the shoot {WAIT}",
        shoots=select(Shoot.id).where(Shoot.id == shoot_id, Shoot.user_id == user_id),
    )


def remove_everything(*, session: Session, settings: Settings, user_id: uuid.UUID, busy: str) -> list[int]:
    """Inside the caller's transaction: every shoot, photo, job and download link of the user;
    returns the pending deletions to carry out after the commit (account closure)."""
    return _remove_rows(
        session=session, user_id=user_id, roots=select(Asset.id).where(Asset.user_id == user_id), busy=busy,
        shoots=select(Shoot.id).where(Shoot.user_id == user_id), upload_ttl=timedelta(seconds=settings.signed_url_ttl_seconds),
    )[1]


def remove_asset_rows(*, session: Session, settings: Settings, user_id: uuid.UUID, asset_ids: list[uuid.UUID], busy: str) -> list[int]:
    """Inside the caller's transaction: the assets with everything made from them and their jobs,
    as `delete_asset` does; returns the pending deletions to carry out after the commit."""
    return _remove_rows(
        session=session, user_id=user_id, roots=select(Asset.id).where(Asset.id.in_(asset_ids), Asset.user_id == user_id),
        busy=busy, shoots=None, upload_ttl=timedelta(seconds=settings.signed_url_ttl_seconds),
    )[1]


def _remove(
    *, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, roots: Select, busy: str,
    shoots: Select | None = None, keep_grouped: bool = False,
) -> Removed:
    start_transaction(session)
    try:
        removed, deletion_ids = _remove_rows(
            session=session, user_id=user_id, roots=roots, busy=busy, shoots=shoots,
            upload_ttl=timedelta(seconds=settings.signed_url_ttl_seconds), keep_grouped=keep_grouped,
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    failed = delete_pending(session=session, storage=storage, ids=deletion_ids)
    return dataclasses.replace(removed, objects_pending=failed)


def _remove_rows(
    *, session: Session, user_id: uuid.UUID, roots: Select, busy: str, shoots: Select | None, upload_ttl: timedelta,
    keep_grouped: bool = False,
) -> tuple[Removed, list[int]]:
    """Delete the rows of the `roots` assets, everything made from them, their jobs and download
    links (and the `shoots`), inside the caller's transaction; record their stored objects.
    `keep_grouped`: Conflict (409) for a bracket's frame rather than delete it."""
    # First: job creation and grouping for this user wait, so no job starts on a photo being
    # deleted and no photo is grouped while it goes (so the check below reads what is true).
    lock_credits(session, user_id)
    family = _with_descendants(session, user_id, list(session.execute(roots).scalars()))
    if keep_grouped:
        for asset in family:
            if asset.kind == AssetKind.ORIGINAL and asset.bracket_id is not None:
                raise Conflict(f"{asset.filename} is part of a bracket; ungroup the bracket first.")
    # A bracket's merged photo has jobs as an original has.
    photos = [asset.id for asset in family if asset.kind in (AssetKind.ORIGINAL, AssetKind.MERGED)]
    originals = [asset.id for asset in family if asset.kind == AssetKind.ORIGINAL]
    # Conditional on `queued`, so a worker's claim and this cancel cannot both win; a job the
    # worker claimed first is `processing` by the check below.
    canceled = session.execute(
        update(Job).where(Job.asset_id.in_(photos), Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELED, finished_at=utcnow(), error_code="canceled", error_message="The photo was deleted.")
    ).rowcount if photos else 0
    jobs = session.execute(select(Job.id, Job.status).where(Job.asset_id.in_(photos))).all() if photos else []
    if any(status == JobStatus.PROCESSING for _, status in jobs):
        raise Conflict(busy)
    job_ids = [job_id for job_id, _ in jobs]
    ids = [asset.id for asset in family]
    if ids:
        session.execute(delete(DownloadLink).where(DownloadLink.asset_id.in_(ids)))
    if job_ids:
        session.execute(delete(JobEvent).where(JobEvent.job_id.in_(job_ids)))
        session.execute(delete(Job).where(Job.id.in_(job_ids)))
    if ids:
        session.execute(delete(Asset).where(Asset.id.in_(ids)))
    if shoots is not None:
        shoot_ids = list(session.execute(shoots).scalars())
        session.execute(delete(DownloadLink).where(DownloadLink.shoot_id.in_(shoot_ids)))
        session.execute(delete(ShootShare).where(ShootShare.shoot_id.in_(shoot_ids)))
        session.execute(delete(Bracket).where(Bracket.shoot_id.in_(shoot_ids)))
        session.execute(delete(Shoot).where(Shoot.id.in_(shoot_ids)))
    deletion_ids = record_deletions(session, [asset.storage_key for asset in family])
    # A photo still uploading may yet reach storage through its signed URL. (A completion running
    # meanwhile finds the row gone and drops its own checked copy and thumbnail.)
    late = [a.storage_key for a in family if a.status == AssetStatus.PENDING and a.kind == AssetKind.ORIGINAL]
    record_deletions(session, late, due_at=utcnow() + upload_ttl)
    removed = Removed(
        photos=len(originals), outputs=sum(asset.kind == AssetKind.OUTPUT for asset in family), jobs_canceled=canceled
    )
    return removed, deletion_ids


def _with_descendants(session: Session, user_id: uuid.UUID, root_ids: list[uuid.UUID]) -> list[Asset]:
    """The assets and everything made from them (outputs, thumbnails, thumbnails of outputs)."""
    family: list[Asset] = []
    generation = root_ids
    column = Asset.id
    while generation:
        # Read afresh under the caller's lock, not as an earlier read in this session left them.
        found = list(session.execute(
            select(Asset).where(Asset.user_id == user_id, column.in_(generation)).execution_options(populate_existing=True)
        ).scalars())
        family.extend(found)
        generation = [asset.id for asset in found]
        column = Asset.parent_asset_id
    return family
